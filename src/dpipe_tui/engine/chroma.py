"""Chroma on diffusers: loading the parts, encoding, and the flow-matching training inputs.

Why diffusers and not the original Chroma code: diffusers is installable everywhere and has
``ChromaTransformer2DModel``; the model is given the original layout's fused Linears at load and
every parameter has its BFL name (bfl.py): a BFL ``transformer_path`` loads by renaming, a
diffusers one by fusing. The training objective is diffusion-pipe's (models/chroma.py):
latents packed 2x2, ``x_t = (1-t)·x1 + t·x0``, target ``x0 - x1``, t from logit-normal (with
``sigmoid_scale``) or uniform, then ``shift`` or the resolution-dependent ``flux_shift``.

Randomness is drawn from a ``torch.Generator`` the caller seeds from (seed, epoch, batch,
rank), so a resumed run draws exactly the noise an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from dpipe_tui.engine import bfl

DTYPE_MAP = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float8": torch.float8_e4m3fn,
    "float8_e4m3fn": torch.float8_e4m3fn,
    "float8_e5m2": torch.float8_e5m2,
}
MAX_SEQUENCE_LENGTH = 512  # diffusion-pipe's T5 length for Chroma
CONFIG_METADATA_KEY = "dpipe_tui.transformer_config"


def load_vae(diffusers_path: str, dtype: torch.dtype) -> Any:
    """The Flux VAE (AutoencoderKL, 16 latent channels) from ``<diffusers_path>/vae``."""
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(Path(diffusers_path) / "vae", torch_dtype=dtype).eval()


def load_text_encoder(diffusers_path: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """T5 encoder and tokenizer from ``text_encoder_2`` / ``tokenizer_2`` (Flux repo layout)."""
    from transformers import T5EncoderModel, T5TokenizerFast  # type: ignore[attr-defined]

    root = Path(diffusers_path)
    tokenizer = T5TokenizerFast.from_pretrained(root / "tokenizer_2")
    encoder = T5EncoderModel.from_pretrained(root / "text_encoder_2", torch_dtype=dtype).eval()
    return encoder, tokenizer


@torch.no_grad()
def encode_images(vae: Any, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Pixels in [0, 1] (B, 3, H, W) -> scaled, shifted Flux latents (B, 16, H/8, W/8)."""
    x = (pixels * 2 - 1).to(vae.device, vae.dtype)
    latents = vae.encode(x).latent_dist.sample(generator=generator)
    shift = getattr(vae.config, "shift_factor", None)
    if shift is not None:
        latents = latents - shift
    return (latents * vae.config.scaling_factor).float().cpu()


@torch.no_grad()
def encode_captions(encoder: Any, tokenizer: Any, captions: list[str]) -> list[torch.Tensor]:
    """T5 embeddings per caption, trimmed to its tokens plus the one attended padding token.

    Chroma attends the valid tokens and one padding token; later positions are masked, so
    storing only those (and padding per batch) gives the same model inputs as 512 tokens.
    """
    tokens = tokenizer(
        captions,
        padding="max_length",
        max_length=MAX_SEQUENCE_LENGTH,
        truncation=True,
        return_tensors="pt",
    )
    device = next(encoder.parameters()).device
    ids, mask = tokens.input_ids.to(device), tokens.attention_mask.to(device)
    embeds = encoder(ids, attention_mask=mask, output_hidden_states=False)[0].float().cpu()
    lengths = tokens.attention_mask.sum(dim=1)
    return [embeds[i, : min(int(lengths[i]) + 1, MAX_SEQUENCE_LENGTH)].clone() for i in range(len(captions))]


