"""LoRA on the diffusers Chroma transformer, saved in diffusion-pipe's (BFL/ComfyUI) layout.

Why a conversion: diffusion-pipe trains the original Chroma, whose attention has one fused
``qkv`` Linear per stream and whose single blocks have one ``linear1`` (q, k, v and the MLP input
fused). diffusers splits those. A user's ComfyUI expects diffusion-pipe's names (spec §6), so on
save the separate LoRAs are fused *exactly*: for parts with LoRA factors (A_i: r×in, B_i: out_i×r),
the fused LoRA has A = [A_1; A_2; ...] (Σr × in) and B = blockdiag(B_1, B_2, ...) (Σout × Σr), so
B·A stacks exactly the B_i·A_i. alpha = rank everywhere (scale 1, no alpha tensors), which
``adapter_config.json`` states with ``rank_pattern``/``alpha_pattern`` for the fused modules.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

DOUBLE = {
    "img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "img_attn.proj": ("attn.to_out.0",),
    "txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "txt_attn.proj": ("attn.to_add_out",),
    "img_mlp.0": ("ff.net.0.proj",),
    "img_mlp.2": ("ff.net.2",),
    "txt_mlp.0": ("ff_context.net.0.proj",),
    "txt_mlp.2": ("ff_context.net.2",),
}
SINGLE = {"linear1": ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"), "linear2": ("proj_out",)}


def bfl_targets(model: Any) -> list[tuple[str, list[str]]]:
    """(BFL module path, [diffusers module paths]) for every block Linear of the model."""
    out = []
    for i in range(len(model.transformer_blocks)):
        out += [
            (f"double_blocks.{i}.{k}", [f"transformer_blocks.{i}.{p}" for p in v]) for k, v in DOUBLE.items()
        ]
    for i in range(len(model.single_transformer_blocks)):
        out += [
            (f"single_blocks.{i}.{k}", [f"single_transformer_blocks.{i}.{p}" for p in v])
            for k, v in SINGLE.items()
        ]
    return out


def target_modules(model: Any) -> list[str]:
    """diffusers names of every Linear in the double and single blocks (diffusion-pipe's targets)."""
    return [p for _, parts in bfl_targets(model) for p in parts]


def configure(model: Any, adapter_cfg: dict[str, Any], dtype: torch.dtype) -> Any:
    """Inject a PEFT LoRA (alpha = rank) and freeze everything else; returns the LoraConfig."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(
        r=adapter_cfg["rank"],
        lora_alpha=adapter_cfg["rank"],
        lora_dropout=adapter_cfg.get("dropout", 0.0),
        bias="none",
        target_modules=target_modules(model),
        exclude_modules=adapter_cfg.get("exclude_modules"),
    )
    model.requires_grad_(False)
    inject_adapter_in_model(config, model)
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
    return config


def peft_state_dict(named: list[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Trainable LoRA tensors by diffusers name, ``.default`` removed (diffusion-pipe's naming)."""
    return {n.replace(".default", ""): t.detach().cpu() for n, t in named if "lora_" in n}


def _shapes(model: Any) -> dict[str, tuple[int, int]]:
    return {n: (m.in_features, m.out_features) for n, m in model.named_modules() if hasattr(m, "in_features")}


def to_bfl(sd: dict[str, torch.Tensor], model: Any) -> dict[str, torch.Tensor]:
    """Convert diffusers-named LoRA tensors to exact BFL-layout ones (prefix ``diffusion_model.``)."""
    shapes = _shapes(model)
    out: dict[str, torch.Tensor] = {}
    for bfl, parts in bfl_targets(model):
        present = [p for p in parts if f"{p}.lora_A.weight" in sd]
        if not present:
            continue
        rank = sd[f"{present[0]}.lora_A.weight"].shape[0]
        a_list, b_list = [], []
        for p in parts:
            if f"{p}.lora_A.weight" in sd:
                a_list.append(sd[f"{p}.lora_A.weight"])
                b_list.append(sd[f"{p}.lora_B.weight"])
            else:  # an excluded part contributes exactly zero
                base = p.replace(".base_layer", "")
                in_f, out_f = shapes.get(base) or shapes[f"{base}.base_layer"]
                a_list.append(torch.zeros(rank, in_f, dtype=sd[f"{present[0]}.lora_A.weight"].dtype))
                b_list.append(torch.zeros(out_f, rank, dtype=a_list[0].dtype))
        out[f"diffusion_model.{bfl}.lora_A.weight"] = torch.cat(a_list, 0).contiguous()
        out[f"diffusion_model.{bfl}.lora_B.weight"] = torch.block_diag(*b_list).contiguous()
    return out


def save_adapter(
    save_dir: Path, sd: dict[str, torch.Tensor], model: Any, peft_config: Any, dtype: Any
) -> None:
    """Write ``adapter_model.safetensors`` (BFL names, {"format": "pt"}) and ``adapter_config.json``."""
    from peft import LoraConfig

    bfl = {k: v.to(dtype) for k, v in to_bfl(sd, model).items()}
    save_file(bfl, str(save_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    r = peft_config.r
    patterns = {"qkv": 3 * r, "linear1": 4 * r}
    modules = sorted({k.removeprefix("diffusion_model.").rsplit(".lora_", 1)[0] for k in bfl})
    LoraConfig(
        r=r,
        lora_alpha=r,
        lora_dropout=peft_config.lora_dropout,
        bias="none",
        target_modules=modules,
        rank_pattern=patterns,
        alpha_pattern=patterns,
    ).save_pretrained(str(save_dir))


def _split_fused(
    a: torch.Tensor, b: torch.Tensor, parts: list[str], shapes: dict[str, tuple[int, int]]
) -> Any:
    n = len(parts)
    if a.shape[0] % n:
        raise RuntimeError(f"cannot split a fused LoRA of rank {a.shape[0]} into {n} parts")
    r = a.shape[0] // n
    outs = [shapes[p][1] if p in shapes else shapes[f"{p}.base_layer"][1] for p in parts]
    rows = [0]
    for o in outs:
        rows.append(rows[-1] + o)
    result = {}
    for i, p in enumerate(parts):
        block = b[rows[i] : rows[i + 1]]
        off = torch.cat([block[:, : i * r], block[:, (i + 1) * r :]], 1)
        if off.numel() and off.abs().max() > 0:
            raise RuntimeError("the fused LoRA is not block-diagonal; it cannot be loaded into split q/k/v")
        result[p] = (a[i * r : (i + 1) * r], block[:, i * r : (i + 1) * r])
    return result


def load_adapter(model: Any, path: str) -> None:
    """``init_from_existing``: a folder with exactly one .safetensors (or a file), BFL or diffusers names."""
    print(f"Loading adapter weights from path {path}")
    p = Path(path)
    files = [p] if p.is_file() else sorted(p.glob("*.safetensors"))
    if len(files) != 1:
        raise RuntimeError(f"{'No' if not files else 'Multiple'} safetensors file(s) found in {path}")
    raw = {re.sub(r"^(transformer|diffusion_model)\.", "", k): v for k, v in load_file(str(files[0])).items()}
    shapes = _shapes(model)
    diffusers_sd: dict[str, torch.Tensor] = {}
    bfl_map = dict(bfl_targets(model))
    for key in [k for k in raw if k.endswith(".lora_A.weight")]:
        module = key.removesuffix(".lora_A.weight")
        a, b = raw[key], raw[f"{module}.lora_B.weight"]
        if module in bfl_map:
            for part, (pa, pb) in _split_fused(a, b, bfl_map[module], shapes).items():
                diffusers_sd[f"{part}.lora_A.weight"], diffusers_sd[f"{part}.lora_B.weight"] = pa, pb
        else:
            diffusers_sd[key], diffusers_sd[f"{module}.lora_B.weight"] = a, b
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, value in diffusers_sd.items():
            target = key.replace(".weight", ".default.weight")
            if target not in params:
                raise RuntimeError(f"adapter key {key} is not in the model parameters")
            params[target].copy_(value.to(params[target].dtype))
