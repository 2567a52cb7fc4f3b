"""What in a dataset plan will crash diffusion-pipe or lose data, as located problems.

Why: the plan summary is text for people, but ``dpipe-tui validate`` must *fail* on a dataset that
diffusion-pipe raises on (an empty processed dataset, a folder without media, a missing control
file), and say so at the dataset TOML key responsible, like every other finding. Problems carry a
key path into the dataset TOML and a severity; :mod:`dpipe_tui.services.profiles` turns them into
located findings (this package stays independent of the findings type).

Only the first fatal outcome diffusion-pipe would meet is implied by "error"; the empty-dataset
error is reported only when nothing else is fatal, because diffusion-pipe raises on the directory
problem before it ever counts batches.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from dpipe_tui.datasets.plan import StepPlan
    from dpipe_tui.datasets.results import DirectoryScan, DropReason, ItemIssue

ProblemSeverity = Literal["error", "warning", "hint"]
KeyPath = tuple[str | int, ...]

_MAX_NAMES = 3

_DROP_TEXT: dict[str, tuple[str, str]] = {
    "missing_caption": (
        "have no caption and are skipped (skip_empty_caption defaults to true)",
        "add a <name>.txt caption next to each, or set skip_empty_caption = false to train them uncaptioned",
    ),
    "unreadable": ("could not be opened and are skipped", "replace or remove the unreadable files"),
    "too_short": (
        "are shorter than every frame bucket and are skipped",
        "add a smaller entry to frame_buckets, or remove the short clips",
    ),
    "no_video_support": (
        "are videos, which this model type does not train on; they are skipped",
        "remove the videos, or train a video model",
    ),
}
"""Non-fatal drops: what happens and what to do ("unknown_frames" has its own directory warning)."""

_FATAL_TEXT: dict[str, tuple[str, str, str]] = {
    "missing_control": (
        "control_path",
        "have no control image with the same stem in control_path "
        "(diffusion-pipe: RuntimeError 'No control file exists for image ...')",
        "add a control image with the same file stem for every target, or remove those targets",
    ),
    "mask_size": (
        "path",
        "have a mask whose size differs from the image (diffusion-pipe fails while caching)",
        "resize the masks to their images' sizes",
    ),
    "webp_animation": (
        "path",
        "are animated WebP files (diffusion-pipe: NotImplementedError 'WebP videos are not supported.')",
        "convert them to .mp4 or still images",
    ),
    "bad_caption_entry": (
        "path",
        "have a captions.json entry that is not a list of captions (diffusion-pipe fails on it)",
        'write each entry as "name.png": ["caption", ...]',
    ),
}
"""Fatal item problems: the directory key they belong to, what happens, what to do."""


@dataclass(frozen=True)
class PlanProblem:
    """One problem of a dataset plan, located by a key path of the dataset TOML."""

    severity: ProblemSeverity
    key: KeyPath
    """E.g. ``("directory", 0, "path")``; ``()`` for the whole file."""
    message: str
    fix: str | None
    code: str
    """Stable code, e.g. ``dataset-empty``, ``dataset-no-media``, ``dataset-dropped``."""


def _names(issues: list[ItemIssue]) -> str:
    shown = ", ".join(i.name for i in issues[:_MAX_NAMES])
    more = len(issues) - _MAX_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def _directory_problems(d: DirectoryScan) -> list[PlanProblem]:
    out = [PlanProblem("error", e.key, e.message, None, e.code) for e in d.located_errors]
    path_key: KeyPath = ("directory", d.index, "path")
    by_reason: dict[DropReason, list[ItemIssue]] = {}
    for issue in d.issues:
        by_reason.setdefault(issue.reason, []).append(issue)
    for reason, issues in by_reason.items():
        if reason in _FATAL_TEXT:
            key, what, fix = _FATAL_TEXT[reason]
            text = f"{len(issues)} item(s) {what}: {_names(issues)}"
            out.append(PlanProblem("error", ("directory", d.index, key), text, fix, "dataset-fatal-item"))
        elif reason in _DROP_TEXT:
            what, fix = _DROP_TEXT[reason]
            text = f"{len(issues)} item(s) {what}: {_names(issues)}"
            out.append(PlanProblem("warning", path_key, text, fix, "dataset-dropped"))
    out.extend(PlanProblem("warning", path_key, w, None, "dataset-warning") for w in d.warnings)
    return out


def plan_problems(plan: StepPlan) -> list[PlanProblem]:
    """Errors (diffusion-pipe raises) and warnings (items lost, odd data) of a plan, in file order.

    Args:
        plan: from :func:`dpipe_tui.datasets.plan_steps` or :func:`dpipe_tui.datasets.plan_for_profile`.

    Returns:
        The problems; errors for everything diffusion-pipe raises on, warnings for skipped items.
    """
    scan = plan.scan
    out = [PlanProblem("error", e.key, e.message, None, e.code) for e in scan.located_errors]
    out.extend(PlanProblem("hint", (), w, None, "dataset-warning") for w in scan.warnings)
    for d in scan.directories:
        out.extend(_directory_problems(d))
    where: KeyPath = ("directory", 0, "path") if len(scan.directories) == 1 else ("directory",)
    fatal = any(p.severity == "error" for p in out)
    if plan.empty and not fatal:
        out.append(
            PlanProblem(
                "error",
                where,
                f"Processed dataset was empty: {scan.items_kept} usable item(s), and no size bucket holds "
                f"a full global batch (global batch {plan.global_batch_size}); diffusion-pipe raises "
                "RuntimeError before training",
                "add images, increase num_repeats, or decrease micro_batch_size_per_gpu / "
                "gradient_accumulation_steps / the GPU count",
                "dataset-empty",
            )
        )
    elif not plan.empty:
        rounded = [dr for dr in plan.dropped if dr.bucket is not None]
        if rounded:
            items = sum(dr.items for dr in rounded)
            whole = Counter(dr.whole_bucket for dr in rounded)[True]
            out.append(
                PlanProblem(
                    "warning",
                    where,
                    f"{items} item(s) in {len(rounded)} bucket(s) are dropped each epoch by rounding down "
                    f"to the global batch ({whole} bucket(s) entirely); see the dataset plan",
                    "increase num_repeats, use fewer buckets, or decrease the micro batch size",
                    "dataset-rounding",
                )
            )
    return out
