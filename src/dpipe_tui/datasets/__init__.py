"""Pre-flight scan of dataset directories: media, captions, masks, buckets and steps per epoch.

Public API (design.md contract): :func:`scan_dataset`, :func:`plan_steps`, :func:`plan_for_profile`,
:func:`summary_lines`, :func:`plan_problems` and their result types. Pure Python plus Pillow;
never imports torch.
"""

from __future__ import annotations

from dpipe_tui.datasets.buckets import BucketKey
from dpipe_tui.datasets.plan import Dropped, PlanError, PlannedBucket, StepPlan, plan_for_profile, plan_steps
from dpipe_tui.datasets.problems import PlanProblem, plan_problems
from dpipe_tui.datasets.results import (
    CaptionCounts,
    Contribution,
    DatasetScan,
    DirectoryScan,
    ItemIssue,
    MaskCounts,
    ScanError,
)
from dpipe_tui.datasets.scan import ScanCancelled, scan_config, scan_dataset
from dpipe_tui.datasets.settings import DatasetConfigError
from dpipe_tui.datasets.summary import summary_lines
from dpipe_tui.datasets.traits import ModelTraits, model_traits

__all__ = [
    "BucketKey",
    "CaptionCounts",
    "Contribution",
    "DatasetConfigError",
    "DatasetScan",
    "DirectoryScan",
    "Dropped",
    "ItemIssue",
    "MaskCounts",
    "ModelTraits",
    "PlanError",
    "PlanProblem",
    "PlannedBucket",
    "ScanCancelled",
    "ScanError",
    "StepPlan",
    "model_traits",
    "plan_for_profile",
    "plan_problems",
    "plan_steps",
    "scan_config",
    "scan_dataset",
    "summary_lines",
]
