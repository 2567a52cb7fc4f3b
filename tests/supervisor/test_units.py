"""Pure pieces of the supervisor: the launch command per engine (spec §9), the console writer's
``\\r`` handling, port allocation, settings errors, the resume profile check and its baseline."""

from __future__ import annotations

import io
import json
import os
import socket
from pathlib import Path

import pytest

from dpipe_tui.runs.model import RunRecord
from dpipe_tui.settings import SettingsError, load_settings
from dpipe_tui.supervisor.console import ConsoleWriter
from dpipe_tui.supervisor.launch import build_command, resolve_deepspeed
from dpipe_tui.supervisor.ports import free_port, port_is_free
from dpipe_tui.supervisor.profile_diff import ConfigSnapshot, compare_snapshots
from dpipe_tui.supervisor.refreeze import archive_attempt, baseline_for

BASE = RunRecord(
    id="r",
    profile_path="/p/x.toml",
    engine="builtin",
    config_path="/reg/r/profile.toml",
    cwd="/p",
    launcher="/venv/bin/python",
)


@pytest.mark.parametrize(
    ("changes", "expected_devices", "accelerator"),
    [
        ({"gpus": (0, 2)}, ["--include", "localhost:0,2"], None),
        ({"gpus": (0,), "cpu": True}, ["--num_gpus", "1"], "cpu"),
        ({"gpus": (0, 1), "cpu": True}, ["--num_gpus", "2"], "cpu"),
    ],
)
def test_builtin_command(
    changes: dict[str, object], expected_devices: list[str], accelerator: str | None
) -> None:
    import dataclasses

    cmd = build_command(dataclasses.replace(BASE, **changes), 29611)  # type: ignore[arg-type]
    assert list(cmd.argv) == [
        "/venv/bin/python",
        "-m",
        "deepspeed.launcher.runner",
        *expected_devices,
        "--master_port",
        "29611",
        "--module",
        "dpipe_tui.engine",
        "--deepspeed",
        "--config",
        "/reg/r/profile.toml",
        "--master_port",
        "29611",
    ]
    assert cmd.env.get("DS_ACCELERATOR") == accelerator
    assert cmd.env["NCCL_P2P_DISABLE"] == cmd.env["NCCL_IB_DISABLE"] == "1"
    assert cmd.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # CUDA's ids match NVML's (and --include)
    assert cmd.cwd == Path("/p")


def test_diffusion_pipe_command_resumes_an_explicit_folder() -> None:
    import dataclasses

    record = dataclasses.replace(
        BASE,
        engine="diffusion-pipe",
        launcher="/dp/venv/bin/deepspeed",
        cwd="/dp",
        gpus=(1, 3),
        resume_from="20261122_18-30-02",
        extra_args=("--trust_cache",),
    )
    cmd = build_command(record, 29700)
    assert list(cmd.argv) == [
        "/dp/venv/bin/deepspeed",
        "--include",
        "localhost:1,3",
        "--master_port",
        "29700",
        "train.py",
        "--deepspeed",
        "--config",
        "/reg/r/profile.toml",
        "--master_port",
        "29700",
        "--resume_from_checkpoint",
        "20261122_18-30-02",
        "--trust_cache",
    ]
    assert cmd.cwd == Path("/dp")
    assert cmd.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    with pytest.raises(ValueError, match="unknown engine"):
        build_command(dataclasses.replace(record, engine="torchrun"), 1)


def test_resolve_deepspeed(tmp_path: Path) -> None:
    assert resolve_deepspeed(tmp_path, "/x/deepspeed") == "/x/deepspeed"
    exe = tmp_path / "venv" / "bin" / "deepspeed"
    exe.parent.mkdir(parents=True)
    exe.write_text("")
    assert resolve_deepspeed(tmp_path) == str(exe)


def _writer(clock: list[float]) -> tuple[ConsoleWriter, io.BytesIO]:
    sink = io.BytesIO()
    return ConsoleWriter(sink, clock=lambda: clock[0], redraw_interval=2.0), sink


def test_console_keeps_the_final_redraw_and_throttles_the_rest() -> None:
    clock = [100.0]
    writer, sink = _writer(clock)
    writer.feed(b"start\n")
    for i in range(50):
        writer.feed(f"\r{i}%|bar".encode())
    clock[0] += 2.5
    writer.feed(b"\r60%|bar")
    writer.feed(b"\r100%|bar\n")
    writer.feed(b"next line\r")
    writer.feed(b"\nafter crlf split\n")
    assert sink.getvalue().decode().splitlines() == [
        "start",
        "0%|bar",
        "49%|bar",  # the newest complete redraw once the interval had passed
        "100%|bar",
        "next line",
        "after crlf split",
    ]


def test_console_flushes_an_unterminated_tail_and_bad_utf8() -> None:
    writer, sink = _writer([0.0])
    writer.feed(b"caf\xc3")
    writer.feed(b"\xa9 \xff end")
    writer.flush()
    assert sink.getvalue().decode() == "café \ufffd end\n"
    assert list(writer.tail) == ["café \ufffd end"]


def test_ports_skip_taken_and_excluded() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert not port_is_free(taken)
        port = free_port(exclude={taken + 1}, port_range=(taken, taken + 2))
        assert port == taken + 2
        with pytest.raises(RuntimeError):
            free_port(exclude={taken + 1, taken + 2}, port_range=(taken, taken + 2))


