"""Optimizers and LR schedules as train.py builds them (spec §2.1, §2.5).

Only what runs anywhere is offered (adamw, adamw_optimi, stableadamw, sgd); bitsandbytes-based
and other exotic optimizers are refused by config.py before anything loads. Weight decay is not
applied to 1-D parameters, and every key of ``[optimizer]`` except ``type`` and
``gradient_release`` is a constructor argument, as in diffusion-pipe.
"""

from __future__ import annotations

from typing import Any

import torch


def build_optimizer(params: list[torch.nn.Parameter], optim_cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimizer for ``params`` from the ``[optimizer]`` table."""
    kind = str(optim_cfg["type"]).lower()
    kwargs = {k: v for k, v in optim_cfg.items() if k not in ("type", "gradient_release", "beta2_half_life")}
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    klass: Any
    if kind == "adamw":
        klass = torch.optim.AdamW
    elif kind == "sgd":
        klass = torch.optim.SGD
    elif kind in ("adamw_optimi", "stableadamw"):
        import optimi

        klass = optimi.AdamW if kind == "adamw_optimi" else optimi.StableAdamW
    else:  # config.py refuses these earlier; keep the message identical
        raise NotImplementedError(f"optimizer {optim_cfg['type']!r} is not available in the built-in engine")
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups: list[dict[str, Any]] = []
    if decay:
        groups.append({"params": decay})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return klass(groups, **kwargs)


def build_scheduler(optimizer: torch.optim.Optimizer, config: dict[str, Any], steps_per_epoch: int) -> Any:
    """constant / linear / cosine over ``epochs × steps_per_epoch``, with linear warmup in front."""
    kind = config.get("lr_scheduler", "constant")
    horizon = config["epochs"] * steps_per_epoch
    sched: Any
    if kind == "constant":
        sched = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    elif kind == "linear":
        sched = torch.optim.lr_scheduler.LinearLR(
            optimizer, start_factor=1.0, end_factor=0.0, total_iters=horizon
        )
    elif kind == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=horizon, eta_min=1e-6)
    else:
        raise NotImplementedError(f"Unknown lr_scheduler: {kind}")
    warmup = int(config.get("warmup_steps", 0))
    if warmup > 0:
        ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / warmup, total_iters=warmup)
        sched = torch.optim.lr_scheduler.SequentialLR(
            optimizer, schedulers=[ramp, sched], milestones=[warmup]
        )
    return sched
