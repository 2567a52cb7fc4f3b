"""Plain-text presentation shared by every front end: durations, ages, rates, ETA, sizes, states.

Why one module without Rich or Textual: ``dpipe-tui status`` and the TUI's run view must say "12m05s",
"0.70 it/s (1.4s/step)" and "measuring" in exactly the same words, and a state must have the same
glyph and colour name everywhere. Front ends map the style names to their own colours (the CLI to
Rich markup, the TUI to its theme) and may ask for ASCII glyphs for terminals without Unicode.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dpipe_tui.checkpoints.inventory import SavedItem, StateItem
    from dpipe_tui.runs.model import RunState
    from dpipe_tui.telemetry.progress import ProgressSnapshot

GLYPHS = {
    "queued": ("…", "."),
    "starting": ("◌", "~"),
    "running": ("▶", ">"),
    "exiting": ("◍", "%"),
    "completed": ("✔", "+"),
    "failed": ("✖", "x"),
    "stopped": ("■", "-"),
    "lost": ("?", "?"),
}
"""Each state's glyph (Unicode, ASCII): the state is never told by colour alone."""

STYLES = {
    "queued": "blue",
    "starting": "cyan",
    "running": "green",
    "exiting": "yellow",
    "completed": "bright_green",
    "failed": "red",
    "stopped": "yellow",
    "lost": "magenta",
}
"""A colour name per state (Rich/Textual colour names)."""


def duration(sec: float | None) -> str:
    """A duration for people: 42s, 12m05s, 3h20m, 2.5d; ``-`` when unknown."""
    if sec is None or not math.isfinite(sec):
        return "-"
    s = max(0, round(sec))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s / 86400:.1f}d"


def age(t: float | None, now: float | None = None) -> str:
    """How long ago ``t`` was, coarsely: 42s, 5m, 3h, 2d; ``-`` when unknown."""
    if not t:
        return "-"
    s = max(0, int((time.time() if now is None else now) - t))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def size(num_bytes: float | None) -> str:
    """Bytes for people: 512 B, 1.2 KiB, 3.4 MiB, 1.2 GiB, 2.0 TiB; ``-`` when unknown."""
    if num_bytes is None or not math.isfinite(num_bytes):
        return "-"
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def rate(steps_per_sec: float | None, *, measuring: bool = False) -> str:
    """``5.00 it/s``; under one step a second also the time a step takes; ``measuring``; ``-``."""
    if measuring:
        return "measuring"
    if not steps_per_sec or not math.isfinite(steps_per_sec):
        return "-"
    if steps_per_sec >= 1:
        return f"{steps_per_sec:.2f} it/s"
    return f"{steps_per_sec:.2f} it/s ({duration(1 / steps_per_sec)}/step)"


def _measuring(p: ProgressSnapshot) -> bool:
    return bool(getattr(p, "measuring", False))


def rate_text(p: ProgressSnapshot | None) -> str:
    """The rate of a progress snapshot (``measuring`` while the window is too short)."""
    if p is None:
        return "-"
    return rate(p.steps_per_sec, measuring=_measuring(p))


def eta_text(p: ProgressSnapshot | None) -> str:
    """Time left of a progress snapshot; ``measuring`` early on; ``-`` when unknown."""
    if p is None:
        return "-"
    if _measuring(p):
        return "measuring"
    return duration(p.eta_sec)


def step_text(step: int | None, total: int | None, *, percent: bool = True) -> str:
    """``130/500 (26%)``, ``130`` without a total, ``-`` before the first step."""
    if step is None:
        return "-"
    if not total:
        return str(step)
    text = f"{step}/{total}"
    return f"{text} ({100 * min(step / total, 1.0):.0f}%)" if percent else text


def epoch_text(epoch: int | None, epochs: int | None) -> str:
    """``2/10``, ``2`` without a planned count, ``-`` when unknown."""
    if epoch is None:
        return "-"
    return f"{epoch}/{epochs}" if epochs else str(epoch)


