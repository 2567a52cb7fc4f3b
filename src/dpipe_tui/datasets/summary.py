"""Plain-text dataset summary for the CLI (``dpipe-tui validate``) and the TUI's dataset pane.

Why plain lines: the same text serves a terminal, a log file and a Textual ``Static``; each front end
decides on colour. Lines stay within 80 columns for tmux panes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dpipe_tui.datasets.plan import StepPlan

_MAX_ISSUES = 5


def summary_lines(plan: StepPlan) -> list[str]:
    """Counts per directory, the bucket table, drops, steps per epoch and warnings, as text lines."""
    scan = plan.scan
    out = [f"Dataset {scan.config_path}"]
    for d in scan.directories:
        c = d.captions
        out.append(
            f"  [{d.index}] {d.path}: {d.images} images, {d.videos} videos, {d.items_kept} kept"
            + (f", x{d.num_repeats:g} repeats" if d.num_repeats != 1 else "")
        )
        out.append(
            f"      captions: {c.txt} txt, {c.json} json, {c.empty} empty, {c.missing} missing"
            + (f"; masks {d.masks.matched}+{d.masks.default} default" if d.masks != type(d.masks)() else "")
            + (f"; controls {d.controls_matched}" if d.controls_matched else "")
        )
    out.append(f"  {'bucket':<22}{'train size':>14}{'items':>8}{'kept':>8}{'batch':>7}{'steps':>7}")
    for b in plan.buckets:
        size = f"{b.train_width}x{b.train_height}x{b.train_frames}"
        out.append(
            f"  {b.key.label():<22}{size:>14}{b.items:>8}{b.items_after_rounding:>8}{b.batch:>7}{b.steps:>7}"
        )
    for dr in plan.dropped:
        where = f" in {dr.bucket.label()}" if dr.bucket else ""
        out.append(f"  dropped {dr.items}{where}: {dr.reason.replace('_', ' ')}")
    out.append(
        f"  global batch {plan.global_batch_size} (D={plan.data_parallel}); "
        f"{plan.steps_per_epoch} steps/epoch; {plan.total_steps} steps total"
    )
    causes = scan.all_errors
    out.extend(f"  ERROR: {e}" for e in causes)  # the real cause first (a missing folder, no media, ...)
    if plan.empty and plan.message:
        if causes:  # diffusion-pipe's "probably rounding down" guess would mislead here
            out.append("  ERROR: so the processed dataset is empty (diffusion-pipe stops before training)")
        else:
            out.extend("  ERROR: " + line for line in plan.message.splitlines())
    warnings = [*scan.warnings, *(w for d in scan.directories for w in d.warnings)]
    out.extend(f"  warning: {w}" for w in warnings)
    shown = [i for i in scan.issues if not i.fatal][:_MAX_ISSUES]
    out.extend(f"  skipped {i.name}: {i.detail or i.reason}" for i in shown)
    hidden = sum(1 for i in scan.issues if not i.fatal) - len(shown)
    if hidden > 0:
        out.append(f"  ... and {hidden} more skipped items")
    return out
