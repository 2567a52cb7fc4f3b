"""Use case: the dataset plan of a main profile, as a separate call — progress, cancel, and a cache.

Why separate from validation: the editor validates an unsaved buffer on every keystroke (milliseconds,
no media read), while planning a dataset reads the header of every image and video (seconds for a big
dataset). So planning is its own call that reports progress, can be cancelled from another thread,
and is cached until a file under the dataset changes.

The cache key is the main profile's and dataset config's text plus a fingerprint of the dataset
folders: a stat walk (names, sizes, modification times of every entry, recursively), which costs a
``stat`` per file — no file is opened — measured at a small fraction of the header scan
(``benchmarks/bench_validate.py``). Adding, removing or editing a caption or an image changes it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pickle
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpipe_tui.datasets import PlanError, ScanCancelled, plan_for_profile, summary_lines
from dpipe_tui.datasets.settings import DatasetConfigError, load_dataset_config
from dpipe_tui.profiles.snapshot import read_profile_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from dpipe_tui.datasets import StepPlan

__all__ = ["DatasetPlanResult", "PlanCancelled", "plan_dataset"]


class PlanCancelled(Exception):
    """The plan was cancelled (its ``cancel`` event was set)."""


@dataclass(frozen=True, slots=True)
class DatasetPlanResult:
    """A dataset plan and its summary lines (``error`` instead when no plan could be made)."""

    plan: StepPlan | None
    lines: tuple[str, ...]
    error: str | None = None
    cached: bool = False
    """Served from the cache (nothing under the dataset changed since the last plan)."""


_CACHE: dict[str, DatasetPlanResult] = {}
_LOCK = threading.Lock()


def plan_dataset(
    profile: Path,
    *,
    base_dir: Path,
    gpu_count: int = 1,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    isolated: bool = False,
) -> DatasetPlanResult:
    """Plan the dataset of the main profile at ``profile`` (as saved on disk).

    Args:
        profile: the main profile.
        base_dir: where relative paths resolve (the engine's, as for ``run``).
        gpu_count: the world size of the planned run.
        progress: told (directories done, directories in all) while scanning.
        cancel: set it (from any thread) to stop the scan; the call then raises :class:`PlanCancelled`.
        isolated: scan in a child process (:mod:`dpipe_tui.services.plan_job`), so a long scan does
            not compete for the GIL with the caller's other threads (the TUI drawing).

    Raises:
        PlanCancelled: ``cancel`` was set.
    """
    try:
        key = _key(profile, base_dir, gpu_count)
    except (OSError, UnicodeDecodeError, DatasetConfigError, ValueError) as exc:
        return DatasetPlanResult(None, (), f"no dataset plan: {exc}")
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return DatasetPlanResult(hit.plan, hit.lines, hit.error, cached=True)
    if isolated:
        result = _plan_in_child(profile, base_dir, gpu_count, progress, cancel)
    else:
        try:
            plan = plan_for_profile(
                profile,
                base_dir=base_dir,
                world_size=gpu_count,
                progress=progress,
                cancel=cancel.is_set if cancel is not None else None,
            )
        except ScanCancelled as exc:
            raise PlanCancelled(str(exc)) from exc
        except (PlanError, DatasetConfigError, OSError, ValueError) as exc:
            result = DatasetPlanResult(None, (), f"no dataset plan: {exc}")
        else:
            result = DatasetPlanResult(plan, tuple(summary_lines(plan)))
    with _LOCK:
        _CACHE[key] = result
    return result


def _plan_in_child(
    profile: Path,
    base_dir: Path,
    gpu_count: int,
    progress: Callable[[int, int], None] | None,
    cancel: threading.Event | None,
) -> DatasetPlanResult:
    """The plan, made by ``python -m dpipe_tui.services.plan_job`` (killed when ``cancel`` is set)."""
    cmd = [sys.executable, "-m", "dpipe_tui.services.plan_job", str(profile), str(base_dir), str(gpu_count)]
    proc = subprocess.Popen(  # stderr joins stdout: one pipe to drain, so the child never blocks on it
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    done = threading.Event()

    def watch_cancel() -> None:
        while not done.is_set():
            if cancel is not None and cancel.wait(0.1):
                proc.kill()
                return
            if cancel is None:
                done.wait(0.5)

    threading.Thread(target=watch_cancel, name="dpipe-plan-cancel", daemon=True).start()
    payload: tuple[Any, ...] | None = None
    other: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            kind, _, rest = line.strip().partition(" ")
            if kind == "progress":
                done_dirs, total = rest.split()
                if progress is not None:
                    progress(int(done_dirs), int(total))
            elif kind == "result":
                # our own child, started just above with this interpreter: trusted like an import
                payload = pickle.loads(base64.b64decode(rest))
            else:
                other = [*other[-4:], line.rstrip()]  # a traceback's last lines say why
        proc.wait()
    finally:
        done.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if cancel is not None and cancel.is_set():
        raise PlanCancelled("the dataset scan was cancelled")
    if payload is None:
        why = " / ".join(other)[-300:] or f"exit {proc.returncode}"
        return DatasetPlanResult(None, (), f"no dataset plan: the scan failed ({why})")
    if payload[0] == "ok":
        return DatasetPlanResult(payload[1], payload[2])
    return DatasetPlanResult(None, (), str(payload[1]))


def _key(profile: Path, base_dir: Path, gpu_count: int) -> str:
    """Everything a plan depends on, hashed: both TOML texts and the dataset folders' fingerprint."""
    import tomllib

    digest = hashlib.sha256()
    main_text = read_profile_text(profile)
    digest.update(f"{profile.resolve()}\0{base_dir}\0{gpu_count}\0".encode())
    digest.update(main_text.encode())
    dataset = tomllib.loads(main_text).get("dataset")
    if not isinstance(dataset, str):
        return digest.hexdigest()
    dataset_path = Path(dataset).expanduser()
    dataset_path = dataset_path if dataset_path.is_absolute() else base_dir / dataset_path
    digest.update(read_profile_text(dataset_path).encode())
    config = load_dataset_config(dataset_path)
    for entry in config.directory:
        for value in (entry.path, entry.mask_path, entry.control_path):
            if isinstance(value, str) and value:
                folder = Path(value).expanduser()
                _fingerprint(folder if folder.is_absolute() else base_dir / folder, digest)
    return digest.hexdigest()


def _fingerprint(folder: Path, digest: Any) -> None:
    """Names, sizes and modification times of everything under ``folder`` (a stat each, no reads)."""
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            digest.update(f"{current}\0missing\n".encode())
            continue
        for entry in entries:
            try:
                info = entry.stat()
            except OSError:
                continue
            digest.update(f"{entry.path}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
