"""Telemetry events: the one vocabulary of ``metrics.jsonl`` (design.md, "Telemetry events").

Why a single flat type: the monitor writes events, and the CLI, the TUI and tests read them back from
JSON lines written by possibly older or newer versions. A frozen dataclass with a ``kind`` and a
free-form ``data`` mapping round-trips losslessly through JSON and tolerates fields it does not know,
while :class:`EventKind` fixes the kinds every consumer can rely on.

Fields per kind (all optional unless noted; readers must tolerate missing ones):

- ``step``: ``step`` (int, required), ``loss`` (float, may be NaN), ``lr`` (list[float]), ``iter_time`` (s),
  ``samples_per_sec``, ``rank``
- ``epoch``: ``epoch`` (int, the epoch that starts), ``step`` (last step seen)
- ``eval``: ``name``, ``step``, ``loss``, ``quantiles`` ({"0.10": x, ...}), ``eval_time_sec``
- ``scalar``: ``tag``, ``step``, ``value`` (TensorBoard scalars the console never prints)
- ``save``: ``dir`` (e.g. ``epoch2`` or ``step500``)
- ``checkpoint``: ``tag`` (e.g. ``global_step500``), ``path``
- ``phase``: ``phase`` (a :class:`Phase` value)
- ``progress``: ``what`` (e.g. "caching latents"), ``current``, ``total``, ``rate`` (tqdm lines)
- ``resume``: ``epoch``, ``step``
- ``quit``: manual quit seen (``save_quit``)
- ``complete``: ``TRAINING COMPLETE!`` seen
- ``exit``: ``code`` (launcher or process return code), ``rank``
- ``warning``: ``message``, ``code`` (a short machine name, e.g. ``missing_caption``), ``path``
- ``error``: ``class`` (a failure class name), ``message``, ``hint``, ``traceback`` (last frame + exception)
- ``info``: ``message`` (e.g. ``Global batch size = 4`` as ``global_batch_size``)
- ``stop``: a step of a requested stop, written by the monitor: ``action`` (``save_quit``, ``SIGINT``,
  ``SIGTERM``, ``SIGKILL``, ``done``), ``wait`` (seconds it waits next), ``message`` (for people),
  and with ``done``: ``graceful`` (bool), ``signals`` (list), ``leftovers`` (list of pids)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """What an event says happened."""

    STEP = "step"
    EPOCH = "epoch"
    EVAL = "eval"
    SCALAR = "scalar"
    SAVE = "save"
    CHECKPOINT = "checkpoint"
    PHASE = "phase"
    PROGRESS = "progress"
    RESUME = "resume"
    QUIT = "quit"
    COMPLETE = "complete"
    EXIT = "exit"
    WARNING = "warning"
    ERROR = "error"
    INFO = "info"
    STOP = "stop"


class Phase(StrEnum):
    """Coarse phase of a run, as derived from its console output (spec §9)."""

    LAUNCHING = "launching"
    LOADING = "loading"
    CACHING = "caching"
    INITIALIZING = "initializing"
    TRAINING = "training"
    EVAL = "eval"
    SAVING = "saving"
    CHECKPOINTING = "checkpointing"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Event:
    """One parsed fact about a run.

    Attributes:
        kind: what happened.
        t: unix time the event was observed (not when the line was printed, which is unknown).
        data: kind-specific fields, JSON-serialisable (see the module docstring).
    """

    kind: EventKind
    t: float
    data: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """Return ``data[key]`` or ``default``."""
        return self.data.get(key, default)

    def to_json(self) -> str:
        """Serialise as one JSON line (no newline); NaN/inf become strings so the line stays valid JSON."""
        payload: dict[str, Any] = {"t": round(self.t, 3), "kind": self.kind.value}
        for key, value in self.data.items():
            payload[key] = _json_safe(value)
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Event | None:
        """Parse one line of ``metrics.jsonl``; None for a blank, partial or unknown-kind line."""
        try:
            payload = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(payload, dict):
            return None
        try:
            kind = EventKind(payload.pop("kind"))
            t = float(payload.pop("t"))
        except (KeyError, ValueError, TypeError):
            return None
        return make_event(kind, t, {k: _from_json_safe(v) for k, v in payload.items()})


def decode_lines(lines: Iterable[bytes]) -> list[Event]:
    """Events of ``metrics.jsonl`` lines (bytes, without newline); blank and bad lines are skipped."""
    out: list[Event] = []
    for raw in lines:
        if raw.strip():
            event = Event.from_json(raw.decode("utf-8", "replace"))
            if event is not None:
                out.append(event)
    return out


_new_object = object.__new__
_set_kind, _set_t, _set_data = (vars(Event)[name].__set__ for name in ("kind", "t", "data"))


def make_event(kind: EventKind, t: float, data: Mapping[str, Any]) -> Event:
    """``Event(kind, t, data)`` for hot paths (parsing, reading metrics.jsonl): the same object.

    A frozen dataclass's ``__init__`` assigns through ``object.__setattr__`` (~0.5 us an event);
    setting the three slots directly takes about half. Nothing is validated, as in ``__init__``.
    """
    event: Event = _new_object(Event)
    _set_kind(event, kind)
    _set_t(event, t)
    _set_data(event, data)
    return event


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _from_json_safe(value: Any) -> Any:
    if isinstance(value, str) and value in _NONFINITE:
        return _NONFINITE[value]
    if isinstance(value, list):
        return [_from_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_json_safe(v) for k, v in value.items()}
    return value
