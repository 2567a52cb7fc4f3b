"""diffusion-pipe-shaped run folders for the formats the built-in engine does not write.

Real files in the real layouts (spec §5, §6): safetensors written byte by byte (8-byte header length,
JSON header, data), ``adapter_config.json``, DeepSpeed state folders with ``layer_XX-`` and
``mp_rank_SS_`` files, ``latest``, TensorBoard event file names with their launch time.
"""

from __future__ import annotations

import json
import os
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4}


def write_safetensors(
    path: Path,
    tensors: dict[str, tuple[str, list[int]]],
    *,
    metadata: dict[str, str] | None = None,
    values: dict[str, bytes] | None = None,
) -> Path:
    """A safetensors file: each tensor (dtype, shape) filled with a byte pattern unless given."""
    header: dict[str, object] = {"__metadata__": metadata or {"format": "pt"}}
    data = bytearray()
    for i, (name, (dtype, shape)) in enumerate(tensors.items()):
        n = DTYPE_BYTES[dtype]
        for dim in shape:
            n *= dim
        blob = (values or {}).get(name) or bytes((i + j) % 251 for j in range(n))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(data))
    return path


def lora_tensors(
    prefix: str, rank: int, modules: int, *, down: str = "lora_A", up: str = "lora_B"
) -> dict[str, tuple[str, list[int]]]:
    out: dict[str, tuple[str, list[int]]] = {}
    for i in range(modules):
        out[f"{prefix}{i}.attn.{down}.weight"] = ("BF16", [rank, 8])
        out[f"{prefix}{i}.attn.{up}.weight"] = ("BF16", [8, rank])
    return out


def comfy_save(folder: Path, rank: int = 4, alpha: int | None = None, modules: int = 3) -> Path:
    write_safetensors(
        folder / "adapter_model.safetensors", lora_tensors("diffusion_model.blocks.", rank, modules)
    )
    config = {"r": rank, "lora_alpha": alpha if alpha is not None else rank, "peft_type": "LORA"}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    (folder / "main.toml").write_text("output_dir = '/x'\n")
    return folder


def diffusers_save(folder: Path, rank: int = 8) -> Path:
    write_safetensors(
        folder / "pytorch_lora_weights.safetensors", lora_tensors("transformer.blocks.", rank, 2)
    )
    (folder / "main.toml").write_text("output_dir = '/x'\n")
    return folder


def kohya_save(folder: Path, rank: int = 16, alpha: float = 8.0) -> Path:
    tensors = lora_tensors("lora_unet_block_", rank, 2, down="lora_down", up="lora_up")
    tensors["lora_unet_block_0.alpha"] = ("F32", [])
    write_safetensors(
        folder / "lora.safetensors", tensors, values={"lora_unet_block_0.alpha": struct.pack("<f", alpha)}
    )
    (folder / "main.toml").write_text("output_dir = '/x'\n")
    return folder


def full_save(folder: Path) -> Path:
    write_safetensors(
        folder / "model.safetensors", {"a.weight": ("BF16", [16, 16]), "b.weight": ("F32", [4])}
    )
    (folder / "main.toml").write_text("output_dir = '/x'\n")
    return folder


def state(folder: Path, *, stages: int = 1, layers: int = 3, size: int = 1000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(layers):
        (folder / f"layer_{i:02d}-model_states.pt").write_bytes(b"\0" * size)
    for s in range(stages):
        (folder / f"mp_rank_{s:02d}_model_states.pt").write_bytes(b"\1" * size)
    return folder


def touch(path: Path, mtime: float) -> None:
    os.utime(path, (mtime, mtime))


def launch_file(run: Path, t: float) -> Path:
    path = run / f"events.out.tfevents.{int(t)}.host.123.0"
    path.write_bytes(b"")
    return path


def main_config(run: Path, stages: int = 1) -> None:
    text = (
        f"output_dir = '/x'\ndataset = 'dataset.toml'\npipeline_stages = {stages}\n[model]\ntype = 'chroma'\n"
    )
    (run / "main.toml").write_text(text)
