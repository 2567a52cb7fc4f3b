"""Which ``[optimizer]`` keys each optimizer type accepts (spec §2.5).

Why a table: diffusion-pipe passes every key except ``type``, ``gradient_release`` and
``beta2_half_life`` to the optimizer's constructor, so a stray key is a ``TypeError`` at startup,
after the models have loaded. The keyword lists below are the constructors' own (torch 2.x,
torch-optimi, bitsandbytes, diffusion-pipe's automagic/GenericOptim). pytorch_optimizer classes are
too many to list: any other name is accepted with any keys.
"""

from __future__ import annotations

_TORCH_ADAMW = frozenset(
    {
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "amsgrad",
        "maximize",
        "foreach",
        "capturable",
        "differentiable",
        "fused",
    }
)
"""torch.optim.AdamW's keywords; it has no ``decoupled_weight_decay`` (only Adam does, torch >= 2.6)."""
_BNB_ADAMW8BIT = frozenset(
    {
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "amsgrad",
        "optim_bits",
        "args",
        "min_8bit_size",
        "percentile_clipping",
        "block_wise",
        "is_paged",
    }
)
_OPTIMI = frozenset(
    {"lr", "betas", "weight_decay", "eps", "decouple_lr", "max_lr", "kahan_sum", "foreach", "triton"}
)

OPTIMIZER_KWARGS: dict[str, frozenset[str]] = {
    "adamw": _TORCH_ADAMW,
    "adamw8bit": _BNB_ADAMW8BIT,
    "adamw_optimi": _OPTIMI,
    "stableadamw": _OPTIMI,
    "sgd": frozenset(
        {
            "lr",
            "momentum",
            "dampening",
            "weight_decay",
            "nesterov",
            "maximize",
            "foreach",
            "differentiable",
            "fused",
        }
    ),
    "adamw8bitkahan": _BNB_ADAMW8BIT | {"stabilize"},
    "offload": _TORCH_ADAMW | {"offload_gradients"},
    "automagic": frozenset(
        {
            "lr",
            "min_lr",
            "max_lr",
            "lr_bump",
            "eps",
            "clip_threshold",
            "beta2",
            "weight_decay",
            "do_paramiter_swapping",
            "paramiter_swapping_factor",
        }
    ),
    "genericoptim": frozenset(
        {
            "lr",
            "betas",
            "eps",
            "weight_decay",
            "correct_bias",
            "momentum_type",
            "second_moment_type",
            "correct_dim",
            "cpu_offload",
            "kahan_buffer_offload",
            "muon",
            "adamuon",
            "normuon",
            "polar_express",
            "automagic",
            "min_lr",
            "max_lr",
            "lr_bump",
            "lr_decrease_factor",
            "skip_invalid_grads",
            "rank",
            "proj_type",
            "update_proj_gap",
            "compile",  # accepted, but diffusion-pipe overwrites it with the top-level compile
        }
    ),
}
"""Built-in optimizer names (lower case; diffusion-pipe compares them case-insensitively) -> kwargs."""

NOT_KWARGS = frozenset({"type", "gradient_release", "beta2_half_life"})
"""Keys diffusion-pipe consumes itself and never passes to the constructor."""

HAS_BETAS = frozenset(
    {"adamw", "adamw8bit", "adamw_optimi", "stableadamw", "adamw8bitkahan", "offload", "genericoptim"}
)
"""Built-in optimizers that take a ``betas`` pair."""


def accepted_kwargs(optimizer_type: str) -> frozenset[str] | None:
    """Constructor keywords of a built-in optimizer, or None for a pytorch_optimizer name (anything goes)."""
    return OPTIMIZER_KWARGS.get(optimizer_type.lower())
