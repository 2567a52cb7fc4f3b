"""The user's keymap (``[keymap]`` in settings.toml): binding ids of every screen, checked and applied.

Why ids: Textual applies a keymap by binding id, so every binding a user may want to move carries one
(``app.quit``, ``dashboard.filter``, ``run.stop`` ...). An id that no screen has is a typo the user
should hear about, not a silent no-op; the help screen shows the keys as remapped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


def binding_ids() -> dict[str, str]:
    """Every binding id of the app's screens and widgets, with what it does."""
    from dpipe_tui.ui.app import DpipeApp
    from dpipe_tui.ui.screens.checkpoints import CheckpointScreen
    from dpipe_tui.ui.screens.dashboard import DashboardScreen
    from dpipe_tui.ui.screens.editor import EditorScreen
    from dpipe_tui.ui.screens.new_run import NewRunScreen
    from dpipe_tui.ui.screens.run_view import RunScreen

    out: dict[str, str] = {}
    for cls in (DpipeApp, DashboardScreen, RunScreen, NewRunScreen, EditorScreen, CheckpointScreen):
        for item in cls.__dict__.get("BINDINGS", ()):
            if isinstance(item, Binding) and item.id:
                out[item.id] = item.description
    return out


def check(keymap: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """The keymap to apply and the ids no binding has (reported to the user, not applied)."""
    known = binding_ids()
    good: dict[str, str] = {}
    unknown: list[str] = []
    for binding_id, keys in keymap:
        if binding_id in known:
            good[binding_id] = keys
        else:
            unknown.append(binding_id)
    return good, unknown


def key_of(binding: Binding, keymap: Mapping[str, str]) -> str:
    """The keys of ``binding`` after the keymap."""
    return keymap.get(binding.id, binding.key) if binding.id else binding.key
