"""Why a run ended, in words a user can act on (spec §4.5, §7.5, §7.6).

Why a separate module: the parser classifies each exception line the moment it sees it (so the
monitor can write an ``error`` event immediately), and :func:`classify_failure` later weighs all the
evidence of a finished run (error events, launcher return codes, quit markers, the console tail, the
process's own exit code). Both share one table of known failures, so the CLI, the TUI and the monitor
always give the same class and hint for the same output.

Order of evidence: a specific error seen in the output beats a signal in a return code (an OOM
traceback explains the ``return code = 1`` that follows it), which beats a known phrase found loose in
the console tail (such a line may be harmless), which beats a generic traceback; exit code 0 is
success only with ``TRAINING COMPLETE!`` — otherwise one of the quit paths (spec §4.5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.lines import EXIT_CODE

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

OOM_LEVERS: Final = (
    (
        "blocks_to_swap",
        "set [model] blocks_to_swap (e.g. 16, more if needed; needs pipeline_stages=1 and a LoRA)",
    ),
    ("activation_checkpointing", "set activation_checkpointing = true (or 'unsloth')"),
    ("transformer_dtype", "set [model] transformer_dtype = 'float8' (LoRA only)"),
    ("resolution", "lower the dataset resolutions / frame_buckets"),
    ("micro_batch", "lower micro_batch_size_per_gpu (raise gradient_accumulation_steps to keep the batch)"),
)


@dataclass(frozen=True, slots=True)
class Failure:
    """A classified failure.

    Attributes:
        cls: short machine name (``cuda_oom``, ``host_oom``, ``config_error``, ``user_stop`` ...).
        message: what happened, one or two lines, taken from the output where possible.
        hint: what to do about it.
    """

    cls: str
    message: str
    hint: str


_CFG = "config_error"
# (regex on the exception/error text or the failing source line, class, hint). First match wins.
_KNOWN: Final[tuple[tuple[re.Pattern[str], str, str], ...]] = tuple(
    (re.compile(p, re.IGNORECASE), c, h)
    for p, c, h in (
        (r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory", "cuda_oom", ""),
        (
            r"No space left on device|ENOSPC|\[Errno 28\]",
            "disk_full",
            "The disk is full: free space in output_dir and the dataset cache; old global_stepN "
            "checkpoint folders accumulate in every run folder and are never deleted, so remove the "
            "ones you will not resume from, then resume.",
        ),
        (
            r"EADDRINUSE|Address already in use",
            "port_in_use",
            "The master port is taken (another run?). Relaunch with a free --master_port; "
            "dpipe-tui picks one per run.",
        ),
        (
            r"Watchdog caught collective operation timeout|NCCL.*timeout|timed out.*NCCL",
            "nccl_timeout",
            "A rank hung in a collective (NCCL watchdog). Check that every GPU is healthy and not shared, "
            "try NCCL_P2P_DISABLE=1, then resume from the last checkpoint.",
        ),
        (
            r"\bnccl\w*Error\b|NCCL error",
            "nccl_error",
            "NCCL failed between GPUs. Check driver/CUDA versions and GPU topology; "
            "try NCCL_P2P_DISABLE=1 or "
            "NCCL_IB_DISABLE=1; run `nvidia-smi` for stuck processes.",
        ),
        (
            r"Unable to find latest file|assert load_path is not None",
            "no_checkpoint",
            "Resume needs a DeepSpeed checkpoint (global_stepN + `latest`); this run folder has none. "
            "Start fresh, or resume from a folder that has one; set checkpoint_every_n_minutes/epochs "
            "so one exists next time.",
        ),
        (
            r"save_every_n_epochs.? in config",
            _CFG,
            "Add save_every_n_epochs (or save_every_n_steps / save_every_n_examples) to the main TOML.",
        ),
        (
            r"Block swapping only works with pipeline_stages=1",
            _CFG,
            "Block swap needs pipeline_stages = 1: remove blocks_to_swap or use one stage.",
        ),
        (
            r"Block swapping only works when training LoRA",
            _CFG,
            "Block swap needs an [adapter] table (LoRA); remove blocks_to_swap for full fine-tuning.",
        ),
        (r"Cannot swap more than", _CFG, "Lower [model] blocks_to_swap below the number the error names."),
        (
            r"Model type .* is not implemented",
            _CFG,
            "Unknown [model] type: check the spelling against diffusion-pipe's supported models "
            "(`dpipe-tui new --recipe`).",
        ),
        (r"Adapter type .* is not implemented", _CFG, "Use [adapter] type = 'lora'."),
        (r"forces alpha=rank", _CFG, "Remove [adapter] alpha: diffusion-pipe sets alpha = rank."),
        (
            r"Processed dataset was empty",
            _CFG,
            "Every size bucket rounded down to 0: lower micro_batch_size_per_gpu / "
            "gradient_accumulation_steps, "
            "or raise num_repeats (see `dpipe-tui validate` for bucket counts).",
        ),
        (
            r"Invalid (mask_|control_)?path|Invalid default_mask_file",
            "missing_path",
            "A dataset path does not exist: fix it in the dataset TOML (relative paths resolve against the "
            "diffusion-pipe checkout).",
        ),
        (r"had no images/videos", _CFG, "That dataset directory has no supported media files; fix the path."),
        (
            r"Could not autodetect model variant",
            _CFG,
            "Wan: point [model] ckpt_path at an official Wan checkpoint folder "
            "(its config.json decides the variant).",
        ),
        (
            r"fp8_scaled weights are not supported",
            _CFG,
            "Use bf16 or plain fp8 weights, not fp8_scaled ones.",
        ),
        (r"partition_split must be length", _CFG, "partition_split needs pipeline_stages-1 entries."),
        (r"Unknown lr_scheduler", _CFG, "Use lr_scheduler = 'constant' or 'linear' (or 'cosine')."),
        (r"num_repeats must be >0", _CFG, "Set num_repeats to 1 or more."),
        (r"No control file exists", "missing_path", "Add the missing control file or fix control_path."),
        (
            r"FileNotFoundError|No such file or directory|Cound not find safetensors",
            "missing_path",
            "A file the config names does not exist: check the model paths (ckpt_path, diffusers_path, "
            "transformer_path, vae, llm paths) and dataset paths.",
        ),
        (
            r"KeyboardInterrupt",
            "user_stop",
            "Interrupted (SIGINT). Resume from the last checkpoint if one exists.",
        ),
    )
)


def oom_hint(config: Mapping[str, Any] | None = None, *, during_eval: bool = False) -> str:
    """The next VRAM lever to pull, in order, skipping those the config already uses.

    Args:
        config: the main TOML as a plain mapping (optional); levers already applied are skipped.
        during_eval: the OOM happened while evaluating.

    Returns:
        A one-paragraph hint.
    """
    if during_eval:
        return (
            "Out of GPU memory during eval: lower eval_micro_batch_size_per_gpu, or "
            "eval_gradient_accumulation_steps, or disable eval_before_first_step."
        )
    model = dict(config.get("model", {})) if config else {}
    applied = {
        "blocks_to_swap": bool(model.get("blocks_to_swap")),
        "activation_checkpointing": bool(config.get("activation_checkpointing")) if config else False,
        "transformer_dtype": "float8" in str(model.get("transformer_dtype", "")),
    }
    todo = [text for key, text in OOM_LEVERS if not applied.get(key, False)]
    first, rest = todo[0], todo[1:]
    return f"Out of GPU memory. Next: {first}." + (f" Then: {'; '.join(rest)}." if rest else "")


def classify_text(text: str) -> Failure | None:
    """Classify one error text (exception line, failing source line, or console line); None if unknown."""
    for pattern, cls, hint in _KNOWN:
        if pattern.search(text):
            return Failure(cls, text.strip()[:500], hint or oom_hint())
    return None


_SIGNALS: Final = {9: "host_oom", 11: "segfault", 6: "abort", 15: "user_stop", 2: "user_stop"}
_SIGNAL_HINTS: Final = {
    "host_oom": "If it was the OOM killer (`dmesg | grep -i oom` or `journalctl -k` shows it), host RAM ran "
    "out, common while loading big models or caching: run once with --cache_only, then relaunch with "
    "--trust_cache; lower caching_batch_size / map_num_proc, or add swap. If the kernel log shows no "
    "OOM kill, something else sent SIGKILL (a scheduler, a container limit, `kill -9`).",
    "segfault": "A process crashed with a segmentation fault (native code: driver, CUDA kernels, a broken "
    "install). Check `dmesg`, driver/torch versions, and resume from the last checkpoint.",
    "abort": "A process aborted (SIGABRT), usually a C++ assertion in torch/NCCL; see the lines just above.",
    "user_stop": "Stopped by a signal (SIGINT/SIGTERM). Resume from the last checkpoint if one exists.",
}


def signal_of(code: int) -> int | None:
    """The signal behind a return code: -9 (Popen), 247 (``rc & 0xFF``) and 137 (shell 128+9) all give 9."""
    if code < 0:
        return -code
    if 240 <= code <= 255 and (256 - code) in _SIGNALS:
        return 256 - code
    if 129 <= code <= 159 and (code - 128) in _SIGNALS:
        return code - 128
    return None


def _from_signal(code: int, where: str) -> Failure | None:
    sig = signal_of(code)
    if sig is None or sig not in _SIGNALS:
        return None
    cls = _SIGNALS[sig]
    if sig == 9:  # nothing in the output says who sent it: say so instead of asserting an OOM
        message = (
            f"{where} (return code {code}) was killed (SIGKILL): usually the host OOM killer; "
            "or killed by someone else"
        )
        return Failure(cls, message, _SIGNAL_HINTS[cls])
    return Failure(cls, f"{where} exited with return code {code} (signal {sig})", _SIGNAL_HINTS[cls])


def classify_failure(
    exit_code: int | None,
    events: Sequence[Event],
    tail_lines: Sequence[str],
    *,
    config: Mapping[str, Any] | None = None,
) -> Failure | None:
    """Decide why a finished run ended.

    Args:
        exit_code: the exit status of the launched process (None when unknown, e.g. a lost run).
        events: the run's parsed events (in order).
        tail_lines: the last lines of its console (evidence the events may not carry).
        config: the main TOML as a mapping, to tailor the OOM hint (optional).

    Returns:
        None when the run completed (``TRAINING COMPLETE!`` seen), else a :class:`Failure`.
    """
    kinds = {e.kind for e in events}
    if EventKind.COMPLETE in kinds or any("TRAINING COMPLETE!" in line for line in tail_lines[-50:]):
        return None
    errors = [e for e in events if e.kind is EventKind.ERROR]
    specific = [e for e in errors if e.get("class") not in ("traceback", "user_stop")]
    if specific:
        err = specific[-1]
        hint = str(err.get("hint", ""))
        if err.get("class") == "cuda_oom":
            hint = oom_hint(config, during_eval=bool(err.get("during_eval")))
        return Failure(str(err.get("class")), str(err.get("message", "")), hint)
    # A signal in a return code is hard evidence; a loose line in the tail (say a harmless
    # "No such file or directory" warning) is not, so it must not mask a -9 or -11.
    exit_codes = [
        int(e.get("code")) for e in events if e.kind is EventKind.EXIT and e.get("code") is not None
    ]
    exit_codes += [int(m[1]) for line in tail_lines[-50:] if (m := EXIT_CODE.search(line))]
    for code in exit_codes:
        found = _from_signal(code, "A training rank")
        if found is not None:
            return found
    if exit_code is not None and (found := _from_signal(exit_code, "The launcher")) is not None:
        return found
    for line in reversed(tail_lines[-200:]):
        found = classify_text(line)
        if found is not None and found.cls != "user_stop":
            return found
    signals = [e for e in events if e.kind is EventKind.INFO and e.get("code") == "launcher_signal"]
    if signals:
        return Failure("user_stop", str(signals[-1].get("message", "")), _SIGNAL_HINTS["user_stop"])
    if errors:
        err = errors[-1]
        return Failure(str(err.get("class")), str(err.get("message", "")), str(err.get("hint", "")))
    if any(line.strip() == "Killed" for line in tail_lines[-20:]):
        return Failure(
            "host_oom",
            "Killed (SIGKILL): usually the host OOM killer; or killed by someone else",
            _SIGNAL_HINTS["host_oom"],
        )
    return _quiet_exit(exit_code, events, kinds)


def _quiet_exit(exit_code: int | None, events: Sequence[Event], kinds: set[EventKind]) -> Failure:
    if EventKind.QUIT in kinds:
        return Failure(
            "save_quit",
            "Stopped on request after saving (save_quit / Manually quitting).",
            "Resume from the checkpoint it saved.",
        )
    warnings = {e.get("code") for e in events if e.kind is EventKind.WARNING}
    if "lots_of_resolutions" in warnings:
        return Failure(
            "lots_of_resolutions",
            "diffusion-pipe quit: too many resolutions in the dataset config.",
            "Use fewer resolutions (see the comments in diffusion-pipe's example dataset.toml).",
        )
    cache_only = any(
        e.kind is EventKind.INFO
        and e.get("code") == "launcher_cmd"
        and "--cache_only" in str(e.get("value", ""))
        for e in events
    )
    if cache_only:
        return Failure(
            "cache_only",
            "Caching finished (--cache_only); no training was run.",
            "Launch again with --trust_cache to train on the cache.",
        )
    if exit_code is None:
        return Failure(
            "lost",
            "The run ended without an exit status (machine reboot or kill -9 of everything?).",
            "Check for a checkpoint and resume from it.",
        )
    if exit_code == 0:
        return Failure(
            "incomplete",
            "Exit code 0 but no TRAINING COMPLETE! (a quit path).",
            "Read the last lines of the console; resume from the last checkpoint if training had begun.",
        )
    return Failure(
        "exit_code",
        f"Exited with code {exit_code}.",
        "Read the last lines of the console (dpipe-tui logs RUN).",
    )