def loss_text(loss: float | None) -> str:
    """A loss with four decimals (``nan`` stays visible); ``-`` when unknown."""
    if loss is None:
        return "-"
    if not math.isfinite(loss):
        return str(loss)
    return f"{loss:.4f}"


def glyph(state: str, *, ascii_only: bool = False) -> str:
    """The state's glyph."""
    pair = GLYPHS.get(state, ("·", "*"))
    return pair[1] if ascii_only else pair[0]


def state_label(state: str, *, ascii_only: bool = False) -> str:
    """Glyph and name, e.g. ``▶ running``."""
    return f"{glyph(state, ascii_only=ascii_only)} {state}"


def state_style(state: str) -> str:
    """The state's colour name."""
    return STYLES.get(state, "white")


def phase_text(state: RunState, phase: str | None) -> str:
    """What a run is doing: its phase while it lives; once it ended, its outcome (a failed run's last
    phase, ``training`` or ``checkpointing``, would read as if it were still at it)."""
    return state.value if state.is_terminal else phase or "-"


# --- the live progress line (``run`` / ``follow`` on a terminal) ------------------------------------
#
# Designed for 80 columns first: every field has a fixed priority, and a narrower terminal drops the
# lowest ones whole (never a cut word); the state is never dropped or cut. From 120 columns everything
# shows. The bar takes the room that is left, between BAR_MIN and BAR_MAX cells.

BAR_MIN = 10
BAR_MAX = 40
FILLED = ("━", "#")
EMPTY = ("─", "-")
"""The bar's cells, (Unicode, ASCII)."""


@dataclass(frozen=True, slots=True)
class LineFacts:
    """What the progress line says; front ends fill it from a run record and a progress snapshot."""

    state: str
    phase: str | None = None
    step: int | None = None
    total: int | None = None
    elapsed_sec: float | None = None
    eta: str = "-"
    """From :func:`eta_text` (``measuring`` early on)."""
    rate: str = "-"
    loss: float | None = None
    epoch: str = "-"
    save_in_sec: float | None = None
    checkpoint_in_sec: float | None = None
    checkpoint_age_sec: float | None = None


def _line_fields(f: LineFacts, ascii_only: bool) -> list[tuple[int, str, str]]:
    """(keep priority: lower stays longer, style, text) in display order; the bar is ``""`` text."""
    fields: list[tuple[int, str, str]] = [(0, "state", state_label(f.state, ascii_only=ascii_only))]
    if f.phase and f.phase != "training":  # loading, caching, checkpointing: worth a place up front
        fields.append((2, "phase", f.phase))
    if f.total and f.step is not None:
        fields.append((3, "bar", ""))
    if f.step is not None:
        fields.append((1, "step", step_text(f.step, f.total, percent=False)))
    if f.total and f.step is not None:
        fields.append((6, "dim", f"{100 * min(f.step / f.total, 1.0):.0f}%"))
    if f.elapsed_sec is not None:
        fields.append((5, "dim", duration(f.elapsed_sec)))
    if f.eta != "-":
        fields.append((4, "eta", f"eta {f.eta}"))
    if f.rate not in ("-", "measuring"):
        fields.append((8, "", f.rate.split(" (")[0]))  # "0.65 it/s", without "(1.5s/step)"
    if f.loss is not None:
        fields.append((7, "", f"loss {loss_text(f.loss)}"))
    if f.epoch != "-":
        fields.append((9, "dim", f"epoch {f.epoch}"))
    if f.save_in_sec is not None:
        fields.append((10, "dim", f"save in {duration(f.save_in_sec)}"))
    if f.checkpoint_in_sec is not None:
        fields.append((11, "dim", f"ckpt in {duration(f.checkpoint_in_sec)}"))
    if f.checkpoint_age_sec is not None:
        fields.append((12, "dim", f"ckpt {duration(f.checkpoint_age_sec)} ago"))
    return fields