def test_settings_errors_name_the_file_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIFFUSION_PIPE_PATH", raising=False)
    assert load_settings(tmp_path).default_engine == "builtin"
    (tmp_path / "settings.toml").write_text('default_engine = "diffusion-pipe"\nmin_free_gib = -1\n')
    with pytest.raises(SettingsError, match=r"settings\.toml: min_free_gib"):
        load_settings(tmp_path)
    (tmp_path / "settings.toml").write_text('[diffusion_pipe]\npath = "/dp"\n')
    assert load_settings(tmp_path).diffusion_pipe_path == Path("/dp")
    monkeypatch.setenv("DIFFUSION_PIPE_PATH", "/other")
    assert load_settings(tmp_path).diffusion_pipe_path == Path("/other")


MAIN = {"model": {"type": "chroma", "transformer_path": "/m/c.safetensors", "dtype": "bfloat16"}}
ADAPTER = {"type": "lora", "rank": 8, "dtype": "bfloat16"}


@pytest.mark.parametrize(
    ("table", "key", "value", "breaks"),
    [
        ("model", "type", "flux", True),
        ("model", "transformer_path", "/m/other.safetensors", True),
        ("model", "diffusers_path", "/m/flux", True),
        ("model", "blocks_to_swap", 8, False),  # the OOM hint's own remedy must not refuse a resume
        ("model", "dtype", "float16", False),
        ("model", "transformer_dtype", "float8", False),
        ("adapter", "rank", 16, True),
        ("adapter", "type", "none", True),
        ("adapter", "dtype", "float32", False),
        ("adapter", "dropout", 0.1, False),
        ("", "pipeline_stages", 2, True),
        ("", "gradient_accumulation_steps", 4, False),
    ],
)
def test_resume_profile_changes(table: str, key: str, value: object, breaks: bool) -> None:
    old = ConfigSnapshot({**MAIN, "adapter": ADAPTER}, {"resolutions": [512]}, 1)
    main: dict[str, object] = {"model": dict(MAIN["model"]), "adapter": dict(ADAPTER)}
    target: dict[str, object] = main[table] if table else main  # type: ignore[assignment]
    target[key] = value
    [change] = compare_snapshots(old, ConfigSnapshot(main, {"resolutions": [512]}, 1))
    assert change.breaks_loading is breaks
    assert key in change.message


def test_resume_profile_check_compares_gpus_and_dataset() -> None:
    old = ConfigSnapshot(dict(MAIN), {"resolutions": [512]}, 2)
    keys = [c.key for c in compare_snapshots(old, ConfigSnapshot(dict(MAIN), {"resolutions": [1024]}, 1))]
    assert keys == ["dataset", "gpus"]
    assert compare_snapshots(old, ConfigSnapshot(dict(MAIN), {"resolutions": [512]}, 2)) == []


def test_baseline_is_the_attempt_that_wrote_the_checkpoint(tmp_path: Path) -> None:
    import dataclasses

    from dpipe_tui.checkpoints.resume import find_point

    run_dir, engine_dir = tmp_path / "reg", tmp_path / "out" / "20260101_00-00-00"
    run_dir.mkdir()
    for step, written in ((2, 1100.0), (6, 2100.0)):  # attempt 1 started at 1000, attempt 2 at 2000
        (engine_dir / f"global_step{step}").mkdir(parents=True)
        states = engine_dir / f"global_step{step}" / "mp_rank_00_model_states.pt"
        states.write_bytes(b"x")
        os.utime(states, (written, written))
    config = run_dir / "profile.toml"
    for attempt, rank, started in ((1, 4, 1000.0), (2, 8, 2000.0)):
        config.write_text(f"[adapter]\ntype = 'lora'\nrank = {rank}\n")
        record = dataclasses.replace(
            BASE, config_path=str(config), attempt=attempt, started_at=started, gpus=(0, 1)
        )
        archive_attempt(run_dir, record)
    config.write_text("[adapter]\ntype = 'lora'\nrank = 16\n")  # re-frozen in place for attempt 3
    assert archive_attempt(run_dir, record) == run_dir / "attempts" / "2.json"  # kept, not rewritten
    assert json.loads((run_dir / "attempts" / "2.json").read_text())["main"]["adapter"]["rank"] == 8
    old = baseline_for(run_dir, record, find_point(engine_dir, "global_step2"))
    new = baseline_for(run_dir, record, find_point(engine_dir, "global_step6"))
    assert (old.main["adapter"]["rank"], new.main["adapter"]["rank"], new.gpus) == (4, 8, 2)


def test_baseline_skips_an_attempt_that_never_started(tmp_path: Path) -> None:
    import dataclasses

    from dpipe_tui.checkpoints.resume import find_point

    run_dir, engine_dir = tmp_path / "reg", tmp_path / "out" / "20260101_00-00-00"
    run_dir.mkdir()
    (engine_dir / "global_step100").mkdir(parents=True)
    states = engine_dir / "global_step100" / "mp_rank_00_model_states.pt"
    states.write_bytes(b"x")
    os.utime(states, (2000.0, 2000.0))
    config = run_dir / "profile.toml"
    # attempt 1 trained global_step100 at rank 16; attempt 2 was re-frozen at rank 32, then queued
    # and cancelled: it never started, so it cannot be what the checkpoint was trained with
    for attempt, rank, started in ((1, 16, 1000.0), (2, 32, None)):
        config.write_text(f"[adapter]\ntype = 'lora'\nrank = {rank}\n")
        record = dataclasses.replace(BASE, config_path=str(config), attempt=attempt, started_at=started)
        archive_attempt(run_dir, record)
    for point in (find_point(engine_dir, "global_step100"), None):
        assert baseline_for(run_dir, record, point).main["adapter"]["rank"] == 16
