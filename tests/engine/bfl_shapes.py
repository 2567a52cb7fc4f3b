"""The original (BFL) Chroma's parameters and diffusion-pipe's LoRA for it, written out from the
architecture itself (lodestone-rock/flow's Chroma: DoubleStreamBlock, SingleStreamBlock,
Approximator, LastLayer), never from the engine's code: what the engine saves is checked against it.

Per double block, for img_ and txt_: ``attn.qkv`` Linear(h, 3h), ``attn.norm`` QKNorm (two RMSNorm
``scale``s of the head size), ``attn.proj`` Linear(h, h), ``mlp.0`` Linear(h, mlp), ``mlp.2``
Linear(mlp, h). Per single block: ``linear1`` Linear(h, 3h + mlp), ``linear2`` Linear(h + mlp, h), a
QKNorm. Chroma's blocks take their modulation from the approximator: no ``*_mod`` Linears.
"""

from __future__ import annotations

Shapes = dict[str, tuple[int, ...]]


def _linear(name: str, n_in: int, n_out: int) -> Shapes:
    return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}


def block_linears(hidden: int, mlp: int, depth: int, single: int) -> dict[str, tuple[int, int]]:
    """(in, out) of every Linear inside the double and single blocks: diffusion-pipe's LoRA targets."""
    out: dict[str, tuple[int, int]] = {}
    for i in range(depth):
        for stream in ("img", "txt"):
            out[f"double_blocks.{i}.{stream}_attn.qkv"] = (hidden, 3 * hidden)
            out[f"double_blocks.{i}.{stream}_attn.proj"] = (hidden, hidden)
            out[f"double_blocks.{i}.{stream}_mlp.0"] = (hidden, mlp)
            out[f"double_blocks.{i}.{stream}_mlp.2"] = (mlp, hidden)
    for i in range(single):
        out[f"single_blocks.{i}.linear1"] = (hidden, 3 * hidden + mlp)
        out[f"single_blocks.{i}.linear2"] = (hidden + mlp, hidden)
    return out


def bfl_checkpoint_shapes(
    *,
    hidden: int,
    mlp: int,
    depth: int,
    single: int,
    context: int,
    heads: int = 2,
    in_channels: int = 64,
    approx_in: int = 64,
    approx_hidden: int = 32,
    approx_layers: int = 2,
) -> Shapes:
    """Every parameter of an original-layout Chroma checkpoint and its shape."""
    head = hidden // heads
    shapes: Shapes = {}
    shapes |= _linear("img_in", in_channels, hidden)
    shapes |= _linear("txt_in", context, hidden)
    shapes |= _linear("distilled_guidance_layer.in_proj", approx_in, approx_hidden)
    for i in range(approx_layers):
        shapes |= _linear(f"distilled_guidance_layer.layers.{i}.in_layer", approx_hidden, approx_hidden)
        shapes |= _linear(f"distilled_guidance_layer.layers.{i}.out_layer", approx_hidden, approx_hidden)
        shapes[f"distilled_guidance_layer.norms.{i}.scale"] = (approx_hidden,)
    shapes |= _linear("distilled_guidance_layer.out_proj", approx_hidden, hidden)
    for name, (n_in, n_out) in block_linears(hidden, mlp, depth, single).items():
        shapes |= _linear(name, n_in, n_out)
    norms = [f"double_blocks.{i}.{s}_attn.norm" for i in range(depth) for s in ("img", "txt")]
    norms += [f"single_blocks.{i}.norm" for i in range(single)]
    for norm in norms:
        shapes[f"{norm}.query_norm.scale"] = (head,)
        shapes[f"{norm}.key_norm.scale"] = (head,)
    shapes |= _linear("final_layer.linear", hidden, in_channels)
    return shapes


def diffusion_pipe_lora_shapes(*, hidden: int, mlp: int, depth: int, single: int, rank: int) -> Shapes:
    """The tensors of diffusion-pipe's saved Chroma LoRA (ComfyUI names, no alpha tensors)."""
    shapes: Shapes = {}
    for name, (n_in, n_out) in block_linears(hidden, mlp, depth, single).items():
        shapes[f"diffusion_model.{name}.lora_A.weight"] = (rank, n_in)
        shapes[f"diffusion_model.{name}.lora_B.weight"] = (n_out, rank)
    return shapes