def _rope_axes(head_dim: int) -> tuple[int, int, int]:
    side = (head_dim * 7 // 16) // 2 * 2
    return (head_dim - 2 * side, side, side)


def infer_config(sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """ChromaTransformer2DModel kwargs from a state dict in our (fused diffusers) names."""

    def count(prefix: str) -> int:
        pat = re.compile(re.escape(prefix) + r"(\d+)\.")
        return 1 + max((int(m.group(1)) for k in sd if (m := pat.match(k))), default=-1)

    inner, in_ch = sd["x_embedder.weight"].shape
    head_dim = sd["transformer_blocks.0.attn.norm_q.weight"].shape[0]
    approx_hidden, approx_in = sd["distilled_guidance_layer.in_proj.weight"].shape
    return {
        "in_channels": in_ch,
        "num_layers": count("transformer_blocks."),
        "num_single_layers": count("single_transformer_blocks."),
        "attention_head_dim": head_dim,
        "num_attention_heads": inner // head_dim,
        "joint_attention_dim": sd["context_embedder.weight"].shape[1],
        "axes_dims_rope": _rope_axes(head_dim),
        "approximator_num_channels": approx_in,
        "approximator_hidden_dim": approx_hidden,
        "approximator_layers": count("distilled_guidance_layer.layers."),
    }


def _read_transformer_file(path: str) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """A transformer checkpoint in our fused names (see bfl.py), and its config when it names one."""
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    sd = load_file(path)
    config = json.loads(meta[CONFIG_METADATA_KEY]) if CONFIG_METADATA_KEY in meta else None
    if bfl.is_bfl(sd):  # the original (BFL) Chroma layout, as diffusion-pipe expects: names only
        try:
            return bfl.bfl_to_fused(sd), config
        except KeyError as exc:
            raise RuntimeError(f"{path}: not an original-layout Chroma checkpoint: {exc}") from None
    return bfl.fuse_state_dict(sd), config


def load_transformer(
    model_cfg: dict[str, Any], *, random_init: bool, seed: int, device: torch.device, dtype: torch.dtype
) -> Any:
    """Build the ChromaTransformer2DModel, with the original layout's fused Linears (bfl.py), from
    ``transformer_path`` or with random weights.

    Random init (``[dpipe_tui] random_init = true``) reads the architecture from
    ``<diffusers_path>/transformer/config.json`` (real Chroma's when absent) and draws weights
    from ``seed`` directly on ``device``: a full-size model needs no download.
    """
    from diffusers import ChromaTransformer2DModel

    if random_init:
        cfg_file = Path(model_cfg["diffusers_path"]) / "transformer" / "config.json"
        config = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
        config = {k: v for k, v in config.items() if not k.startswith("_")}
        print(f"Random-initialising the Chroma transformer (seed {seed}, {config or 'Chroma defaults'})")
        torch.manual_seed(seed)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)  # build in the compute dtype: half the peak memory of fp32
        try:
            with torch.device(device):
                return bfl.fuse_modules(ChromaTransformer2DModel(**config))
        finally:
            torch.set_default_dtype(previous)
    sd, config = _read_transformer_file(model_cfg["transformer_path"])
    config = config or infer_config(sd)
    with torch.device("meta"):
        model: Any = bfl.fuse_modules(ChromaTransformer2DModel(**config))
    model.load_state_dict(sd, strict=True, assign=True)
    # The non-persistent mod_proj buffer is not in the file: rebuild it off the meta device.
    embed = model.time_text_embed
    out_dim = 3 * config["num_single_layers"] + 2 * 6 * config["num_layers"] + 2
    from diffusers.models.embeddings import get_timestep_embedding

    channels = config.get("approximator_num_channels", 64) // 4
    embed.mod_proj = get_timestep_embedding(
        torch.arange(out_dim) * 1000, 2 * channels, flip_sin_to_cos=True, downscale_freq_shift=0
    )
    return model.to(device)


def model_config(model: Any) -> dict[str, Any]:
    """The model's constructor arguments (what :data:`CONFIG_METADATA_KEY` stores)."""
    return {k: v for k, v in dict(model.config).items() if not k.startswith("_")}


def bfl_state_dict(named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our parameters under the original layout's names (a full fine-tune's ``model.safetensors``)."""
    return {bfl.to_bfl(k): v for k, v in named.items()}


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H/2·W/2, C·4), the 2x2 patchify of Flux/Chroma."""
    b, c, h, w = latents.shape
    x = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def image_ids(h: int, w: int) -> torch.Tensor:
    """Rotary position ids (row, col) of the packed latent grid."""
    ids = torch.zeros(h // 2, w // 2, 3)
    ids[..., 1] = torch.arange(h // 2)[:, None]
    ids[..., 2] = torch.arange(w // 2)[None, :]
    return ids.reshape(-1, 3)


def sample_timesteps(
    model_cfg: dict[str, Any], bs: int, h: int, w: int, generator: torch.Generator, quantile: float | None
) -> torch.Tensor:
    """diffusion-pipe's timestep sampling, with shift / flux_shift."""
    method = model_cfg.get("timestep_sample_method", "logit_normal")
    if method == "logit_normal":
        if quantile is not None:
            t = torch.full((bs,), math.sqrt(2) * torch.erfinv(torch.tensor(2 * quantile - 1)).item())
        else:
            t = torch.randn(bs, generator=generator)
        t = torch.sigmoid(t * model_cfg.get("sigmoid_scale", 1.0))
    elif method == "uniform":
        t = torch.full((bs,), quantile) if quantile is not None else torch.rand(bs, generator=generator)
    else:
        raise NotImplementedError(f"timestep_sample_method={method} is not implemented")
    if shift := model_cfg.get("shift"):
        t = (t * shift) / (1 + (shift - 1) * t)
    elif model_cfg.get("flux_shift", False):
        seq = (h // 2) * (w // 2)
        mu = 0.5 + (1.15 - 0.5) / (4096 - 256) * (seq - 256)
        t = math.exp(mu) / (math.exp(mu) + (1 / t - 1))
    return t


def make_inputs(
    latents: torch.Tensor,
    text: torch.Tensor,
    text_lengths: torch.Tensor,
    model_cfg: dict[str, Any],
    generator: torch.Generator,
    quantile: float | None = None,
    masks: torch.Tensor | None = None,
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """One micro-batch's (features, labels) for the pipeline.

    Args:
        latents: cached latents (B, 16, h, w).
        text: T5 embeddings padded to a common length (B, L, D).
        text_lengths: attended text positions per item (tokens + 1 padding).
        model_cfg: the ``[model]`` table (timestep keys).
        generator: the seeded RNG for timesteps and noise.
        quantile: a fixed timestep quantile (eval), or None to sample.
        masks: loss masks at latent size (B, h, w), or None: packed like the latents, every channel.
    """
    bs, _, h, w = latents.shape
    x1 = pack_latents(latents.float())
    t = sample_timesteps(model_cfg, bs, h, w, generator, quantile)
    x0 = torch.randn(x1.shape, generator=generator)
    te = t.view(-1, 1, 1)
    x_t = (1 - te) * x1 + te * x0
    positions = torch.arange(text.shape[1])[None, :]
    mask = torch.cat([positions < text_lengths[:, None], torch.ones(bs, x1.shape[1], dtype=torch.bool)], 1)
    txt_ids = torch.zeros(text.shape[1], 3)
    features = (x_t, text, mask, t, image_ids(h, w), txt_ids)
    if masks is None:
        return features, (x0 - x1, torch.tensor([]))
    packed = pack_latents(masks.float()[:, None].expand(-1, latents.shape[1], -1, -1).contiguous())
    return features, (x0 - x1, packed)
