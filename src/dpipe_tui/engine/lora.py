"""diffusion-pipe's Chroma LoRA: one rank-r adapter on each Linear of the double and single blocks.

The model has the original layout's fused Linears (bfl.py), so the adapter is diffusion-pipe's shape
for shape: ``img_attn.qkv`` is one Linear with one rank-r LoRA, and so is ``single_blocks.N.linear1``.
Saving renames to the BFL module paths with diffusion-pipe's ``diffusion_model.`` prefix (ComfyUI
format, spec §6); ``adapter_config.json`` is the LoraConfig diffusion-pipe writes (BFL target
names, ``lora_alpha == r``, its ``exclude_modules``). ``exclude_modules`` patterns are written
against the BFL names, so they are matched on those and the kept modules handed to PEFT by our names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from dpipe_tui.engine import bfl

PREFIX = "diffusion_model."


def _excluded(name: str, exclude: Any) -> bool:
    """PEFT's ``exclude_modules`` rule: a string is a full-match regex, a list names modules or suffixes."""
    if not exclude:
        return False
    if isinstance(exclude, str):
        return re.fullmatch(exclude, name) is not None
    return any(name == item or name.endswith(f".{item}") for item in exclude)


def configure(model: Any, adapter_cfg: dict[str, Any], dtype: torch.dtype) -> Any:
    """Inject the LoRA (alpha = rank) and freeze everything else; returns the LoraConfig to save."""
    from peft import LoraConfig, inject_adapter_in_model

    rank, dropout = adapter_cfg["rank"], adapter_cfg.get("dropout", 0.0)
    exclude = adapter_cfg.get("exclude_modules")
    targets = bfl.block_linears(model)
    kept = [n for n in targets if not _excluded(bfl.to_bfl(n), exclude)]
    if not kept:
        raise ValueError(f"[adapter] exclude_modules = {exclude!r} excludes every module: nothing to train")
    model.requires_grad_(False)
    inject_adapter_in_model(
        LoraConfig(r=rank, lora_alpha=rank, lora_dropout=dropout, bias="none", target_modules=kept), model
    )
    trainable = total = 0
    for name, p in model.named_parameters():
        p.original_name = name
        total += p.numel()
        if "lora_" in name:
            p.requires_grad_(True)
            p.data = p.data.to(dtype)
            trainable += p.numel()
    print(
        f"trainable params: {trainable:,d} || all params: {total:,d} || "
        f"trainable%: {100 * trainable / total:.4f}"
    )
    return LoraConfig(
        r=rank,
        lora_alpha=rank,
        lora_dropout=dropout,
        bias="none",
        target_modules=sorted(bfl.to_bfl(n) for n in targets),
        exclude_modules=exclude,
    )


def peft_state_dict(named: list[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Trainable LoRA tensors by our name, ``.default`` removed (diffusion-pipe's naming)."""
    return {n.replace(".default", ""): t.detach().cpu() for n, t in named if "lora_" in n}


def to_comfy(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our LoRA tensors under diffusion-pipe's saved names (``diffusion_model.<BFL path>...``)."""
    return {PREFIX + bfl.to_bfl(k): v.contiguous() for k, v in sd.items()}


def save_adapter(save_dir: Path, sd: dict[str, torch.Tensor], peft_config: Any, dtype: Any) -> None:
    """Write ``adapter_model.safetensors`` ({"format": "pt"}) and ``adapter_config.json``."""
    peft_config.save_pretrained(str(save_dir))
    tensors = {k: v.to(dtype) for k, v in to_comfy(sd).items()}
    save_file(tensors, str(save_dir / "adapter_model.safetensors"), metadata={"format": "pt"})


def read_adapter(path: str) -> dict[str, torch.Tensor]:
    """A saved LoRA (a folder with exactly one .safetensors, or the file) by BFL module path."""
    p = Path(path)
    files = [p] if p.is_file() else sorted(p.glob("*.safetensors"))
    if len(files) != 1:
        raise RuntimeError(f"{'No' if not files else 'Multiple'} safetensors file(s) found in {path}")
    tensors = load_file(str(files[0]))
    return {re.sub(r"^(transformer|diffusion_model)\.", "", k): v for k, v in tensors.items()}


def load_adapter(model: Any, path: str) -> None:
    """``init_from_existing``: diffusion-pipe's saved LoRA (or ours: the same) into the injected one."""
    print(f"Loading adapter weights from path {path}")
    params = dict(model.named_parameters())
    loaded = {}
    for key, value in read_adapter(path).items():
        try:
            ours = bfl.from_bfl(key)
        except KeyError:
            raise RuntimeError(
                f"{path}: {key} is not a LoRA of the original Chroma layout (diffusion-pipe's names, "
                "e.g. diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight)"
            ) from None
        target = re.sub(r"\.weight$", ".default.weight", ours)
        if target not in params:
            raise RuntimeError(f"{path}: {key} is not in the model's adapter (excluded, or another model)")
        if params[target].shape != value.shape:
            raise RuntimeError(
                f"{path}: {key} has shape {tuple(value.shape)}, this run's adapter "
                f"{tuple(params[target].shape)}: set [adapter] rank to the LoRA's rank"
            )
        loaded[target] = value
    with torch.no_grad():
        for target, value in loaded.items():
            params[target].copy_(value.to(params[target].dtype))


def merge_adapter(model: Any, path: str) -> None:
    """``fuse_adapters``: add a saved LoRA's B·A x alpha/r (from its adapter_config.json; 1 without
    one) into the base Linears, as diffusion-pipe's merge_and_unload does for Chroma. diffusion-pipe
    ignores an entry's ``weight`` for Chroma (only Flux reads it); so does this (the validator warns)."""
    import json

    tensors = read_adapter(path)
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    scale = 1.0
    config_file = folder / "adapter_config.json"
    if config_file.is_file():
        cfg = json.loads(config_file.read_text(encoding="utf-8"))
        scale = float(cfg.get("lora_alpha", cfg.get("r", 1))) / float(cfg.get("r", 1))
    modules = dict(model.named_modules())
    with torch.no_grad():
        for key in [k for k in tensors if k.endswith(".lora_A.weight")]:
            module_path = key.removesuffix(".lora_A.weight")
            try:
                linear = modules[bfl.from_bfl(module_path)]
            except KeyError:
                raise RuntimeError(
                    f"{path}: {module_path} is not a Linear of the original Chroma layout"
                ) from None
            a, b = tensors[key].float(), tensors[f"{module_path}.lora_B.weight"].float()
            delta = (b @ a) * scale
            linear.weight.add_(delta.to(linear.weight.device, linear.weight.dtype))
