"""The caching phase and the per-step micro-batches.

Why here and not in the trainer: caching is its own phase with its own console lines (spec
§4.2), and it must run on rank 0 only, loading the VAE and T5 *only* when some store is stale
(so a warm cache costs no model load at all). Afterwards every rank reads the stores into
memory and assembles micro-batches; the noise of each micro-batch comes from a generator seeded
by (seed, epoch, batch, dp rank, micro-batch), which is what makes resume exact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dpipe_tui.engine import cache, chroma
from dpipe_tui.engine.data import TAR_SEPARATOR, Bucket, DirectoryScan, Sample, open_image, seed_from_hash


def _model_identity(root: Path, sub: str) -> list[Any]:
    folder = root / sub
    if not folder.is_dir():
        return [str(folder)]
    return [cache.file_identity(p) for p in sorted(folder.iterdir()) if p.is_file()]


def _load_pixels(path: str, bucket: Bucket) -> torch.Tensor:
    from PIL import Image, ImageOps

    with open_image(path) as img:
        if img.mode == "RGBA" or "transparency" in img.info:
            rgba = img.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255))
            canvas.alpha_composite(rgba)
            rgb = canvas.convert("RGB")
        else:
            rgb = img.convert("RGB")
        fitted = ImageOps.fit(rgb, (bucket[1], bucket[2]))
    data = torch.frombuffer(bytearray(fitted.tobytes()), dtype=torch.uint8)
    return data.view(bucket[2], bucket[1], 3).permute(2, 0, 1).float() / 255.0


@dataclass
class Models:
    """VAE / T5 loaded on first need."""

    diffusers_path: str
    dtype: torch.dtype
    device: torch.device
    vae: Any = None
    encoder: Any = None
    tokenizer: Any = None

    def get_vae(self) -> Any:
        if self.vae is None:
            self.vae = chroma.load_vae(self.diffusers_path, self.dtype).to(self.device)
        return self.vae

    def get_text(self) -> tuple[Any, Any]:
        if self.encoder is None:
            self.encoder, self.tokenizer = chroma.load_text_encoder(self.diffusers_path, self.dtype)
            self.encoder.to(self.device)
        return self.encoder, self.tokenizer


def _progress(total: int) -> Any:
    from tqdm import tqdm  # type: ignore[import-untyped]

    return tqdm(total=total, file=sys.stderr)


def cache_directory(scan: DirectoryScan, models: Models, config: dict[str, Any], flags: Any) -> None:
    """Cache one directory's latents (per size bucket) and text embeddings (rank 0)."""
    bs = int(config.get("caching_batch_size", 1))
    root = Path(config["model"]["diffusers_path"])
    vae_id = _model_identity(root, "vae")
    print(f"caching latents: {scan.path}", flush=True)
    by_ar: dict[float, list[Bucket]] = {}
    for bucket in sorted(scan.samples_by_bucket):
        by_ar.setdefault(bucket[0], []).append(bucket)
    for ar, buckets in by_ar.items():
        print(f"caching latents: ({ar}, 1)", flush=True)
        for bucket in buckets:
            print(f"caching latents: {bucket}", flush=True)
            images = sorted({s.image for s in scan.samples_by_bucket[bucket]})
            fp = cache.fingerprint({"files": [_identity(i) for i in images], "bucket": bucket, "vae": vae_id})
            store = cache.Store(
                cache.latents_dir(scan.path, bucket),
                fp,
                regenerate=flags.regenerate_cache,
                trust=flags.trust_cache,
            )
            todo = store.missing(images)
            if todo:
                vae = models.get_vae()
                with _progress((len(todo) + bs - 1) // bs) as bar:
                    for i in range(0, len(todo), bs):
                        chunk = todo[i : i + bs]
                        pixels = torch.stack([_load_pixels(p, bucket) for p in chunk])
                        gen = torch.Generator().manual_seed(seed_from_hash(chunk[0]))
                        for key, lat in zip(chunk, chroma.encode_images(vae, pixels, gen), strict=True):
                            store.add(key, lat.clone())
                        bar.update(1)
                store.save()
    print(f"caching text embeddings: {scan.path}", flush=True)
    captions = sorted({s.caption for lst in scan.samples_by_bucket.values() for s in lst})
    if config.get("uncond_fraction", 0.0) > 0 and "" not in captions:
        captions.insert(0, "")  # the empty caption uncond_fraction trains with
    te_id = _model_identity(root, "text_encoder_2") + _model_identity(root, "tokenizer_2")
    fp = cache.fingerprint({"captions": captions, "te": te_id, "max_len": chroma.MAX_SEQUENCE_LENGTH})
    store = cache.Store(
        cache.text_dir(scan.path), fp, regenerate=flags.regenerate_cache, trust=flags.trust_cache
    )
    todo = store.missing([_caption_key(c) for c in captions])
    if todo:
        encoder, tokenizer = models.get_text()
        pending = [c for c in captions if _caption_key(c) in set(todo)]
        with _progress((len(pending) + bs - 1) // bs) as bar:
            for i in range(0, len(pending), bs):
                chunk = pending[i : i + bs]
                for caption, emb in zip(
                    chunk, chroma.encode_captions(encoder, tokenizer, chunk), strict=True
                ):
                    store.add(_caption_key(caption), emb)
                bar.update(1)
        store.save()


def _identity(image: str) -> list[Any]:
    """What makes an image's cached latents stale (a ``.tar`` member: its archive, and its name)."""
    if TAR_SEPARATOR in image:
        archive, member = image.split(TAR_SEPARATOR, 1)
        return [*cache.file_identity(archive), member]
    return cache.file_identity(image)


def load_mask(path: str, bucket: Bucket, latent_hw: tuple[int, int]) -> torch.Tensor:
    """A loss mask at latent size: the first channel of the mask image fitted to the bucket (as
    diffusion-pipe caches it, float16), then nearest-exact to the latent grid (as its Chroma does)."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        fitted = ImageOps.fit(img.convert("RGB"), (bucket[1], bucket[2]))
    data = torch.frombuffer(bytearray(fitted.tobytes()), dtype=torch.uint8).view(bucket[2], bucket[1], 3)
    mask = (data[..., 0].float() / 255.0).to(torch.float16)
    resized = torch.nn.functional.interpolate(mask[None, None].float(), size=latent_hw, mode="nearest-exact")
    return resized[0, 0].to(torch.float16)


def _caption_key(caption: str) -> str:
    return hashlib.sha256(caption.encode()).hexdigest()[:24]


@dataclass
class Source:
    """Cached latents and embeddings of every dataset, in memory on each rank."""

    latents: dict[tuple[Bucket, str], torch.Tensor] = field(default_factory=dict)
    text: dict[str, torch.Tensor] = field(default_factory=dict)
    masks: dict[tuple[Bucket, str], torch.Tensor] = field(default_factory=dict)

    def add_scan(self, scan: DirectoryScan) -> None:
        for bucket, samples in scan.samples_by_bucket.items():
            for key, lat in cache.load_items(cache.latents_dir(scan.path, bucket)).items():
                self.latents[(bucket, key)] = lat
            for s in samples:
                if s.mask is not None and (bucket, s.image) not in self.masks:
                    *_, h, w = self.latents[(bucket, s.image)].shape
                    self.masks[(bucket, s.image)] = load_mask(s.mask, bucket, (h, w))
        self.text.update(cache.load_items(cache.text_dir(scan.path)))

    def collate(
        self, samples: list[Sample]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(latents, text padded to the micro-batch's longest caption, attended text lengths, loss
        masks: None when no item has one, else ones for the items without, as diffusion-pipe).

        Masked text positions change nothing for the other tokens, so padding only to the
        longest caption (not to 512 tokens) gives the same result, and no mask at all (fast
        attention kernels) when the captions are equally long.
        """
        lat = torch.stack([self.latents[(s.bucket, s.image)] for s in samples])
        embeds = [self.text[_caption_key(s.caption)] for s in samples]
        text = torch.zeros(len(samples), max(e.shape[0] for e in embeds), embeds[0].shape[1])
        for i, e in enumerate(embeds):
            text[i, : e.shape[0]] = e
        found = [self.masks.get((s.bucket, s.image)) for s in samples]
        masks = None
        if any(m is not None for m in found):
            ones = torch.ones(lat.shape[-2:], dtype=torch.float16)
            masks = torch.stack([ones if m is None else m for m in found])
        return lat, text, torch.tensor([e.shape[0] for e in embeds]), masks


def step_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (seed, epoch, batch, rank, ...)."""
    digest = hashlib.sha256(",".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def micro_batches(
    source: Source,
    samples: list[Sample],
    gas: int,
    model_cfg: dict[str, Any],
    seed_parts: tuple[int, ...],
    quantile: float | None = None,
    uncond_fraction: float = 0.0,
) -> list[tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]]:
    """Split one rank's samples of a step into ``gas`` (features, labels) micro-batches.

    With ``uncond_fraction`` each sample's caption is the empty one with that probability, as
    diffusion-pipe draws it per item (train and eval); the draw is seeded like the noise.
    """
    size = len(samples) // gas
    out = []
    for m in range(gas):
        part = samples[m * size : (m + 1) * size]
        if uncond_fraction > 0:
            rng = random.Random(step_seed(*seed_parts, m, -1))
            part = [dataclasses.replace(s, caption="") if rng.random() < uncond_fraction else s for s in part]
        lat, text, lengths, masks = source.collate(part)
        gen = torch.Generator().manual_seed(step_seed(*seed_parts, m))
        out.append(chroma.make_inputs(lat, text, lengths, model_cfg, gen, quantile, masks))
    return out
