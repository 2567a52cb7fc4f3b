"""Listing a big output_dir's checkpoints: 200 saves and 50 training states, headers only.

Builds a diffusion-pipe-shaped run folder in a temp dir: 200 ``epochN/`` saves, each a ComfyUI LoRA
whose safetensors header describes a Chroma-sized adapter (~1,000 tensors, ~100 KB of JSON header,
tiny data), with ``adapter_config.json``; 50 ``global_stepN/`` states with 60 layer files and one
``mp_rank_00`` file each; ``latest``; two launches. Then times :func:`scan_run_folder` (what
``dpipe-tui checkpoints`` and the TUI's checkpoint screen read), cold (first) and warm (best of 5).

    .venv/bin/python benchmarks/bench_checkpoints.py [--saves 200] [--states 50]

Prints each figure beside its goal; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import struct
import tempfile
import time
from pathlib import Path

from dpipe_tui.checkpoints.inventory import scan_run_folder

GOAL_S = 0.200


def lora_header(modules: int, rank: int) -> bytes:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for i in range(modules):
        for part, shape in (("lora_A", [rank, 3072]), ("lora_B", [9216, rank])):
            name = f"diffusion_model.double_blocks.{i // 8}.img_attn.qkv{i}.{part}.weight"
            header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + 2]}
            offset += 2
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"\0" * offset


def build(root: Path, saves: int, states: int) -> tuple[Path, int]:
    run = root / "20260101_10-00-00"
    run.mkdir()
    blob = lora_header(modules=500, rank=32)
    config = json.dumps({"r": 32, "lora_alpha": 32, "peft_type": "LORA"})
    for i in range(1, saves + 1):
        folder = run / f"epoch{i}"
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(blob)
        (folder / "adapter_config.json").write_text(config)
        (folder / "main.toml").write_text("output_dir = '/x'\n[model]\ntype = 'chroma'\n")
    for i in range(1, states + 1):
        folder = run / f"global_step{100 * i}"
        folder.mkdir()
        for layer in range(60):
            (folder / f"layer_{layer:02d}-model_states.pt").write_bytes(b"\0" * 64)
        (folder / "mp_rank_00_model_states.pt").write_bytes(b"\0" * 64)
    (run / "latest").write_text(f"global_step{100 * states}")
    for t in (1_700_000_000, 1_700_100_000):
        (run / f"events.out.tfevents.{t}.host.1.0").write_bytes(b"")
    return run, len(blob) - 8 - struct.unpack("<Q", blob[:8])[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--saves", type=int, default=200)
    ap.add_argument("--states", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dpipe-bench-ckpt-") as tmp:
        run, _ = build(Path(tmp), args.saves, args.states)
        header = (run / "epoch1" / "adapter_model.safetensors").read_bytes()
        header_kb = struct.unpack("<Q", header[:8])[0] / 1024
        t0 = time.perf_counter()
        inv = scan_run_folder(run)
        cold = time.perf_counter() - t0
        warm = []
        for _ in range(5):
            t0 = time.perf_counter()
            inv = scan_run_folder(run)
            warm.append(time.perf_counter() - t0)
        assert len(inv.saves) == args.saves
        assert len(inv.states) == args.states
        assert all(s.rank == 32 and s.tensors == 1000 for s in inv.saves)
        best = min(warm)
        print(
            f"checkpoint listing: {args.saves} saves ({header_kb:.0f} KiB header each, 1,000 tensors) "
            f"+ {args.states} states (61 files each)"
        )
        print(f"  first scan {cold * 1000:.0f} ms (page cache warm from writing them)")
        verdict = "met" if best < GOAL_S else "MISSED"
        print(f"  best of 5: {best * 1000:.0f} ms; goal < {GOAL_S * 1000:.0f} ms -> {verdict}")


if __name__ == "__main__":
    main()
