"""Incremental parser of a diffusion-pipe console into :class:`Event`s (spec §4).

Why incremental and stateful: the monitor feeds whatever ``read()`` returned — byte chunks cut at
arbitrary points, UTF-8 sequences included — and the meaning of a line often depends on its
neighbours: the two per-step lines join into one event, a traceback spans many lines per rank, a
tqdm bar redraws hundreds of times a second with ``\\r``. Chunk boundaries never change the result:
only terminated segments are parsed, and throttling depends on the injected clock, not on chunking.

Hot path: per-step lines are recognised with ``str`` tests; every other line runs one compiled
alternation of trigger substrings (:mod:`lines`) and pays for a specific regex only on a hit.
"""

from __future__ import annotations

import codecs
import math
import time
from typing import TYPE_CHECKING, Any, Final

from dpipe_tui.telemetry import lines as L
from dpipe_tui.telemetry.events import Event, EventKind, Phase, make_event
from dpipe_tui.telemetry.failures import classify_text
from dpipe_tui.telemetry.tracebacks import TracebackTracker

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_LINE: Final = 64 * 1024
WARNINGS_PER_CODE: Final = 100


class ConsoleParser:
    """Turns console output into events; feed it chunks, call :meth:`flush` at the end.

    Args:
        clock: source of event timestamps (injected for tests).
        progress_interval: minimum seconds between two ``progress`` events of one bar; redraws in
            between are coalesced, the last one wins.
        line_by_line: parse every line through :meth:`_line` (no chunk fast path); the reference
            the fast path is tested against, event for event.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        progress_interval: float = 0.5,
        line_by_line: bool = False,
    ) -> None:
        self._clock = clock
        self._line_by_line = line_by_line
        self._interval = progress_interval
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._now = 0.0
        self._out: list[Event] = []
        self.phase: Phase | None = None
        self.last_step: int | None = None
        self._last_loss: float | None = None
        self._epoch: int | None = None
        self._global_batch: int | None = None
        self._pending_lr: tuple[int, str] | None = None
        self._lr_text = ""
        self._lr_value: list[float] = []
        self._nan_warned = False
        self._context = ""
        self._held: Event | None = None
        self._last_progress_t = -math.inf
        self._checkpoints: set[str] = set()
        self._run_dir_seen = False
        self._quit_seen = False
        self.warning_counts: dict[str, int] = {}
        self._tracebacks = TracebackTracker()

    # ---- feeding -------------------------------------------------------------------------------
    def feed(self, data: str | bytes) -> list[Event]:
        """Parse a chunk of output; return the events completed by it (partial lines are kept)."""
        text = self._decoder.decode(data) if isinstance(data, bytes) else data
        if not text:
            return []
        self._now = self._clock()
        buf = self._buf + text
        if "\r" in buf:
            buf = buf.replace("\r", "\n")
        cut = buf.rfind("\n")
        if cut >= 0:
            self._buf = buf[cut + 1 :]
            self._lines("\n" + buf[:cut])
        else:
            self._buf = buf
        while len(self._buf) > MAX_LINE:  # a runaway unterminated line: cut at fixed boundaries
            self._line(self._buf[:MAX_LINE])
            self._buf = self._buf[MAX_LINE:]
        return self._take()

    def _lines(self, text: str) -> None:
        """Parse the complete lines of ``text``, each one preceded by a newline.

        The chunk fast path: one C-speed regex scan finds the canonical per-step lines (most of a
        training log) and they are parsed from the match's groups. The text between two of them
        (the gap) is skipped at C speed when nothing in it can make an event (no trigger, no lr
        or step text, no traceback open); the gap that is the step's own lr line goes straight to
        :meth:`_lr_line`; any other gap goes through :meth:`_line` one line at a time, exactly as
        before, so tracebacks, rank prefixes and every other shape keep their meaning and order.
        """
        line = self._line
        if self._line_by_line:
            for part in text.split("\n"):
                if part:
                    line(part)
            return
        step_groups = self._step_groups
        gap_lines = self._gap
        pos = 0
        for match in L.STEP_LINE_NL.finditer(text):
            start = match.start()
            if start > pos:
                gap_lines(text[pos:start], before_step=True)
            pos = match.end()
            step_groups(*match.groups())
        if pos < len(text):
            gap_lines(text[pos:], before_step=False)

    def _gap(self, text: str, *, before_step: bool) -> None:
        """Lines between two canonical step lines (each preceded by a newline).

        Before a step line, the last line is usually DeepSpeed's lr line of that step: it goes
        straight to :meth:`_lr_line` when :meth:`_line` would send it there. The other lines are
        skipped whole when none of them can say anything (no trigger, no lr or step text, no
        traceback open), else they go through :meth:`_line` one by one.
        """
        cut = text.rfind("\n") if before_step else len(text)
        head, last = text[:cut], text[cut + 1 :]
        tracebacks = self._tracebacks
        if head and (
            tracebacks.active or "steps: " in head or ", lr=" in head or L.TRIGGER_RE.search(head) is not None
        ):
            line = self._line
            for part in head.split("\n"):
                if part:
                    line(part)
        if not last:
            return
        if (
            " step=" in last
            and ", lr=" in last
            and not tracebacks.active
            and not last.startswith(("[rank", "steps: "))
        ):
            self._lr_line(last)
        else:
            self._line(last)

    def flush(self) -> list[Event]:
        """End of output: parse the unterminated rest and emit everything still held back."""
        self._now = self._clock()
        rest = self._buf + self._decoder.decode(b"", final=True)
        self._buf = ""
        for part in rest.replace("\r", "\n").split("\n"):
            if part:
                self._line(part)
        self._release_progress()
        for rank, tb in self._tracebacks.flush():
            self._error_from_traceback(rank, tb)
        return self._take()

    def tick(self) -> list[Event]:
        """Emit a held progress update whose throttle interval has passed (call when output is idle)."""
        self._now = self._clock()
        if self._held is not None and self._now - self._last_progress_t >= self._interval:
            self._release_progress()
        return self._take()

    def _take(self) -> list[Event]:
        out, self._out = self._out, []
        return out

    def _emit(self, kind: EventKind, data: dict[str, Any]) -> None:
        if self._held is not None and kind is not EventKind.PROGRESS:
            self._release_progress()
        self._out.append(Event(kind, self._now, data))

    def _set_phase(self, phase: Phase) -> None:
        if phase is not self.phase:
            self.phase = phase
            self._emit(EventKind.PHASE, {"phase": phase.value})

    # ---- one line ------------------------------------------------------------------------------
    def _line(self, line: str) -> None:
        rank: int | None = None
        if line.startswith("[rank"):  # strip torch.distributed's prefix before anything else
            match = L.RANK_PREFIX.match(line)
            if match:
                rank = int(match[1])
                line = line[match.end() :]
        if line.startswith("steps: "):
            self._step_line(line)
            return
        if self._tracebacks.active:
            done = self._tracebacks.feed(rank, line)
            if done is not None:
                self._error_from_traceback(rank, done)
                return
            if self._tracebacks.consumed:
                return
        if " step=" in line and ", lr=" in line:
            self._lr_line(line)
            return
        hit = L.TRIGGER_RE.search(line)
        if hit is None:
            return
        key = hit.group(0)
        getattr(self, "_on_" + L.TRIGGERS[key])(line, key, rank)

    def _lr_line(self, line: str) -> None:
        # "[Rank 0] step=25, skipped=0, lr=[5.15e-06], mom=[[0.9, 0.99]]": str ops, regex as fallback
        try:
            at = line.index(" step=") + 6
            step = int(line[at : line.index(",", at)])
            lr_text = line[line.index(", lr=", at) + 5 : line.index(", mom=", at)]
        except ValueError:
            match = L.LR_LINE.search(line)
            if match is None:
                return
            step, lr_text = int(match[2]), match[4]
        self._pending_lr = (step, lr_text)

    def _step_line(self, line: str) -> None:
        # "steps: 25 loss: 0.0873 iter time (s): 4.512 samples/sec: 0.887"
        tok = line.split()
        if len(tok) < 10 or tok[2] != "loss:" or tok[8] != "samples/sec:":
            return
        self._step_groups(tok[1], tok[3], tok[7], tok[9])

    def _step_groups(self, step_text: str, loss_text: str, iter_text: str, sps_text: str) -> None:
        try:
            step = int(step_text)
            iter_time = float(iter_text)
            sps = float(sps_text)
        except ValueError:
            return
        loss = L.parse_float(loss_text)
        data: dict[str, Any] = {"step": step, "loss": loss, "iter_time": iter_time, "samples_per_sec": sps}
        pending = self._pending_lr
        if pending is not None:
            if pending[0] == step:
                if pending[1] != self._lr_text:  # lr is often constant: parse each new text once
                    self._lr_text, self._lr_value = pending[1], L.parse_lr(pending[1])
                data["lr"] = list(self._lr_value)
            self._pending_lr = None
        self._context = ""
        if self.phase is not Phase.TRAINING:
            self._set_phase(Phase.TRAINING)
        self.last_step = step
        self._last_loss = loss
        if self._held is not None:
            self._release_progress()
        self._out.append(make_event(EventKind.STEP, self._now, data))
        if loss != loss and not self._nan_warned:
            self._nan_warned = True
            self._emit(
                EventKind.WARNING,
                {"code": "nan_loss", "step": step, "message": f"loss is NaN at step {step}"},
            )

    # ---- handlers (named after lines.TRIGGERS values) -----------------------------------------
    def _on_tqdm(self, line: str, key: str, rank: int | None) -> None:
        match = L.TQDM.search(line)
        if match is None:
            return
        current, total = int(match["n"]), int(match["total"])
        desc = match["desc"].strip().rstrip(":").strip()
        what = desc or self._context or (self.phase.value if self.phase else "progress")
        data: dict[str, Any] = {
            "what": what,
            "current": current,
            "total": total,
            "rate": L.parse_rate(line[match.end() :]),
        }
        if not desc and self.phase in (None, Phase.LAUNCHING, Phase.LOADING):
            self._set_phase(Phase.CACHING)
        event = Event(EventKind.PROGRESS, self._now, data)
        held = self._held
        if held is not None and (held.get("what"), held.get("total")) != (what, total):
            self._release_progress()
        if current >= total or self._now - self._last_progress_t >= self._interval:
            self._held = None
            self._last_progress_t = self._now
            self._out.append(event)
        else:
            self._held = event

    def _release_progress(self) -> None:
        if self._held is not None:
            self._out.append(self._held)
            self._last_progress_t = self._now
            self._held = None

    def _on_traceback(self, line: str, key: str, rank: int | None) -> None:
        self._tracebacks.start(rank)

    def _error_from_traceback(self, rank: int | None, tb: dict[str, str]) -> None:
        exc = tb.get("exception", "")
        code, frame = tb.get("code", ""), tb.get("frame", "")
        found = classify_text(exc) or classify_text(code)
        message = exc or "Python traceback"
        if code and ":" not in exc:  # a bare AssertionError says nothing without its source line
            message = f"{message} at `{code}`"
        hint = (
            found.hint
            if found
            else f"Python error; last frame: {frame or '?'}" + (f": `{code}`" if code else "")
        )
        data: dict[str, Any] = {
            "class": found.cls if found else "traceback",
            "message": message,
            "hint": hint,
            "traceback": tb,
        }
        if found and found.cls == "cuda_oom" and self.phase is Phase.EVAL:
            data["during_eval"] = True
        if rank is not None:
            data["rank"] = rank
        self._emit(EventKind.ERROR, data)

    def _on_epoch(self, line: str, key: str, rank: int | None) -> None:
        value = _int_after(line, key)
        if value is not None:
            self._epoch = value
            self._emit(EventKind.EPOCH, {"epoch": value, "step": self.last_step})

    def _on_save(self, line: str, key: str, rank: int | None) -> None:
        self._set_phase(Phase.SAVING)
        data: dict[str, Any] = {"dir": line[line.index(key) + len(key) :].strip()}
        if self.last_step is not None:  # the browser shows a save's step and loss (epochN names no step)
            data["step"] = self.last_step
            if self._last_loss is not None:
                data["loss"] = self._last_loss
        self._emit(EventKind.SAVE, data)

    def _on_checkpoint(self, line: str, key: str, rank: int | None) -> None:
        match = L.CHECKPOINT_TAG.search(line)
        if match is None:
            return
        self._set_phase(Phase.CHECKPOINTING)
        self._checkpoint(match[1], None)

    def _on_checkpoint_path(self, line: str, key: str, rank: int | None) -> None:
        match = L.CHECKPOINT_PATH.search(line)
        if match is None:
            return
        path = match[1]
        tag_match = L.GLOBAL_STEP.search(path)
        if tag_match is None:
            return
        tag = tag_match.group(0)
        run_dir = path[: path.find(tag)].rstrip("/")
        if run_dir and not self._run_dir_seen:
            self._run_dir_seen = True
            self._emit(EventKind.INFO, {"code": "run_dir", "value": run_dir, "message": line.strip()})
        self._checkpoint(tag, f"{run_dir}/{tag}" if run_dir else None)

    def _checkpoint(self, tag: str, path: str | None) -> None:
        if tag in self._checkpoints:
            return
        self._checkpoints.add(tag)
        step = L.GLOBAL_STEP.search(tag)
        data: dict[str, Any] = {"tag": tag, "step": int(step[1]) if step else self.last_step}
        if self._epoch is not None:  # what a resume from it loads (the browser shows it)
            data["epoch"] = self._epoch
        if self._global_batch and isinstance(data["step"], int):
            data["examples"] = data["step"] * self._global_batch
        if path:
            data["path"] = path
        self._emit(EventKind.CHECKPOINT, data)

    def _on_eval(self, line: str, key: str, rank: int | None) -> None:
        if line.strip().endswith("Running eval"):
            self._context = "eval"
            self._set_phase(Phase.EVAL)

    def _on_resume(self, line: str, key: str, rank: int | None) -> None:
        match = L.RESUME.search(line)
        if match:
            self.last_step, self._last_loss, self._epoch = int(match[2]) - 1, None, int(match[1])
            self._emit(EventKind.RESUME, {"epoch": int(match[1]), "step": int(match[2])})

    def _on_quit(self, line: str, key: str, rank: int | None) -> None:
        if not self._quit_seen:
            self._quit_seen = True
            self._emit(EventKind.QUIT, {"step": self.last_step})

    def _on_complete(self, line: str, key: str, rank: int | None) -> None:
        self._emit(EventKind.COMPLETE, {"step": self.last_step})
        self._set_phase(Phase.DONE)

    def _on_exit(self, line: str, key: str, rank: int | None) -> None:
        code = _int_after(line, key)
        local = L.LOCAL_RANK.search(line)
        self._emit(EventKind.EXIT, {"code": code, "rank": int(local[1]) if local else None})

    def _on_exit_ok(self, line: str, key: str, rank: int | None) -> None:
        match = L.PROCESS_OK.search(line)
        if match:
            self._emit(EventKind.EXIT, {"code": 0, "pid": int(match[1])})

    def _on_killing(self, line: str, key: str, rank: int | None) -> None:
        match = L.KILLING.search(line)
        if match:
            self._emit(
                EventKind.INFO,
                {"code": "killing_subprocess", "value": int(match[1]), "message": L.strip_ds_prefix(line)},
            )

    def _on_launcher_signal(self, line: str, key: str, rank: int | None) -> None:
        sig = "SIGINT" if "SIGINT" in key else "SIGTERM"
        self._emit(
            EventKind.INFO, {"code": "launcher_signal", "value": sig, "message": L.strip_ds_prefix(line)}
        )

    def _on_info(self, line: str, key: str, rank: int | None) -> None:
        code = L.INFO_CODES[key]
        raw = line[line.index(key) + len(key) :].strip()
        value: Any = raw
        if code in L.INT_INFO:
            value = _int_after(line, key)
        elif code == "launcher_cmd":
            self._set_phase(Phase.LAUNCHING)
        elif code in ("world_info", "cuda_visible_devices"):
            self._set_phase(Phase.LOADING)
        elif code in ("block_swap", "trainable_params", "deepspeed_version"):
            self._set_phase(Phase.INITIALIZING)
            value = L.strip_ds_prefix(line).strip()
        elif code == "checkpoint_load":
            value = raw.rstrip(".")
        data: dict[str, Any] = {"code": code, "value": value, "message": L.strip_ds_prefix(line).strip()}
        if rank is not None:
            data["rank"] = rank
        self._emit(EventKind.INFO, data)
        if code == "global_batch_size":
            self._set_phase(Phase.INITIALIZING)
            self._global_batch = value if isinstance(value, int) else None

    def _on_initializing(self, line: str, key: str, rank: int | None) -> None:
        if key == "Initializing TorchBackend":  # init_distributed: before caching, still loading
            if self.phase in (None, Phase.LAUNCHING):
                self._set_phase(Phase.LOADING)
        else:
            self._set_phase(Phase.INITIALIZING)

    def _on_caching(self, line: str, key: str, rank: int | None) -> None:
        if self.phase not in (Phase.TRAINING, Phase.EVAL, Phase.SAVING, Phase.CHECKPOINTING):
            self._set_phase(Phase.CACHING)
        msg = L.strip_ds_prefix(line).strip()
        if msg.startswith("caching ") or msg.startswith("Intermediate metadata"):
            self._context = msg.split(":", 1)[0] if msg.startswith("caching ") else "enumerating files"

    def _on_warning(self, line: str, key: str, rank: int | None) -> None:
        code = L.WARNING_CODES[key]
        count = self.warning_counts.get(code, 0) + 1
        self.warning_counts[code] = count
        if count > WARNINGS_PER_CODE:
            return
        message = L.strip_ds_prefix(line).strip()
        data: dict[str, Any] = {"code": code, "message": message}
        path = L.WARNING_PATH.search(message)
        if path:
            data["path"] = path[1]
        if count == WARNINGS_PER_CODE:
            data["suppressed"] = True  # further warnings of this code are only counted
        if rank is not None:
            data["rank"] = rank
        self._emit(EventKind.WARNING, data)

    def _on_error(self, line: str, key: str, rank: int | None) -> None:
        found = classify_text(L.strip_ds_prefix(line))
        if found is None:
            return
        data: dict[str, Any] = {"class": found.cls, "message": found.message, "hint": found.hint}
        if rank is not None:
            data["rank"] = rank
        self._emit(EventKind.ERROR, data)


def _int_after(line: str, key: str) -> int | None:
    rest = line[line.index(key) + len(key) :].strip()
    digits = rest.split()[0] if rest else ""
    try:
        return int(digits.rstrip(".,"))
    except ValueError:
        match = L.INT_AFTER_EQ.search(line)
        return int(match[1]) if match else None


def parse_text(text: str | bytes, clock: Callable[[], float] = time.time) -> list[Event]:
    """Parse a whole console transcript at once."""
    parser = ConsoleParser(clock)
    return parser.feed(text) + parser.flush()
