"""TensorBoard (tensorboardX) and optional W&B logging on rank 0 (spec §2.6, §5.4).

Why one small wrapper: train.py writes every scalar to both sinks with the same tags and x
values; keeping that pairing in one place keeps the tags identical. The W&B key is taken only
from ``$WANDB_API_KEY`` (never from the profile, which may be shared) and never printed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def wandb_problem(config: dict[str, Any]) -> str | None:
    """Why W&B cannot start (checked before any model loads), or None."""
    mon = config.get("monitoring") or {}
    if not mon.get("enable_wandb", False):
        return None
    missing = [k for k in ("wandb_tracker_name", "wandb_run_name") if not mon.get(k)]
    if missing:
        return f"[monitoring] enable_wandb needs {', '.join(missing)}"
    mode = os.environ.get("WANDB_MODE", "")
    if not os.environ.get("WANDB_API_KEY") and mode not in ("offline", "disabled", "dryrun"):
        return "[monitoring] enable_wandb: set WANDB_API_KEY in the environment (or WANDB_MODE=offline)"
    try:
        import wandb  # noqa: F401
    except ImportError:
        return (
            "[monitoring] enable_wandb: the wandb package is not installed (pip install 'dpipe-tui[wandb]')"
        )
    return None


class Monitor:
    """Scalar sink for rank 0; a no-op elsewhere."""

    def __init__(self, run_dir: Path, config: dict[str, Any], is_main: bool) -> None:
        self.tb: Any = None
        self.wandb: Any = None
        if not is_main:
            return
        from tensorboardX import SummaryWriter

        self.tb = SummaryWriter(logdir=str(run_dir))
        mon = config.get("monitoring") or {}
        if mon.get("enable_wandb", False):
            import wandb

            # wandb reads WANDB_API_KEY itself; wandb.login() would copy it into ~/.netrc.
            public = {k: v for k, v in config.items() if not k.startswith("_")}
            public["monitoring"] = {k: v for k, v in mon.items() if k != "wandb_api_key"}
            wandb.init(
                project=mon["wandb_tracker_name"], name=mon["wandb_run_name"], config=public, dir=str(run_dir)
            )
            self.wandb = wandb

    def scalar(self, tag: str, value: float, x: int, x_name: str = "step") -> None:
        """Log one scalar to TensorBoard and W&B."""
        if self.tb is not None:
            self.tb.add_scalar(tag, value, x)
        if self.wandb is not None:
            self.wandb.log({tag: value, x_name: x})

    def flush(self) -> None:
        """Push buffered events to disk."""
        if self.tb is not None:
            self.tb.flush()

    def close(self) -> None:
        """Flush and close both sinks."""
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
