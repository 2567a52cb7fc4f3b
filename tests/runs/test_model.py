"""RunRecord JSON round trip and the transition table."""

from __future__ import annotations

import itertools

import pytest

from dpipe_tui.runs.model import (
    TRANSITIONS,
    IllegalTransition,
    RecordError,
    RunRecord,
    RunState,
    new_run_id,
    transition,
)
from dpipe_tui.runs.redact import redact_argv, redact_env

RECORD = RunRecord(id="20261122-1830-demo-3f2a", profile_path="/p/demo.toml", engine="builtin", gpus=(0, 1))

LEGAL = {
    ("queued", "starting"), ("queued", "stopped"),
    ("starting", "running"), ("starting", "failed"), ("starting", "stopped"), ("starting", "lost"),
    ("running", "completed"), ("running", "failed"), ("running", "stopped"), ("running", "lost"),
    ("failed", "queued"), ("stopped", "queued"),
    ("lost", "queued"), ("lost", "failed"), ("lost", "stopped"), ("lost", "completed"),
}  # fmt: skip


@pytest.mark.parametrize(("old", "new"), list(itertools.product(RunState, RunState)))
def test_transition_table(old: RunState, new: RunState) -> None:
    record = RunRecord(id="x", profile_path="p", engine="builtin", state=old)
    if (old.value, new.value) in LEGAL:
        assert transition(record, new, exit_code=3).state is new
    else:
        with pytest.raises(IllegalTransition):
            transition(record, new)
    assert (new in TRANSITIONS[old]) == ((old.value, new.value) in LEGAL)


def test_json_round_trip_and_tolerance() -> None:
    data = RECORD.to_json_dict()
    assert RunRecord.from_json_dict(data) == RECORD
    assert RunRecord.from_json_dict({**data, "from_the_future": 1}) == RECORD  # unknown keys ignored
    older = {k: v for k, v in data.items() if k in ("id", "profile_path", "engine", "state")}
    assert RunRecord.from_json_dict(older).gpus == (0,)  # missing keys take defaults
    with pytest.raises(RecordError):
        RunRecord.from_json_dict({**data, "state": "dancing"})
    with pytest.raises(RecordError):
        RunRecord.from_json_dict({**data, "gpus": "0,1"})
    with pytest.raises(RecordError):
        RunRecord.from_json_dict({"engine": "builtin"})


def test_exiting_is_a_live_view_that_is_never_read_from_disk() -> None:
    assert RunState.EXITING.is_live  # its GPUs stay reserved, stop applies, resume and rm refuse
    assert not RunState.EXITING.is_terminal
    assert RunState.EXITING.is_view_only
    assert not any(s.is_view_only for s in RunState if s is not RunState.EXITING)
    with pytest.raises(RecordError, match="never stored"):
        RunRecord.from_json_dict({**RECORD.to_json_dict(), "state": "exiting"})


def test_nan_loss_is_stored_as_null() -> None:
    import dataclasses

    assert dataclasses.replace(RECORD, last_loss=float("nan")).to_json_dict()["last_loss"] is None


def test_new_run_id_shape() -> None:
    run_id = new_run_id("chroma e6ai/512", now=0)
    stamp, _, rest = run_id.partition("-")
    assert len(stamp) == 8
    assert rest.split("-", 1)[1].startswith("chroma-e6ai-512-")
    assert len(run_id.rsplit("-", 1)[1]) == 4


def test_redaction() -> None:
    env = redact_env(
        {
            "WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567",
            "NCCL_P2P_DISABLE": "1",
            "HF_TOKEN": "hf_x",
            "X": "a" * 20 + "1" * 20,
        }
    )
    assert env == {"WANDB_API_KEY": "***", "NCCL_P2P_DISABLE": "1", "HF_TOKEN": "***", "X": "***"}
    argv = redact_argv(
        [
            "deepspeed",
            "--config",
            "/a/b.toml",
            "--api-key",
            "s3cr3t",
            "--token=abc",
            "0123456789abcdef0123456789abcdef01234567",
        ]
    )
    assert argv == ["deepspeed", "--config", "/a/b.toml", "--api-key", "***", "--token=***", "***"]
