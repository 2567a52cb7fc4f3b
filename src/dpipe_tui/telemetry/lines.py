"""Line shapes of a diffusion-pipe console (spec §4), as data the parser dispatches on.

Why a table of trigger substrings: a training log is dominated by two per-step lines, and most other
lines are noise (DeepSpeed config dumps, layer listings). The parser checks the step lines with plain
``str`` tests, then runs ONE compiled alternation of trigger substrings over everything else; only a hit
pays for the specific regex. Messages are matched on their text, never on DeepSpeed's
``[file.py:line:func]`` prefix, whose line numbers change between versions (spec §4).
"""

from __future__ import annotations

import math
import re
from typing import Final

# DeepSpeed logger prefix: "[2026-08-21 14:02:11,100] [INFO] [runner.py:NNN:main] message".
DS_PREFIX: Final = re.compile(r"^\[\d{4}-\d\d-\d\d [^\]]*\] \[(\w+)\] \[[^\]]*\] ")
# torch.distributed prefixes every stderr line of a rank: "[rank0]: Traceback ...".
RANK_PREFIX: Final = re.compile(r"^\[rank(\d+)\]:\s?")

# The canonical per-step line, preceded by its newline (a literal prefix keeps the search at C speed;
# ``^`` with MULTILINE is tried at every position and is 2-3x slower). Other shapes go line by line.
STEP_LINE_NL: Final = re.compile(
    r"\nsteps: (\d+) loss: (\S+) iter time \(s\): (\S+) samples/sec: (\S+)(?=\n|\Z)"
)
LR_LINE: Final = re.compile(r"\[Rank (\d+)\] step=(\d+), skipped=(\d+), lr=(.+?), mom=(.+)$")
FLOAT: Final = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf", re.IGNORECASE)

# tqdm: "{desc}: {pct:3.0f}%|{bar}| {n}/{total} [{elapsed}<{remaining}, {rate}{postfix}]"
TQDM: Final = re.compile(r"^(?P<desc>.*?)(?::\s*)?\s*(?P<pct>\d{1,3})%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)")
TQDM_RATE: Final = re.compile(r",\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z]*)/(?P<per>[A-Za-z]+)")

RESUME: Final = re.compile(r"Resuming at epoch: (\d+), step: (\d+)")
CHECKPOINT_TAG: Final = re.compile(r"Checkpoint (\S+) is about to be saved")
CHECKPOINT_PATH: Final = re.compile(r"Saving model checkpoint: (\S+)")
GLOBAL_STEP: Final = re.compile(r"global_step(\d+)")
EXIT_CODE: Final = re.compile(r"exits with return code = (-?\d+)")
LOCAL_RANK: Final = re.compile(r"--local_rank=(\d+)")
PROCESS_OK: Final = re.compile(r"Process (\d+) exits successfully")
KILLING: Final = re.compile(r"Killing subprocess (\d+)")
INT_AFTER_EQ: Final = re.compile(r"=\s*(-?\d+)")

# Every substring that makes a non-step line interesting. Order matters only for overlaps
# (the alternation returns the leftmost match); each maps to a handler name in the parser.
TRIGGERS: Final[dict[str, str]] = {
    "%|": "tqdm",
    "Traceback (most recent call last)": "traceback",
    "Started new epoch: ": "epoch",
    "Saving model to directory ": "save",
    "is about to be saved": "checkpoint",
    "Saving model checkpoint: ": "checkpoint_path",
    "Running eval": "eval",
    "Resuming training from checkpoint": "resume",
    "Manually quitting": "quit",
    "TRAINING COMPLETE!": "complete",
    "exits with return code = ": "exit",
    "exits successfully": "exit_ok",
    "Killing subprocess ": "killing",
    "received SIGTERM": "launcher_signal",
    "received SIGINT": "launcher_signal",
    "Global batch size = ": "info",
    "Computed save_every_n_steps = ": "info",
    "Computed eval_every_n_steps = ": "info",
    "Computed beta2 = ": "info",
    "Block swap enabled.": "info",
    "trainable params: ": "info",
    "DeepSpeed info: version=": "info",
    "Setting CUDA_VISIBLE_DEVICES=": "info",
    "Detected VISIBLE_DEVICES=": "info",
    "WORLD INFO DICT: ": "info",
    "dist_world_size=": "info",
    "] cmd = ": "info",
    "Begin Load checkpoint from ": "info",
    "Initializing TorchBackend": "initializing",
    "Partitioning pipeline stages": "initializing",
    "Loading model on rank": "initializing",
    "Grouped metadata is not cached": "caching",
    "Found grouped metadata cache": "caching",
    "Intermediate metadata is not cached": "caching",
    "Loading grouped metadata": "caching",
    "caching latents: ": "caching",
    "caching text embeddings: ": "caching",
    "[CACHE] ": "caching",
    "Building iteration order": "caching",
    "Cound not find caption": "warning",
    "did not have entry in captions_dict": "warning",
    "does not have an entry in captions.json": "warning",
    "could not be opened": "warning",
    "No mask file was found": "warning",
    "because it is too short": "warning",
    "is being completely dropped": "warning",
    "Reducing num_proc to": "warning",
    "You have set a lot of resolutions": "warning",
    "does not have original_name": "warning",
    "were skipped due to Inf or NaN": "warning",
    "Unable to find latest file": "warning",
    "has no complete eval batch": "warning",
    "Watchdog caught collective operation timeout": "error",
    "EADDRINUSE": "error",
    "Address already in use": "error",
    "No space left on device": "error",
    "ncclInternalError": "error",
    "ncclUnhandledCudaError": "error",
    "ncclSystemError": "error",
}
TRIGGER_RE: Final = re.compile("|".join(re.escape(k) for k in TRIGGERS))

