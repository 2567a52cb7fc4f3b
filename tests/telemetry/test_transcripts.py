"""The parser and the classifier on realistic console transcripts (tests/data, spec §4 formats)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from dpipe_tui.telemetry import ConsoleParser, Event, EventKind, classify_failure
from dpipe_tui.telemetry.store import LogTail

DATA = Path(__file__).resolve().parents[1] / "data"


def parse(name: str) -> list[Event]:
    parser = ConsoleParser(lambda: 100.0)
    return parser.feed((DATA / name).read_bytes()) + parser.flush()


def kinds(events: list[Event], kind: EventKind) -> list[Event]:
    return [e for e in events if e.kind is kind]


def exit_code(events: list[Event]) -> int:
    codes = [int(e.data["code"]) for e in kinds(events, EventKind.EXIT)]
    return next((c for c in codes if c != 0), 0)


CASES = [
    # file, failure class (None = completed), steps printed, last step
    ("single_gpu_complete.log", None, 30, 30),
    ("two_ranks_traceback.log", "traceback", 12, 12),
    ("resume.log", None, 20, 520),
    ("cuda_oom.log", "cuda_oom", 3, 3),
    ("host_oom_kill.log", "host_oom", 0, None),
    ("nccl_timeout.log", "nccl_timeout", 4, 4),
    ("missing_captions.log", None, 4, 4),
    ("save_quit.log", "save_quit", 7, 7),
    ("cache_only.log", "cache_only", 0, None),
    ("no_checkpoint_resume.log", "no_checkpoint", 0, None),
    ("config_no_save.log", "config_error", 0, None),
    ("port_in_use.log", "port_in_use", 0, None),
    ("nan_segfault.log", "segfault", 3, 3),
]


@pytest.mark.parametrize(("name", "failure", "n_steps", "last_step"), CASES)
def test_transcript(name: str, failure: str | None, n_steps: int, last_step: int | None) -> None:
    events = parse(name)
    steps = kinds(events, EventKind.STEP)
    assert len(steps) == n_steps
    assert (steps[-1].data["step"] if steps else None) == last_step
    tail = LogTail(DATA / name).last_lines(50)
    result = classify_failure(exit_code(events), events, tail)
    assert (result.cls if result else None) == failure
    if result is not None:
        assert result.hint
        assert result.message


def test_single_gpu_run_in_detail() -> None:
    events = parse("single_gpu_complete.log")
    phases = [e.data["phase"] for e in kinds(events, EventKind.PHASE)]
    assert phases[:4] == ["launching", "loading", "caching", "initializing"]
    assert phases[-1] == "done"
    assert "eval" in phases
    assert "saving" in phases
    assert "checkpointing" in phases
    assert all(a != b for a, b in itertools.pairwise(phases)), "phase events only on change"
    steps = kinds(events, EventKind.STEP)
    assert all(s.data["lr"] == [5.15e-06] for s in steps), "lr joined from the [Rank 0] line"
    assert [e.data["epoch"] for e in kinds(events, EventKind.EPOCH)] == [2, 3]
    assert [e.data["step"] for e in kinds(events, EventKind.EPOCH)] == [10, 20]
    assert [e.data["dir"] for e in kinds(events, EventKind.SAVE)] == ["epoch1", "epoch2", "epoch3"]
    ckpts = kinds(events, EventKind.CHECKPOINT)
    assert [(c.data["tag"], c.data["step"]) for c in ckpts] == [("global_step15", 15), ("global_step30", 30)]
    info = {e.data["code"]: e.data["value"] for e in kinds(events, EventKind.INFO)}
    assert info["global_batch_size"] == 4
    assert info["world_size"] == 1
    assert info["cuda_visible_devices"] == "0"
    assert info["run_dir"] == "/out/20260821_14-02-30"
    assert "--master_port=29511" in info["launcher_cmd"]
    assert len(kinds(events, EventKind.COMPLETE)) == 1
    assert kinds(events, EventKind.EXIT)[-1].data == {"code": 0, "pid": 12345}


def test_tqdm_redraws_are_coalesced_last_wins() -> None:
    events = parse("cache_only.log")
    progress = kinds(events, EventKind.PROGRESS)
    raw_redraws = (DATA / "cache_only.log").read_text().count("%|")
    assert raw_redraws > 1000
    assert len(progress) < 20, "a redraw storm must not become thousands of events"
    latents = [p for p in progress if p.data["what"] == "caching latents"]
    assert latents[-1].data["current"] == latents[-1].data["total"] == 100
    assert latents[-1].data["rate"] == pytest.approx(2.31)
    assert any(p.data["what"] == "Map (num_proc=8)" and p.data["rate"] == 800.0 for p in progress)


def test_two_ranks_interleaved_tracebacks_are_separated() -> None:
    events = parse("two_ranks_traceback.log")
    errors = kinds(events, EventKind.ERROR)
    assert sorted(e.data["rank"] for e in errors) == [0, 1]
    by_rank = {e.data["rank"]: e.data for e in errors}
    assert "cuda:1" in by_rank[0]["message"]
    assert "cuda:0" in by_rank[1]["message"]
    assert by_rank[0]["traceback"]["frame"].endswith("in train_batch")
    assert by_rank[0]["traceback"]["code"] == "self._exec_schedule(sched)"
    assert [e.data["rank"] for e in kinds(events, EventKind.EXIT)] == [0, 1]
    gbs = [e for e in kinds(events, EventKind.INFO) if e.data["code"] == "global_batch_size"]
    assert len(gbs) == 2
    assert gbs[0].data["value"] == 8


def test_resume_line() -> None:
    events = parse("resume.log")
    assert [e.data for e in kinds(events, EventKind.RESUME)] == [{"epoch": 3, "step": 501}]
    load = [e for e in kinds(events, EventKind.INFO) if e.data["code"] == "checkpoint_load"]
    assert load[0].data["value"].endswith("global_step500/mp_rank_00_model_states.pt")


def test_warnings_have_codes_and_paths() -> None:
    events = parse("missing_captions.log")
    warnings = kinds(events, EventKind.WARNING)
    codes = [w.data["code"] for w in warnings]
    assert codes.count("missing_caption") == 5
    assert {
        "missing_mask",
        "unreadable_media",
        "video_too_short",
        "num_proc_reduced",
        "bucket_dropped",
    } <= set(codes)
    first = next(w for w in warnings if w.data["code"] == "missing_caption")
    assert first.data["path"] == "/data/my_set/img_000.png"
    assert "Cound not find caption" in first.data["message"]


def test_nan_loss_warns_once_and_keeps_nan() -> None:
    events = parse("nan_segfault.log")
    nan_warnings = [w for w in kinds(events, EventKind.WARNING) if w.data["code"] == "nan_loss"]
    assert len(nan_warnings) == 1
    assert nan_warnings[0].data["step"] == 2
    losses = [e.data["loss"] for e in kinds(events, EventKind.STEP)]
    assert losses[1] != losses[1]


def test_gradient_release_lr_is_a_single_number() -> None:
    steps = kinds(parse("save_quit.log"), EventKind.STEP)
    assert steps[0].data["lr"] == [5.15e-06]


def test_oom_during_eval_gets_eval_hint() -> None:
    parser = ConsoleParser(lambda: 1.0)
    text = 'Running eval\nTraceback (most recent call last):\n  File "x.py", line 1, in f\n    g()\n'
    text += "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1 GiB\n"
    events = parser.feed(text) + parser.flush()
    failure = classify_failure(1, events, [])
    assert failure is not None
    assert failure.cls == "cuda_oom"
    assert "eval_micro_batch_size_per_gpu" in failure.hint


def test_oom_hint_skips_levers_already_applied() -> None:
    parser = ConsoleParser(lambda: 1.0)
    events = parser.feed("torch.OutOfMemoryError: CUDA out of memory.\n") + parser.flush()
    events = [Event(EventKind.ERROR, 1.0, {"class": "cuda_oom", "message": "CUDA out of memory", "hint": ""})]
    config = {"model": {"blocks_to_swap": 20}, "activation_checkpointing": True}
    failure = classify_failure(1, events, [], config=config)
    assert failure is not None
    assert failure.hint.startswith("Out of GPU memory. Next: set [model] transformer_dtype")


def test_real_builtin_engine_output() -> None:
    """Console of a real CPU run of the built-in engine (tiny demo, 2 epochs, captured 2026-11-22)."""
    events = parse("builtin_engine_cpu.log")
    steps = kinds(events, EventKind.STEP)
    assert [s.data["step"] for s in steps] == list(range(1, 13))
    assert all(s.data["lr"] for s in steps)
    assert [e.data["epoch"] for e in kinds(events, EventKind.EPOCH)] == [2]
    assert [e.data["dir"] for e in kinds(events, EventKind.SAVE)] == ["epoch1", "epoch2"]
    assert [e.data["tag"] for e in kinds(events, EventKind.CHECKPOINT)] == ["global_step6", "global_step12"]
    phases = [e.data["phase"] for e in kinds(events, EventKind.PHASE)]
    assert phases[:3] == ["launching", "loading", "caching"]
    assert phases[-1] == "done"
    progress = kinds(events, EventKind.PROGRESS)
    assert any(
        p.data["what"] == "caching latents" and p.data["current"] == p.data["total"] == 20 for p in progress
    )
    assert classify_failure(0, events, LogTail(DATA / "builtin_engine_cpu.log").last_lines(50)) is None


@pytest.mark.parametrize(
    ("code", "tail", "expected"),
    [
        (-15, "", "user_stop"),
        (130, "", "user_stop"),
        (
            1,
            "[2026-08-21 14:02:11,100] [INFO] [launch.py:1:sigkill_handler] "
            "Main process received SIGTERM, exiting",
            "user_stop",
        ),
        (247, "", "host_oom"),
        (137, "Killed", "host_oom"),
        (245, "", "segfault"),
        (-6, "", "abort"),
        (0, "", "incomplete"),
        (None, "", "lost"),
        (1, "OSError: [Errno 28] No space left on device", "disk_full"),
        (1, "RuntimeError: Invalid path: /data/nope", "missing_path"),
        (1, "NotImplementedError: Model type fluxx is not implemented", "config_error"),
        (3, "", "exit_code"),
    ],
)
def test_exit_codes_and_tail_lines(code: int | None, tail: str, expected: str) -> None:
    parser = ConsoleParser(lambda: 1.0)
    events = parser.feed(tail + "\n") + parser.flush()
    failure = classify_failure(code, events, [tail])
    assert failure is not None
    assert failure.cls == expected


def test_step_line_with_a_rank_prefix_is_kept() -> None:
    parser = ConsoleParser(lambda: 1.0)
    text = (
        "[rank0]: [2026-08-21 14:02:11,218] [INFO] [logging.py:107:log_dist] [Rank 0] step=7, skipped=0, "
        "lr=[5.15e-06], mom=[[0.9, 0.99]]\n"
        "[rank0]: steps: 7 loss: 0.1936 iter time (s): 4.512 samples/sec: 0.887\n"
        "[rank1]:steps: 8 loss: nan iter time (s): 4.000 samples/sec: 1.000\n"
    )
    steps = kinds(parser.feed(text) + parser.flush(), EventKind.STEP)
    assert [(s.data["step"], s.data.get("lr")) for s in steps] == [(7, [5.15e-06]), (8, None)]
    assert steps[0].data["loss"] == pytest.approx(0.1936)


def test_builtin_engines_eval_skip_warning_is_a_warning_event() -> None:
    parser = ConsoleParser(lambda: 0.0)
    line = (
        "WARNING: eval dataset 'few' has no complete eval batch: no size bucket holds 4 samples "
        "(eval_micro_batch_size_per_gpu x eval_gradient_accumulation_steps x data-parallel ranks). Its "
        "eval is skipped; add images (or num_repeats) or lower eval_micro_batch_size_per_gpu.\n"
    )
    events = [*parser.feed(line.encode()), *parser.flush()]
    warnings = kinds(events, EventKind.WARNING)
    assert [w.data["code"] for w in warnings] == ["eval_skipped"]
    assert "few" in warnings[0].data["message"]
