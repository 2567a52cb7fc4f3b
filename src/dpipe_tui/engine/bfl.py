"""diffusers' ChromaTransformer2DModel with the original (BFL) Chroma's fused Linears and names.

Why: diffusion-pipe trains the original Chroma, whose attention has one ``qkv`` Linear per stream
and whose single blocks have one ``linear1`` (q, k, v and the MLP input). Its LoRA is one rank-r
adapter on each of those Linears. diffusers splits them, and separate rank-r LoRAs on q, k and v are
another adapter (3r when fused, more parameters, files neither side can load). So the engine fuses
the Linears in the diffusers model at load: double blocks get ``attn.to_qkv`` / ``attn.to_added_qkv``
(diffusers' own fused-projection path runs them), single blocks get ``linear1`` and a forward of our
own (:func:`dpipe_tui.engine.layers.single_block_forward`). Every parameter then has exactly one
BFL name (:func:`to_bfl`, :func:`from_bfl`), used for adapters, full saves and checkpoints in the
original layout.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

# (ours, BFL) module paths; a parameter's suffix (.weight, .bias, .lora_A.weight, ...) carries over.
_MODULES = [
    ("x_embedder", "img_in"),
    ("context_embedder", "txt_in"),
    ("proj_out", "final_layer.linear"),
    ("distilled_guidance_layer.in_proj", "distilled_guidance_layer.in_proj"),
    ("distilled_guidance_layer.out_proj", "distilled_guidance_layer.out_proj"),
    ("distilled_guidance_layer.layers.{N}.linear_1", "distilled_guidance_layer.layers.{N}.in_layer"),
    ("distilled_guidance_layer.layers.{N}.linear_2", "distilled_guidance_layer.layers.{N}.out_layer"),
    ("transformer_blocks.{N}.attn.to_qkv", "double_blocks.{N}.img_attn.qkv"),
    ("transformer_blocks.{N}.attn.to_added_qkv", "double_blocks.{N}.txt_attn.qkv"),
    ("transformer_blocks.{N}.attn.to_out.0", "double_blocks.{N}.img_attn.proj"),
    ("transformer_blocks.{N}.attn.to_add_out", "double_blocks.{N}.txt_attn.proj"),
    ("transformer_blocks.{N}.ff.net.0.proj", "double_blocks.{N}.img_mlp.0"),
    ("transformer_blocks.{N}.ff.net.2", "double_blocks.{N}.img_mlp.2"),
    ("transformer_blocks.{N}.ff_context.net.0.proj", "double_blocks.{N}.txt_mlp.0"),
    ("transformer_blocks.{N}.ff_context.net.2", "double_blocks.{N}.txt_mlp.2"),
    ("single_transformer_blocks.{N}.linear1", "single_blocks.{N}.linear1"),
    ("single_transformer_blocks.{N}.proj_out", "single_blocks.{N}.linear2"),
]
# (ours, BFL) whole parameter names: the RMSNorm scales.
_PARAMS = [
    ("distilled_guidance_layer.norms.{N}.weight", "distilled_guidance_layer.norms.{N}.scale"),
    ("transformer_blocks.{N}.attn.norm_q.weight", "double_blocks.{N}.img_attn.norm.query_norm.scale"),
    ("transformer_blocks.{N}.attn.norm_k.weight", "double_blocks.{N}.img_attn.norm.key_norm.scale"),
    ("transformer_blocks.{N}.attn.norm_added_q.weight", "double_blocks.{N}.txt_attn.norm.query_norm.scale"),
    ("transformer_blocks.{N}.attn.norm_added_k.weight", "double_blocks.{N}.txt_attn.norm.key_norm.scale"),
    ("single_transformer_blocks.{N}.attn.norm_q.weight", "single_blocks.{N}.norm.query_norm.scale"),
    ("single_transformer_blocks.{N}.attn.norm_k.weight", "single_blocks.{N}.norm.key_norm.scale"),
]

BFL_PREFIXES = ("double_blocks.", "single_blocks.", "img_in.", "txt_in.", "final_layer.")
KEEP_IN_HIGH_PRECISION = ("norm", "bias", "img_in", "txt_in", "distilled_guidance_layer", "final_layer")
"""diffusion-pipe's models/chroma.py: parameters whose BFL name holds one of these stay out of
``transformer_dtype`` (they keep the load dtype)."""


def _rules(source: int) -> list[tuple[re.Pattern[str], str]]:
    rules = []
    for pairs, tail in ((_PARAMS, "(?P<tail>)"), (_MODULES, r"(?P<tail>(\..+)?)")):
        for pair in pairs:
            pattern = re.escape(pair[source]).replace(r"\{N\}", r"(?P<n>\d+)")
            rules.append((re.compile(f"^{pattern}{tail}$"), pair[1 - source]))
    return rules


_TO_BFL, _FROM_BFL = _rules(0), _rules(1)


def _convert(name: str, rules: list[tuple[re.Pattern[str], str]], what: str) -> str:
    for pattern, template in rules:
        if m := pattern.match(name):
            return template.replace("{N}", m.groupdict().get("n") or "") + m["tail"]
    raise KeyError(f"{name!r} has no {what} name")


def to_bfl(name: str) -> str:
    """The original Chroma's name of one of our (fused) parameter or module names."""
    return _convert(name, _TO_BFL, "original-layout (BFL)")


