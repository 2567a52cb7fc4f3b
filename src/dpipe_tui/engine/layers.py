"""ChromaTransformer2DModel cut into a DeepSpeed pipeline: embed → double blocks → concat →
single blocks → final.

Why layers of our own: DeepSpeed's PipelineModule needs a flat list of layers that pass a tuple
of tensors, so that ``pipeline_stages > 1`` can split the model (diffusion-pipe does the same for
the original Chroma in models/chroma.py). The tuple between layers is
``(img, txt, temb, rope_cos, rope_sin, mask)``; every float in it must carry grad for DeepSpeed's
stage-boundary backward, hence the ``requires_grad_`` calls.

The attention mask is applied to keys only (valid text tokens, one padding token, all image
tokens): query rows of padding tokens are then never fully masked, so no NaN can appear, and
image tokens see exactly what diffusers' Chroma pipeline lets them see.
"""

from __future__ import annotations

import contextlib
import re
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from deepspeed.pipe import PipelineModule
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from collections.abc import Callable

Activations = tuple[torch.Tensor, ...]


class KeyMaskAttnProcessor:
    """Wraps diffusers' Flux processor; turns the block's (B,1,L,L) pair mask into a key mask."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, attn: Any, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        mask = kwargs.get("attention_mask")
        if mask is None:
            return self.inner(attn, hidden_states, *args, **kwargs)
        kwargs["attention_mask"] = mask.bool().any(dim=2, keepdim=True)
        return self.inner(attn, hidden_states, *args, **kwargs)


def _autocast(dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def _mask_or_none(mask: torch.Tensor) -> torch.Tensor | None:
    return None if bool(mask.all()) else mask


class EmbedLayer(nn.Module):
    """Patch/text embedders, Chroma's modulation approximator and the rotary embedding."""

    def __init__(self, model: Any, autocast: torch.dtype | None) -> None:
        super().__init__()
        self.x_embedder = model.x_embedder
        self.context_embedder = model.context_embedder
        self.time_text_embed = model.time_text_embed
        self.distilled_guidance_layer = model.distilled_guidance_layer
        self.pos_embed = model.pos_embed
        self.autocast = autocast

    def forward(self, inputs: Activations) -> Activations:
        x_t, text, mask, t, img_ids, txt_ids = inputs
        for item in (x_t, text):
            item.requires_grad_(True)
        with _autocast(self.autocast):
            img = self.x_embedder(x_t)
            txt = self.context_embedder(text)
            with torch.no_grad():  # the approximator is frozen (as in diffusion-pipe)
                # the timestep embedding in fp32, as diffusion-pipe (the approximator runs under autocast)
                temb = self.distilled_guidance_layer(self.time_text_embed(t.float() * 1000))
                cos, sin = self.pos_embed(torch.cat((txt_ids, img_ids), dim=0))
        return img, txt, temb.requires_grad_(True), cos.requires_grad_(True), sin.requires_grad_(True), mask


class DoubleBlockLayer(nn.Module):
    """One ChromaTransformerBlock (dual stream)."""

    def __init__(self, block: nn.Module, idx: int, n_double: int, n_single: int, autocast: Any) -> None:
        super().__init__()
        self.block = block
        self.img_mod = 3 * n_single + 6 * idx
        self.txt_mod = 3 * n_single + 6 * n_double + 6 * idx
        self.autocast = autocast

    def forward(self, inputs: Activations) -> Activations:
        img, txt, temb, cos, sin, mask = inputs
        mod = torch.cat(
            (temb[:, self.img_mod : self.img_mod + 6], temb[:, self.txt_mod : self.txt_mod + 6]), 1
        )
        with _autocast(self.autocast):
            txt, img = self.block(
                hidden_states=img,
                encoder_hidden_states=txt,
                temb=mod,
                image_rotary_emb=(cos, sin),
                attention_mask=_mask_or_none(mask),
            )
        return img, txt, temb, cos, sin, mask


def concatenate_streams(inputs: Activations) -> Activations:
    """Join text and image tokens before the single-stream blocks (txt first, as Chroma)."""
    img, txt, temb, cos, sin, mask = inputs
    return torch.cat((txt, img), 1), txt, temb, cos, sin, mask


class SingleBlockLayer(nn.Module):
    """One ChromaSingleTransformerBlock."""

    def __init__(self, block: nn.Module, idx: int, autocast: Any) -> None:
        super().__init__()
        self.block = block
        self.mod = 3 * idx
        self.autocast = autocast

    def forward(self, inputs: Activations) -> Activations:
        hidden, txt, temb, cos, sin, mask = inputs
        with _autocast(self.autocast):
            hidden = single_block_forward(
                self.block, hidden, temb[:, self.mod : self.mod + 3], (cos, sin), _mask_or_none(mask)
            )
        return hidden, txt, temb, cos, sin, mask


