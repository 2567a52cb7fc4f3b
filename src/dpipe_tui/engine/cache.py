"""Latent and text-embedding caches in ``<dataset dir>/cache/chroma/`` (spec §3.4, simplified).

Why this shape: diffusion-pipe caches VAE latents and T5 embeddings once per dataset folder and
reuses them while a fingerprint of the inputs is unchanged; the console lines it prints
(``caching latents: ...``, ``[CACHE] ...`` and a tqdm bar) are what the supervisor parses for the
caching phase. We keep the same folder names, the same lines and the same fingerprint semantics
(file list + sizes/mtimes + model/resolution settings), with a simpler store: one
``shard_0.pt`` (a dict key -> tensors) plus ``metadata.json`` holding the fingerprint.
A store only ever grows; a changed fingerprint deletes it, ``--regenerate_cache`` clears it.
``--trust_cache`` skips the fingerprint check (diffusion-pipe: "blindly load"): items whose key
is present are used as they are, missing keys (e.g. a new caption) are still added, and the
stored fingerprint is left as it was, so trusting a store never marks it up to date.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import TYPE_CHECKING, Any

import torch

from dpipe_tui.fsutil import atomic_write_text

if TYPE_CHECKING:
    from pathlib import Path

CACHE_NAME = "chroma"


def file_identity(path: str | Path) -> list[Any]:
    """(name, size, mtime_ns) of a file: what makes a cached item stale."""
    st = os.stat(path)
    return [str(path), st.st_size, st.st_mtime_ns]


def fingerprint(payload: Any) -> str:
    """Short stable hash of a JSON-able payload."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Store:
    """One cache folder: ``metadata.json`` (fingerprint, keys) and ``shard_0.pt``."""

    def __init__(self, path: Path, fp: str, *, regenerate: bool = False, trust: bool = False) -> None:
        self.path = path
        self.fingerprint = fp
        self.items: dict[str, Any] = {}
        self.dirty = False
        print("[CACHE] Initializing", flush=True)
        meta_file = path / "metadata.json"
        if regenerate and path.exists():
            shutil.rmtree(path)
        existing = None
        if meta_file.is_file():
            existing = json.loads(meta_file.read_text(encoding="utf-8")).get("fingerprint")
        if existing is not None:
            print(f"[CACHE] Existing cache has fingerprint {existing}", flush=True)
            if existing != fp and not trust:
                print("[CACHE] Fingerprint changed, deleting existing cache files", flush=True)
                shutil.rmtree(path)
                existing = None
            elif existing != fp:
                # --trust_cache: use the items unchecked; whatever is added keeps the old
                # fingerprint, so a later launch without the flag still sees the change.
                self.fingerprint = existing
        if existing is None:
            print(f"[CACHE] Storing new fingerprint: {fp}", flush=True)
        elif (path / "shard_0.pt").is_file():
            self.items = torch.load(path / "shard_0.pt", map_location="cpu", weights_only=True)
        print(f"[CACHE] Existing cache length: {len(self.items)}", flush=True)

    def missing(self, keys: list[str]) -> list[str]:
        """The keys not cached yet (caching is incremental)."""
        return [k for k in keys if k not in self.items]

    def add(self, key: str, value: Any) -> None:
        """Add one item (written by :meth:`save`)."""
        if not self.dirty:
            print("[CACHE] Creating new shard: shard_0", flush=True)
        self.items[key] = value
        self.dirty = True

    def save(self) -> None:
        """Write the shard then the metadata (the metadata last, so a crash leaves no lie)."""
        if not self.dirty:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / "shard_0.pt.tmp"
        torch.save(self.items, tmp)
        os.replace(tmp, self.path / "shard_0.pt")
        meta = {"fingerprint": self.fingerprint, "length": len(self.items)}
        atomic_write_text(self.path / "metadata.json", json.dumps(meta))
        self.dirty = False


def load_items(path: Path) -> dict[str, Any]:
    """Read a finished store's items (every rank, after rank 0 cached)."""
    shard = path / "shard_0.pt"
    return torch.load(shard, map_location="cpu", weights_only=True) if shard.is_file() else {}


def bucket_suffix(bucket: tuple[float, int, int, int]) -> str:
    """diffusion-pipe's folder suffix ``<ar:.3f>x<w>x<h>x<frames>``."""
    return f"{bucket[0]:.3f}x{bucket[1]}x{bucket[2]}x{bucket[3]}"


def latents_dir(dataset_dir: Path, bucket: tuple[float, int, int, int]) -> Path:
    """Where a directory's latents of one size bucket live."""
    return dataset_dir / "cache" / CACHE_NAME / f"cache_{bucket_suffix(bucket)}" / "latents"


def text_dir(dataset_dir: Path) -> Path:
    """Where a directory's T5 embeddings live."""
    return dataset_dir / "cache" / CACHE_NAME / "text_embeddings_1"