def from_bfl(name: str) -> str:
    """Our (fused diffusers) name of an original-layout Chroma parameter or module name."""
    return _convert(name, _FROM_BFL, "diffusers")


def is_bfl(sd: dict[str, Any]) -> bool:
    """Whether a state dict is in the original layout (``model.diffusion_model.`` prefixes allowed)."""
    return any(k.removeprefix("model.diffusion_model.").startswith(BFL_PREFIXES) for k in sd)


def bfl_to_fused(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An original-layout checkpoint in our names (prefix ``model.diffusion_model.`` stripped)."""
    return {from_bfl(k.removeprefix("model.diffusion_model.")): v for k, v in sd.items()}


FUSED: dict[str, dict[str, tuple[str, ...]]] = {
    "transformer_blocks": {
        "attn.to_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
        "attn.to_added_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    },
    "single_transformer_blocks": {"linear1": ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")},
}
"""Per block list: each fused Linear (path inside a block) and the diffusers Linears it replaces, in
output order. One table for checkpoints (:func:`fuse_state_dict`) and modules (:func:`fuse_modules`)."""


def fuse_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A diffusers-layout checkpoint (separate q/k/v, proj_mlp) with our fused Linears."""
    out = dict(sd)
    for key in sd:
        m = re.match(r"^(transformer_blocks|single_transformer_blocks)\.(\d+)\.attn\.to_q\.weight$", key)
        if m is None:
            continue
        block = f"{m[1]}.{m[2]}."
        for fused, parts in FUSED[m[1]].items():
            for suffix in (".weight", ".bias"):
                out[block + fused + suffix] = torch.cat([out.pop(block + p + suffix) for p in parts], 0)
    return out


def _linear_of(parts: list[nn.Linear]) -> nn.Linear:
    """One Linear whose output is the parts' outputs side by side (exact: rows concatenated)."""
    weight = torch.cat([p.weight for p in parts], 0)
    fused = nn.Linear(weight.shape[1], weight.shape[0], bias=True, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        if weight.device.type != "meta":
            fused.weight.copy_(weight)
            fused.bias.copy_(torch.cat([p.bias for p in parts], 0))
    return fused


def fuse_modules(model: Any) -> Any:
    """Replace the model's split Linears with the original layout's fused ones, in place."""
    for blocks, table in FUSED.items():
        for block in getattr(model, blocks):
            for fused, parts in table.items():
                linear = _linear_of([block.get_submodule(p) for p in parts])
                for part in parts:
                    parent, _, name = part.rpartition(".")
                    delattr(block.get_submodule(parent), name)
                parent, _, name = fused.rpartition(".")
                setattr(block.get_submodule(parent), name, linear)
            block.attn.fused_projections = True
            if blocks == "single_transformer_blocks":
                # the single block's forward hands the attention q, k, v from linear1
                block.attn.to_qkv = nn.Identity()
    return model


def block_linears(model: Any) -> list[str]:
    """Our names of every Linear inside the double and single blocks: diffusion-pipe's LoRA targets."""
    names = []
    for prefix, blocks in (
        ("transformer_blocks", model.transformer_blocks),
        ("single_transformer_blocks", model.single_transformer_blocks),
    ):
        for i, block in enumerate(blocks):
            names += [f"{prefix}.{i}.{n}" for n, m in block.named_modules() if isinstance(m, nn.Linear)]
    return names