def progress_segments(f: LineFacts, width: int, *, ascii_only: bool = False) -> list[tuple[str, str]]:
    """The progress line for ``width`` columns as (text, style) pieces; joined, never wider than
    ``width`` (the state alone may be, on an absurdly narrow terminal). Styles: ``state``, ``phase``,
    ``bar``, ``bar.empty``, ``step``, ``eta``, ``dim`` or ``""``."""
    kept = _line_fields(f, ascii_only)

    def need(items: list[tuple[int, str, str]]) -> int:
        texts = [BAR_MIN if style == "bar" else len(text) for _, style, text in items]
        return sum(texts) + len(texts) - 1

    while len(kept) > 1 and need(kept) > width:
        kept.remove(max(kept, key=lambda item: item[0]))  # the lowest priority goes first, whole
    room = width - need(kept) + BAR_MIN
    out: list[tuple[str, str]] = []
    for _, style, text in kept:
        if out:
            out.append((" ", ""))
        if style == "bar":
            cells = min(room, BAR_MAX)
            done = round(cells * min((f.step or 0) / (f.total or 1), 1.0))
            filled, empty = FILLED[int(ascii_only)], EMPTY[int(ascii_only)]
            out.extend([(filled * done, "bar"), (empty * (cells - done), "bar.empty")])
        else:
            out.append((text, style))
    return out


def progress_line(f: LineFacts, width: int, *, ascii_only: bool = False) -> str:
    """:func:`progress_segments` as plain text."""
    return "".join(text for text, _ in progress_segments(f, width, ascii_only=ascii_only))


# -- checkpoints ----------------------------------------------------------------------------------
SAVE_COLUMNS = ("save", "format", "r/a", "dtype", "step", "loss", "size", "att", "note")
FORMAT_SHORT = {
    "comfyui": "ComfyUI",
    "lokr": "LoKr",
    "diffusers": "Diffusers",
    "kohya": "Kohya",
    "full": "full",
}
"""A save's format in a table cell (the JSON and the help say it in full)."""
STATE_COLUMNS = ("state", "step", "epoch", "examples", "size", "stages", "att", "note")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def save_row(item: SavedItem, *, pinned: bool = False) -> tuple[str, ...]:
    """One saved model as the cells of :data:`SAVE_COLUMNS` (the CLI table and the TUI's)."""
    notes = [n for n in ("pinned" if pinned else "", "abandoned" if item.abandoned else "") if n]
    if item.problem:
        notes.append(item.problem)
    rank_alpha = "-" if item.rank is None else f"{_num(item.rank)}/{_num(item.alpha)}"
    return (
        item.name,
        FORMAT_SHORT.get(item.format, item.format),
        rank_alpha,
        item.dtype or "-",
        "-" if item.step is None else str(item.step),
        loss_text(item.loss) if item.loss is not None else "-",
        size(item.size),
        str(item.attempt),
        "; ".join(notes),
    )


def state_row(item: StateItem, *, pinned: bool = False) -> tuple[str, ...]:
    """One training state as the cells of :data:`STATE_COLUMNS`."""
    notes = [
        n
        for n in (
            "latest" if item.is_latest else "",
            "pinned" if pinned else "",
            "abandoned" if item.abandoned else "",
            "" if item.complete else "incomplete",
        )
        if n
    ]
    if item.problem and item.complete:
        notes.append(item.problem)
    elif item.problem:
        notes[-1] = item.problem
    return (
        item.tag,
        str(item.step),
        "-" if item.epoch is None else str(item.epoch),
        "-" if item.examples is None else str(item.examples),
        size(item.size),
        str(item.stages),
        str(item.attempt),
        "; ".join(notes),
    )


def table_lines(columns: tuple[str, ...], rows: list[tuple[str, ...]], width: int = 200) -> list[str]:
    """A plain left-aligned table; the last column takes what is left of ``width`` (cut with …)."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns[:-1])]
    out = []
    for row in [tuple(c.upper() for c in columns), *rows]:
        head = "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False))
        room = max(width - len(head) - 2, 8)
        last = row[-1] if len(row[-1]) <= room else row[-1][: room - 1] + "…"
        out.append(f"{head}  {last}".rstrip())
    return out