def single_block_forward(
    block: Any,
    hidden: torch.Tensor,
    temb: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor],
    mask: torch.Tensor | None,
) -> torch.Tensor:
    """A ChromaSingleTransformerBlock whose q, k, v and MLP input come from one fused ``linear1``
    (the original layout, see bfl.py): the same maths as diffusers' forward on the split Linears."""
    norm_hidden, gate = block.norm(hidden, emb=temb)
    dim = norm_hidden.shape[-1]
    qkv, mlp = block.linear1(norm_hidden).split([3 * dim, block.mlp_hidden_dim], dim=-1)
    pair_mask = None if mask is None else mask[:, None, None, :] * mask[:, None, :, None]
    attn = block.attn(hidden_states=qkv, image_rotary_emb=rope, attention_mask=pair_mask)
    out = gate.unsqueeze(1) * block.proj_out(torch.cat([attn, block.act_mlp(mlp)], dim=2))
    hidden = hidden + out
    if hidden.dtype == torch.float16:
        hidden = hidden.clip(-65504, 65504)
    return hidden


class FinalLayer(nn.Module):
    """Drop the text tokens, final modulated norm and projection."""

    def __init__(self, model: Any, autocast: Any) -> None:
        super().__init__()
        self.norm_out = model.norm_out
        self.proj_out = model.proj_out
        self.autocast = autocast

    def forward(self, inputs: Activations) -> torch.Tensor:
        hidden, txt, temb, _cos, _sin, _mask = inputs
        with _autocast(self.autocast):
            out = self.proj_out(self.norm_out(hidden[:, txt.shape[1] :], temb[:, -2:]))
        return out


def to_layers(model: Any, autocast: torch.dtype | None) -> list[Any]:
    """The pipeline's layer list for a ChromaTransformer2DModel."""
    from diffusers.models.transformers.transformer_flux import FluxAttnProcessor

    model.set_attn_processor(KeyMaskAttnProcessor(FluxAttnProcessor()))
    n_double, n_single = len(model.transformer_blocks), len(model.single_transformer_blocks)
    layers: list[Any] = [EmbedLayer(model, autocast)]
    layers += [
        DoubleBlockLayer(b, i, n_double, n_single, autocast) for i, b in enumerate(model.transformer_blocks)
    ]
    layers.append(concatenate_streams)
    layers += [SingleBlockLayer(b, i, autocast) for i, b in enumerate(model.single_transformer_blocks)]
    layers.append(FinalLayer(model, autocast))
    return layers


def loss_fn(
    output: torch.Tensor,
    labels: tuple[torch.Tensor, ...],
    *,
    huber_delta: float | None = None,
    smooth_l1_beta: float | None = None,
) -> torch.Tensor:
    """diffusion-pipe's loss between the predicted and the true flow: MSE, or Huber (``huber_delta``)
    or smooth L1 (``smooth_l1_beta``), per element, times the mask when there is one, then the mean."""
    target, mask = labels
    target = target.to(output.device, torch.float32)
    if huber_delta is not None:
        loss = F.huber_loss(output.float(), target, reduction="none", delta=huber_delta)
    elif smooth_l1_beta is not None:
        loss = F.smooth_l1_loss(output.float(), target, reduction="none", beta=smooth_l1_beta)
    else:
        loss = F.mse_loss(output.float(), target, reduction="none")
    if mask.numel() > 0:
        loss = loss * mask.to(output.device, torch.float32)
    return loss.mean()


def loss_for(config: dict[str, Any]) -> Callable[..., torch.Tensor]:
    """The loss function the config asks for (``huber_delta`` wins over ``smooth_l1_beta``)."""
    huber, beta = config.get("huber_delta"), config.get("smooth_l1_beta")
    return partial(
        loss_fn,
        huber_delta=None if huber is None else float(huber),
        smooth_l1_beta=None if beta is None else float(beta),
    )


class EnginePipelineModule(PipelineModule):  # type: ignore[misc]
    """PipelineModule that counts frozen params when balancing stages and supports a manual split.

    Counting every parameter (not only trainable ones) is what diffusion-pipe does for LoRA
    training, so stages hold similar amounts of the frozen base model.
    """

    def __init__(self, *args: Any, manual_split: list[int] | None = None, **kwargs: Any) -> None:
        self.manual_split = manual_split
        super().__init__(*args, **kwargs)

    def _count_layer_params(self) -> list[int]:
        counts = []
        for layer in self._layer_specs:
            counts.append(sum(p.numel() for p in layer.parameters()) if isinstance(layer, nn.Module) else 0)
        return counts

    def _partition_layers(self, method: str = "uniform") -> None:
        if method.lower() != "manual" or self.manual_split is None:
            super()._partition_layers(method)
            return
        stages = self._topo.get_dim("pipe")
        if len(self.manual_split) != stages - 1:
            raise ValueError(
                f"partition_split must be length {stages - 1} (pipeline_stages-1), "
                f"was actually {len(self.manual_split)}"
            )
        self.parts = [0, *self.manual_split, len(self._layer_specs)]
        stage = self._topo.get_coord(self.global_rank).pipe
        self._set_bounds(start=self.parts[stage], stop=self.parts[stage + 1])


def layer_name(fn: Callable[..., Any] | nn.Module) -> str:
    """Readable name of a pipeline layer."""
    return re.sub(r"Layer$", "", type(fn).__name__ if isinstance(fn, nn.Module) else fn.__name__)
