"""Pure pieces of the supervisor: the launch command per engine (spec §9), the console writer's
``\\r`` handling, port allocation, settings errors."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from dpipe_tui.runs.model import RunRecord
from dpipe_tui.services.settings import SettingsError, load_settings
from dpipe_tui.supervisor.console import ConsoleWriter
from dpipe_tui.supervisor.launch import build_command, resolve_deepspeed
from dpipe_tui.supervisor.ports import free_port, port_is_free

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
