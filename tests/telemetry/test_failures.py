"""Failure classification on traceback transcripts: every spec §4.5 config error, NCCL, missing files,
disk full, SIGKILL honesty, evidence order, and the monitor seam passing the frozen profile's config."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dpipe_tui.supervisor.telemetry_link import classify
from dpipe_tui.telemetry import ConsoleParser, Event, EventKind, classify_failure

if TYPE_CHECKING:
    from pathlib import Path

LAUNCH = (
    "[2026-08-21 14:02:11,037] [INFO] [runner.py:607:main] cmd = /env/bin/python -u -m "
    "deepspeed.launcher.launch --world_info=eyJsb2NhbGhvc3QiOiBbMF19 --master_addr=127.0.0.1 "
    "--master_port=29511 --enable_each_rank_log=None train.py --deepspeed --config /runs/x/profile.toml\n"
    "[2026-08-21 14:02:11,993] [INFO] [launch.py:168:main] Setting CUDA_VISIBLE_DEVICES=0\n"
)


def _exit(code: int) -> str:
    return (
        "[2026-08-21 14:02:12,333] [INFO] [launch.py:319:sigkill_handler] Killing subprocess 12345\n"
        "[2026-08-21 14:02:12,319] [ERROR] [launch.py:325:sigkill_handler] ['/env/bin/python', '-u', "
        "'train.py', '--local_rank=0', '--deepspeed', '--config', '/runs/x/profile.toml'] exits with "
        f"return code = {code}\n"
    )


def transcript(exception: str, frame: str, code_line: str, *, rank: bool = True, rc: int = 1) -> str:
    """A launcher start, a one-rank traceback (``[rank0]:`` prefixed like torch.distributed), the exit."""
    body = [
        "Traceback (most recent call last):",
        '  File "/dp/train.py", line 281, in <module>',
        "    model = load_model(config)",
        f'  File "{frame}", in load',
        f"    {code_line}",
        exception,
    ]
    prefix = "[rank0]: " if rank else ""
    return LAUNCH + "".join(f"{prefix}{line}\n" for line in body) + _exit(rc)


def run(text: str, exit_code: int | None = 1, config: dict[str, object] | None = None) -> tuple[str, str]:
    parser = ConsoleParser(lambda: 1.0)
    events = parser.feed(text) + parser.flush()
    failure = classify_failure(exit_code, events, text.splitlines()[-200:], config=config)
    assert failure is not None
    return failure.cls, failure.hint


# spec §4.5 "Common config errors to surface": (exception line, failing source line, class, hint words)
CONFIG_ERRORS = [
    (
        "AssertionError",
        "assert 'save_every_n_epochs' in config or 'save_every_n_steps' in config",
        "config_error",
        ("save_every_n_epochs", "main TOML"),
    ),
    (
        "AssertionError: Block swapping only works with pipeline_stages=1",
        "assert config['pipeline_stages'] == 1, 'Block swapping only works with pipeline_stages=1'",
        "config_error",
        ("pipeline_stages = 1", "blocks_to_swap"),
    ),
    (
        "AssertionError: Block swapping only works when training LoRA",
        "assert is_adapter, 'Block swapping only works when training LoRA'",
        "config_error",
        ("[adapter]", "blocks_to_swap"),
    ),
    (
        "AssertionError: Cannot swap more than 56 blocks, requested 60",
        "assert blocks_to_swap <= num_blocks - 1",
        "config_error",
        ("blocks_to_swap",),
    ),
    (
        "NotImplementedError: Model type fluxx is not implemented",
        "raise NotImplementedError(f'Model type {model_type} is not implemented')",
        "config_error",
        ("[model] type", "dpipe-tui new --recipe"),
    ),
    (
        "ValueError: This script forces alpha=rank to make the saving logic simpler. Remove alpha.",
        "raise ValueError('This script forces alpha=rank ...')",
        "config_error",
        ("alpha",),
    ),
    (
        "RuntimeError: Processed dataset was empty. Probably caused by micro batch size too large.",
        "raise RuntimeError('Processed dataset was empty ...')",
        "config_error",
        ("micro_batch_size_per_gpu", "num_repeats"),
    ),
    (
        "RuntimeError: Invalid path: /data/my_set",
        "raise RuntimeError(f'Invalid path: {path}')",
        "missing_path",
        ("dataset TOML",),
    ),
    (
        "RuntimeError: Invalid mask_path: /data/masks",
        "raise RuntimeError(f'Invalid mask_path: {mask_path}')",
        "missing_path",
        ("dataset TOML",),
    ),
    (
        "RuntimeError: Invalid control_path: /data/control",
        "raise RuntimeError(f'Invalid control_path: {control_path}')",
        "missing_path",
        ("dataset TOML",),
    ),
    (
        "RuntimeError: Directory /data/my_set had no images/videos!",
        "raise RuntimeError(f'Directory {path} had no images/videos!')",
        "config_error",
        ("media", "path"),
    ),
    (
        "RuntimeError: Could not autodetect model variant from /models/wan/config.json",
        "raise RuntimeError('Could not autodetect model variant')",
        "config_error",
        ("ckpt_path",),
    ),
    (
        "ValueError: fp8_scaled weights are not supported. Use bf16 weights.",
        "raise ValueError('fp8_scaled weights are not supported')",
        "config_error",
        ("bf16",),
    ),
    (
        "ValueError: partition_split must be length 1 (pipeline_stages-1), was actually 2",
        "raise ValueError(f'partition_split must be length {n}')",
        "config_error",
        ("partition_split", "pipeline_stages-1"),
    ),
]


@pytest.mark.parametrize(
    ("exception", "code_line", "cls", "words"), CONFIG_ERRORS, ids=[c[0][:40] for c in CONFIG_ERRORS]
)
def test_spec_config_errors(exception: str, code_line: str, cls: str, words: tuple[str, ...]) -> None:
    found, hint = run(transcript(exception, "/dp/models/base.py", code_line))
    assert found == cls
    assert "Python error" not in hint, "a known config error must not get the generic traceback hint"
    for word in words:
        assert word in hint, f"hint should name {word!r}: {hint}"


RUNTIME_ERRORS = [
    (  # an NCCL error that is not a watchdog timeout
        "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, "
        "unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.21.5",
        "/env/lib/python3.12/site-packages/torch/distributed/distributed_c10d.py",
        "work = group.allreduce([tensor], opts)",
        "nccl_error",
        ("NCCL_P2P_DISABLE=1",),
    ),
    (
        "FileNotFoundError: [Errno 2] No such file or directory: '/models/flux/ae.safetensors'",
        "/dp/models/flux.py",
        "vae = load_file(path)",
        "missing_path",
        ("ckpt_path", "dataset paths"),
    ),
    (
        "OSError: [Errno 28] No space left on device",
        "/env/lib/python3.12/site-packages/torch/serialization.py",
        "f.write(data)",
        "disk_full",
        ("global_stepN",),
    ),
]


@pytest.mark.parametrize(
    ("exception", "source", "code_line", "cls", "words"),
    RUNTIME_ERRORS,
    ids=["nccl_error", "file_not_found", "disk_full"],
)
def test_runtime_errors(
    exception: str, source: str, code_line: str, cls: str, words: tuple[str, ...]
) -> None:
    found, hint = run(transcript(exception, source, code_line))
    assert found == cls
    for word in words:
        assert word in hint, f"hint should name {word!r}: {hint}"
    assert "dpipe-tui prune" not in hint  # no such command yet: a hint must name what exists


@pytest.mark.parametrize("code", [-9, 247, 137])
def test_sigkill_is_reported_honestly_with_the_cache_levers(code: int) -> None:
    parser = ConsoleParser(lambda: 1.0)
    events = parser.feed(LAUNCH + "caching latents: /data/my_set\n") + parser.flush()
    failure = classify_failure(code, events, [])
    assert failure is not None
    assert failure.cls == "host_oom"
    assert "killed (SIGKILL)" in failure.message
    assert "usually the host OOM killer; or killed by someone else" in failure.message
    assert "--cache_only" in failure.hint
    assert "--trust_cache" in failure.hint


@pytest.mark.parametrize(("rc", "cls"), [(-9, "host_oom"), (-11, "segfault")])
def test_a_harmless_tail_line_does_not_mask_a_signal(rc: int, cls: str) -> None:
    harmless = "ls: cannot access '/tmp/x': No such file or directory\n"
    text = LAUNCH + harmless + "steps: 1 loss: 0.1 iter time (s): 1.0 samples/sec: 1.0\n" + _exit(rc)
    found, _ = run(text, exit_code=rc & 0xFF)
    assert found == cls
    # without the signal the same line is still the best evidence there is
    found, _ = run(LAUNCH + harmless + _exit(1))
    assert found == "missing_path"


def test_a_traceback_still_beats_the_exit_code_it_explains() -> None:
    text = transcript(
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "/dp/train.py",
        "loss = model_engine.train_batch()",
    )
    assert run(text)[0] == "cuda_oom"


def test_monitor_seam_tailors_the_oom_hint_to_the_frozen_profile(tmp_path: Path) -> None:
    text = transcript(
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "/dp/train.py",
        "loss = model_engine.train_batch()",
    )
    parser = ConsoleParser(lambda: 1.0)
    events: list[Event] = parser.feed(text) + parser.flush()
    assert any(e.kind is EventKind.ERROR and e.get("class") == "cuda_oom" for e in events)
    tail = text.splitlines()
    plain = classify(1, events, tail)
    assert plain is not None
    assert plain.hint.startswith("Out of GPU memory. Next: set [model] blocks_to_swap")
    profile = tmp_path / "profile.toml"
    profile.write_text("output_dir = 'out'\n\n[model]\ntype = 'chroma'\nblocks_to_swap = 16\n")
    tailored = classify(1, events, tail, config_path=str(profile))
    assert tailored is not None
    assert tailored.cls == "cuda_oom"
    assert tailored.hint.startswith("Out of GPU memory. Next: set activation_checkpointing")
    assert "blocks_to_swap" not in tailored.hint
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\n")
    fallback = classify(1, events, tail, config_path=str(broken))  # unreadable: the generic order
    assert fallback is not None
    assert fallback.hint == plain.hint
