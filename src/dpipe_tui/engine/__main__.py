"""``python -m dpipe_tui.engine``: one rank of a built-in training run (under the deepspeed launcher).

Why the order below: flags and the config are checked first, torch-free, so a bad profile fails
in well under a second with the validator's findings and exit code 1, before torch, DeepSpeed or
any model is loaded.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run one rank; returns the process exit code."""
    from dpipe_tui.engine.cli import parse_args
    from dpipe_tui.engine.config import ConfigError, load_config

    args = parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem.render(), file=sys.stderr, flush=True)
        print(f"error: invalid config {args.config}; nothing was loaded", file=sys.stderr, flush=True)
        return 1
    from dpipe_tui.engine.monitor import wandb_problem

    if reason := wandb_problem(config):
        print(f"{config['_config_path']}:1:1: error: monitoring: {reason}", file=sys.stderr, flush=True)
        return 1
    from dpipe_tui.engine.trainer import Run

    run = Run(args, config)
    if run.build():
        run.train()
    return 0


if __name__ == "__main__":
    sys.exit(main())
