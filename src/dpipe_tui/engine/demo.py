"""Create a demo's model and dataset where a profile points: ``python -m dpipe_tui.engine.demo``.

Why generated, not downloaded: the product must run for real on any machine, offline, in about a
minute on a CPU. So everything is built locally from a fixed seed: a Chroma-architecture
transformer with random weights (saved as one safetensors file, like a real ``transformer_path``),
a Flux-format VAE (16 latent channels, 8x downsampling, Flux's scale/shift), a T5 encoder with a
Unigram tokenizer over the demo's words, and images of coloured shapes whose captions describe
them (something a LoRA can visibly learn). Idempotent: existing parts are left alone.

Presets: ``tiny`` (the CPU demo) and ``full`` (real Chroma dimensions for GPU benchmarks: no
transformer file, the profile must set ``[dpipe_tui] random_init = true``; T5 is tiny but
4096-wide so text embeddings have Chroma's shape). ``--out DIR`` writes a ready profile there.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tomllib
from pathlib import Path
from typing import Any

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220), "yellow": (235, 210, 40)}
SHAPES = ("circle", "square", "triangle")
TINY_TRANSFORMER = {
    "in_channels": 64,
    "num_layers": 2,
    "num_single_layers": 2,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 32,
    "axes_dims_rope": [4, 6, 6],
    "approximator_num_channels": 64,
    "approximator_hidden_dim": 32,
    "approximator_layers": 2,
}
SEED = 1234


def _words() -> list[str]:
    return sorted(
        {*COLOURS, *SHAPES, "a", "on", "white", "background", "wide", "small", "large", "picture", "of"}
    )


def write_tokenizer(folder: Path) -> None:
    """A T5-compatible Unigram tokenizer over the demo's words (plus letters as fallback)."""
    from transformers import T5TokenizerFast  # type: ignore[attr-defined]

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [("▁" + w, -1.0) for w in _words()]
    vocab += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789,.-"]
    T5TokenizerFast(vocab=vocab, extra_ids=0).save_pretrained(str(folder))


def write_text_encoder(folder: Path, d_model: int, vocab_size: int) -> None:
    """A small random T5 encoder (``d_model`` = the transformer's joint_attention_dim)."""
    import torch
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(SEED)
    heads = 2 if d_model <= 64 else 1
    config = T5Config(vocab_size=vocab_size, d_model=d_model, d_kv=16, d_ff=64, num_layers=2, num_heads=heads)
    T5EncoderModel(config).save_pretrained(str(folder))


