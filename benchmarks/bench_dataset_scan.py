"""Benchmark: header-only dataset scan vs a full-decode baseline on 10,000 real images.

Why: the pre-flight scan runs before every launch and inside the TUI's validator, so it has to stay
fast on real dataset sizes over SSH. The baseline is what a naive scanner (or diffusion-pipe's caching
step) pays: Pillow ``load()`` of every image. Both passes run in the same process on the same files.

Usage: ``python benchmarks/bench_dataset_scan.py [--count N] [--dir PATH]``. The dataset is generated
once into ``benchmarks/out/scan-dataset-N/`` (git-ignored) and reused.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from PIL import Image

from dpipe_tui.datasets import plan_steps, scan_dataset

SIZES = [(512, 512), (768, 512), (512, 768), (1024, 576), (576, 1024), (640, 480), (1216, 832), (300, 900)]


def generate(root: Path, count: int) -> Path:
    """Write ``count`` small real PNG/JPEG images with captions (idempotent) and a dataset TOML."""
    images = root / "images"
    marker = root / ".complete"
    if marker.exists():
        return root / "dataset.toml"
    images.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for i in range(count):
        w, h = rng.choice(SIZES)
        # Smooth gradient content keeps files small but makes decoding do real work.
        im = Image.linear_gradient("L").resize((w, h)).convert("RGB")
        ext = "png" if i % 2 else "jpg"
        im.save(images / f"{i:05d}.{ext}", quality=80, compress_level=1)
        if i % 50:
            (images / f"{i:05d}.txt").write_text(f"image {i}, gradient, test", encoding="utf-8")
    (root / "dataset.toml").write_text(
        "resolutions = [512]\nenable_ar_bucket = true\nmin_ar = 0.5\nmax_ar = 2.0\nnum_ar_buckets = 7\n"
        "[[directory]]\npath = 'images'\n",
        encoding="utf-8",
    )
    marker.touch()
    return root / "dataset.toml"


def full_decode(images: Path) -> int:
    """Baseline: open and fully decode every image file."""
    n = 0
    for p in sorted(images.iterdir()):
        if p.suffix in (".png", ".jpg"):
            with Image.open(p) as im:
                im.load()
            n += 1
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    root = args.dir or Path(__file__).parent / "out" / f"scan-dataset-{args.count}"
    t0 = time.perf_counter()
    config = generate(root, args.count)
    print(f"dataset: {root} ({args.count} images; prepared in {time.perf_counter() - t0:.1f}s)")

    full_decode(root / "images")  # warm the page cache so both passes read from memory
    t0 = time.perf_counter()
    scan = scan_dataset(config, base_dir=root, model_type="flux")
    t_scan = time.perf_counter() - t0
    t0 = time.perf_counter()
    decoded = full_decode(root / "images")
    t_full = time.perf_counter() - t0
    plan = plan_steps(
        scan, micro_batch_size=4, gradient_accumulation_steps=1, world_size=1, pipeline_stages=1, epochs=1
    )

    n = scan.images
    print(f"header-only scan : {n} images in {t_scan:.2f}s = {n / t_scan:,.0f} images/s (captions read too)")
    print(f"full decode      : {decoded} images in {t_full:.2f}s = {decoded / t_full:,.0f} images/s")
    print(f"speedup          : {t_full / t_scan:.1f}x")
    print(
        f"kept {scan.items_kept}, {len(plan.buckets)} buckets, {plan.steps_per_epoch} steps/epoch at batch 4"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
