"""A log that keeps following its end when it changes size.

Why: Textual's ``Log`` follows new lines only while it is scrolled to the end, which is the pause a
person wants when they scroll up; but when the widget shrinks (a failure card appears above it, the
terminal gets shorter) its end moves below the view and the log silently stops following, showing
old lines as if they were the last ones. This log remembers whether it was at its end and, if so,
stays there across a resize.
"""

from __future__ import annotations

from textual.widgets import Log


class TailLog(Log):
    """``Log`` pinned to its end across resizes while the user has not scrolled up."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        """As ``Log``."""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.pinned = True
        """At the end (following); False once the user scrolls up."""

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Remember whether the view is at the end (a scroll by the user, or by a write)."""
        super().watch_scroll_y(old_value, new_value)
        self.pinned = new_value >= self.max_scroll_y

    def on_resize(self) -> None:
        """A following log stays at its end when its size changes."""
        if self.pinned and self.auto_scroll:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
