"""The engine's command line: train.py's flags, parsed without importing torch.

Why torch-free: a bad flag or a bad config must fail in a fraction of a second, before the
heavy stack (torch, deepspeed, diffusers) is imported. DeepSpeed's own ``--deepspeed`` /
``--deepspeed_config`` flags (``deepspeed.add_config_arguments``) are declared here by hand for
the same reason; like train.py we accept and ignore them (the DeepSpeed config is built in code).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``python -m dpipe_tui.engine`` (train.py's flags, spec §1.2)."""
    parser = argparse.ArgumentParser(
        prog="python -m dpipe_tui.engine",
        description="dpipe-tui built-in trainer, diffusion-pipe compatible (run under deepspeed).",
    )
    parser.add_argument("--config", required=True, help="Path to the main TOML configuration file.")
    parser.add_argument("--local_rank", type=int, default=-1, help="Set by the DeepSpeed launcher.")
    parser.add_argument(
        "--resume_from_checkpoint",
        nargs="?",
        const=True,
        default=None,
        help="Resume from a run folder in output_dir (no value: the newest entry).",
    )
    parser.add_argument(
        "--reset_dataloader", action="store_true", help="On resume, restart the epoch's data."
    )
    parser.add_argument("--reset_optimizer", action="store_true", help="On resume, load weights only.")
    parser.add_argument("--reset_optimizer_params", action="store_true", help="Accepted for compatibility.")
    parser.add_argument("--regenerate_cache", action="store_true", help="Rebuild the latent/text caches.")
    parser.add_argument("--cache_only", action="store_true", help="Cache model inputs, then exit.")
    parser.add_argument(
        "--trust_cache", action="store_true", help="Use caches without checking fingerprints."
    )
    parser.add_argument("--i_know_what_i_am_doing", action="store_true", help="Skip dataset sanity checks.")
    parser.add_argument("--master_port", type=int, default=29500, help="Overwrites MASTER_PORT, as train.py.")
    # deepspeed.add_config_arguments equivalents (accepted, unused: the DeepSpeed config is built in code).
    group = parser.add_argument_group("DeepSpeed")
    group.add_argument("--deepspeed", default=False, action="store_true")
    group.add_argument("--deepspeed_config", default=None, type=str)
    group.add_argument("--deepscale", default=False, action="store_true")
    group.add_argument("--deepscale_config", default=None, type=str)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the engine's argv (``sys.argv[1:]`` when None)."""
    return build_parser().parse_args(argv)