# Info lines: trigger -> (code, how to read the value).
INFO_CODES: Final[dict[str, str]] = {
    "Global batch size = ": "global_batch_size",
    "Computed save_every_n_steps = ": "save_every_n_steps",
    "Computed eval_every_n_steps = ": "eval_every_n_steps",
    "Computed beta2 = ": "beta2",
    "Block swap enabled.": "block_swap",
    "trainable params: ": "trainable_params",
    "DeepSpeed info: version=": "deepspeed_version",
    "Setting CUDA_VISIBLE_DEVICES=": "cuda_visible_devices",
    "Detected VISIBLE_DEVICES=": "visible_devices",
    "WORLD INFO DICT: ": "world_info",
    "dist_world_size=": "world_size",
    "] cmd = ": "launcher_cmd",
    "Begin Load checkpoint from ": "checkpoint_load",
}
INT_INFO: Final = frozenset({"global_batch_size", "save_every_n_steps", "eval_every_n_steps", "world_size"})

# Warning lines: trigger -> machine code (events.py "warning").
WARNING_CODES: Final[dict[str, str]] = {
    "Cound not find caption": "missing_caption",  # sic: diffusion-pipe's own typo
    "did not have entry in captions_dict": "missing_caption",
    "does not have an entry in captions.json": "missing_caption",
    "could not be opened": "unreadable_media",
    "No mask file was found": "missing_mask",
    "because it is too short": "video_too_short",
    "is being completely dropped": "bucket_dropped",
    "Reducing num_proc to": "num_proc_reduced",
    "You have set a lot of resolutions": "lots_of_resolutions",
    "does not have original_name": "param_not_saved",
    "were skipped due to Inf or NaN": "skipped_updates",
    "Unable to find latest file": "no_checkpoint",
    "has no complete eval batch": "eval_skipped",  # the built-in engine's own warning
}
WARNING_PATH: Final = re.compile(
    r"(?:caption for|image|Media file|Image file) (\S+?)(?:\.|,)? (?:Skipping|Using|not using|could|does|did)"
)


def strip_ds_prefix(line: str) -> str:
    """Return the message of a DeepSpeed-logger line (the line itself when it has no prefix)."""
    if line.startswith("[2"):
        match = DS_PREFIX.match(line)
        if match:
            return line[match.end() :]
    return line


def parse_float(text: str) -> float:
    """Parse a float as Python prints it (``nan``, ``inf`` included); NaN when unreadable."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse_lr(text: str) -> list[float]:
    """Parse DeepSpeed's ``lr=`` value: a list repr (one entry per group) or one number (gradient_release)."""
    try:
        return [float(part) for part in text.strip("[] ").split(",")]
    except ValueError:
        return [parse_float(m) for m in FLOAT.findall(text)]


def parse_rate(bracket: str) -> float | None:
    """Items per second from tqdm's ``[elapsed<remaining, 2.31it/s]`` part (``4.51s/it`` is inverted)."""
    match = TQDM_RATE.search(bracket)
    if match is None:
        return None
    num = float(match["num"])
    if match["unit"] == "s":
        return 1.0 / num if num > 0 else None
    return num if match["per"] == "s" else None