def write_vae(folder: Path) -> None:
    """A small random AutoencoderKL with the Flux latent format."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(SEED)
    vae: Any = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=4,
        scaling_factor=0.3611,
        shift_factor=0.1159,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    vae.save_pretrained(str(folder))


def write_transformer(path: Path, config: dict[str, Any]) -> None:
    """A random Chroma transformer as one safetensors file in the original (BFL) layout that
    diffusion-pipe's ``transformer_path`` takes (its config in the metadata: the size is not Chroma's)."""
    import torch
    from diffusers import ChromaTransformer2DModel
    from safetensors.torch import save_file

    from dpipe_tui.engine import bfl
    from dpipe_tui.engine.chroma import CONFIG_METADATA_KEY

    torch.manual_seed(SEED)
    model: Any = bfl.fuse_modules(ChromaTransformer2DModel(**config))
    sd = {bfl.to_bfl(k): v.contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path), metadata={"format": "pt", CONFIG_METADATA_KEY: json.dumps(config)})


def _draw(
    shape: str, colour: tuple[int, int, int], size: tuple[int, int], scale: float, rng: random.Random
) -> Any:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    w, h = size
    r = scale * min(w, h) / 2
    cx, cy = w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return img


def write_images(folder: Path, side: int) -> int:
    """Square and wide pictures of coloured shapes, each with a caption describing it."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    n = 0
    for colour, rgb in COLOURS.items():
        for shape in SHAPES:
            for size_word, scale in (("large", 0.8), ("small", 0.45)):
                wide = n % 6 == 5
                size = (side * 3 // 2, side) if wide else (side, side)
                stem = f"{colour}-{shape}-{size_word}{'-wide' if wide else ''}"
                _draw(shape, rgb, size, scale, rng).save(folder / f"{stem}.png")
                kind = "wide picture" if wide else "picture"
                caption = f"a {kind} of a {size_word} {colour} {shape} on a white background"
                (folder / f"{stem}.txt").write_text(caption + "\n", encoding="utf-8")
                n += 1
    return n


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def prepare(profile: Path, preset: str = "tiny", side: int | None = None) -> list[str]:
    """Create whatever the profile's model and dataset paths lack. Returns what was created."""
    base = profile.resolve().parent
    config = tomllib.loads(profile.read_text(encoding="utf-8"))
    model = config["model"]
    root = _resolve(base, model["diffusers_path"])
    tconfig = TINY_TRANSFORMER if preset == "tiny" else {}
    d_model = int(str(tconfig.get("joint_attention_dim", 4096)))
    made = []
    if not (root / "tokenizer_2" / "tokenizer.json").is_file():
        write_tokenizer(root / "tokenizer_2")
        made.append("tokenizer_2")
    if not (root / "text_encoder_2" / "config.json").is_file():
        from transformers import T5TokenizerFast  # type: ignore[attr-defined]

        vocab = len(T5TokenizerFast.from_pretrained(str(root / "tokenizer_2")))
        write_text_encoder(root / "text_encoder_2", d_model, vocab)
        made.append("text_encoder_2")
    if not (root / "vae" / "config.json").is_file():
        write_vae(root / "vae")
        made.append("vae")
    if not (root / "transformer" / "config.json").is_file():
        (root / "transformer").mkdir(parents=True, exist_ok=True)
        (root / "transformer" / "config.json").write_text(json.dumps(tconfig, indent=2), encoding="utf-8")
        made.append("transformer/config.json")
    random_init = bool((config.get("dpipe_tui") or {}).get("random_init", False))
    if not random_init and "transformer_path" in model:
        tpath = _resolve(base, model["transformer_path"])
        if not tpath.is_file():
            write_transformer(tpath, tconfig or TINY_TRANSFORMER)
            made.append(str(tpath))
    datasets = [config["dataset"]] + [e["config"] for e in config.get("eval_datasets") or []]
    for ds_path in datasets:
        ds = tomllib.loads(_resolve(base, ds_path).read_text(encoding="utf-8"))
        res = ds.get("resolutions", [64])[0]
        for directory in ds.get("directory", []):
            folder = _resolve(base, directory["path"])
            if not folder.is_dir() or not any(folder.glob("*.png")):
                n = write_images(folder, side or int(res if isinstance(res, int) else res[0]))
                made.append(f"{folder} ({n} images)")
    return made


def write_full_profile(out: Path, resolution: int) -> Path:
    """A full-size, random-weight Chroma profile for GPU benchmarks (bf16, rank 32)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "dataset.toml").write_text(
        f"resolutions = [{resolution}]\nenable_ar_bucket = false\n\n"
        "[[directory]]\npath = 'images'\nnum_repeats = 4\n"
    )
    (out / "profile.toml").write_text(
        "# GPU benchmark: full-size Chroma architecture, random weights (no download).\n"
        "output_dir = 'output'\ndataset = 'dataset.toml'\nepochs = 1\nmax_steps = 30\n"
        "micro_batch_size_per_gpu = 1\ngradient_accumulation_steps = 1\nsave_every_n_epochs = 1000\n"
        "activation_checkpointing = true\n\n"
        "[model]\ntype = 'chroma'\ndiffusers_path = 'models'\ndtype = 'bfloat16'\n"
        "transformer_dtype = 'bfloat16'  # 'float8' for fp8 storage\n\n"
        "[adapter]\ntype = 'lora'\nrank = 32\ndtype = 'bfloat16'\n\n"
        "[optimizer]\ntype = 'adamw_optimi'\nlr = 2e-5\nbetas = [0.9, 0.99]\nweight_decay = 0.01\n\n"
        "[dpipe_tui]\nengine = 'builtin'\nrandom_init = true\n"
        "description = 'Benchmark: full-size random Chroma'\n"
    )
    return out / "profile.toml"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m dpipe_tui.engine.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--profile", type=Path, help="profile whose model/dataset paths to create")
    parser.add_argument("--preset", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--out", type=Path, help="with --preset full: write profile.toml + assets here")
    parser.add_argument("--resolution", type=int, default=512, help="with --out: training resolution")
    args = parser.parse_args(argv)
    if args.out is not None:
        args.profile = write_full_profile(args.out, args.resolution)
        args.preset = "full"
    if args.profile is None:
        parser.error("--profile or --out is required")
    made = prepare(args.profile, args.preset, side=args.resolution if args.out else None)
    print("demo: created " + ", ".join(made) if made else "demo: everything already present")
    if args.out is not None:
        print(f"demo: profile at {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
