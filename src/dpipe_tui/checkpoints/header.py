"""What a ``.safetensors`` file holds, from its header alone (spec §6): never the tensors.

Why: a run's output folder holds hundreds of saves; listing them must cost their headers, not their
gigabytes, and must not need torch (the TUI and the supervisor install without it). The format is
an 8-byte little-endian header length, a JSON header (``__metadata__`` plus, per tensor, its dtype,
shape and ``data_offsets`` relative to the data section), then the data section.

A big LoRA's header is ~100 KB of JSON (a thousand tensors); decoding it whole for each of 200 saves
costs more than the listing's budget, so :func:`read_header` counts and measures tensors with byte
scans and decodes only ``__metadata__`` and the first LoRA tensor's entry. :func:`load_header` decodes
everything (export rewrites the header).
"""

from __future__ import annotations

import json
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from pathlib import Path

MAX_HEADER: Final = 100 << 20
"""The safetensors format's own limit on the header (100 MB)."""

_DTYPE = re.compile(rb'"dtype"\s*:\s*"(\w+)"')
_DTYPE_SAMPLE: Final = 16 << 10
_META = re.compile(rb'"__metadata__"\s*:\s*')
# the first down/A matrix of a LoRA (PEFT/ComfyUI/Diffusers "lora_A", Kohya "lora_down"): dim 0 is the rank
_RANK = re.compile(rb'"[^"]*\.(?:lora_A|lora_down)\.weight"\s*:\s*\{[^}]*?"shape"\s*:\s*\[(\d+)')
_LOKR = re.compile(rb'"[^"]*\.lokr_w[12](?:_[ab])?"')
_ALPHA = re.compile(rb'"([^"]*\.alpha)"\s*:\s*(\{[^}]*\})')


class HeaderError(ValueError):
    """The file is not a readable safetensors file; the message says why."""


@dataclass(frozen=True, slots=True)
class HeaderInfo:
    """A safetensors file's header, summed up.

    Attributes:
        tensors: how many tensors.
        dtypes: each dtype with its tensor count among the tensors of the header's first 16 KiB
            (about 120 entries; counting all of a 1,000-tensor header costs the listing's budget),
            most used first.
        rank: the rank of the first LoRA matrix (``lora_A``/``lora_down``), None for a full model.
        alpha_key: a Kohya ``.alpha`` tensor's name (its value needs 2-4 bytes of data), else None.
        lokr: LoKr tensors present (``lokr_w1``/``lokr_w2``).
        metadata: the ``__metadata__`` strings.
        header_bytes: the JSON header's length.
        data_start: where the data section begins (8 + header_bytes).
        size: the file's size in bytes.
    """

    tensors: int
    dtypes: tuple[tuple[str, int], ...]
    rank: int | None
    alpha_key: str | None
    lokr: bool
    metadata: dict[str, str] = field(default_factory=dict)
    header_bytes: int = 0
    data_start: int = 0
    size: int = 0

    @property
    def dtype(self) -> str | None:
        """The dtype most tensors have (None when there are no tensors)."""
        return self.dtypes[0][0] if self.dtypes else None


def _raw_header(path: Path) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise HeaderError(f"{path}: not a safetensors file (shorter than 8 bytes)")
            (n,) = struct.unpack("<Q", head)
            if n <= 1 or n > MAX_HEADER:
                raise HeaderError(f"{path}: not a safetensors file (header length {n})")
            raw = fh.read(n)
            fh.seek(0, 2)
            size = fh.tell()
    except OSError as exc:
        raise HeaderError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    if len(raw) < n or not raw.lstrip().startswith(b"{"):
        raise HeaderError(f"{path}: not a safetensors file (truncated or not JSON)")
    return raw, size


def read_header(path: Path) -> HeaderInfo:
    """Sum up ``path``'s header without decoding all of it.

    Raises:
        HeaderError: the file is missing, unreadable, truncated or not safetensors.
    """
    raw, size = _raw_header(path)
    tensors = raw.count(b'"data_offsets"')
    sample = _DTYPE.findall(raw, 0, _DTYPE_SAMPLE)  # a LoRA's tensors share one dtype or two
    counts = {k.decode("ascii"): n for k, n in Counter(sample).items()}
    metadata: dict[str, str] = {}
    meta = _META.search(raw)
    if meta is not None:
        try:
            value, _ = json.JSONDecoder().raw_decode(raw[meta.end() :].decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise HeaderError(f"{path}: its __metadata__ is not JSON ({exc})") from exc
        if isinstance(value, dict):
            metadata = {str(k): str(v) for k, v in value.items()}
    rank_match = _first(raw, (b'.lora_A.weight"', b'.lora_down.weight"'), _RANK)
    alpha = _first(raw, (b'.alpha"',), _ALPHA)
    return HeaderInfo(
        tensors=tensors,
        dtypes=tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        rank=int(rank_match[1]) if rank_match else None,
        alpha_key=alpha[1].decode("utf-8", "replace") if alpha else None,
        lokr=b".lokr_w" in raw and _LOKR.search(raw) is not None,
        metadata=metadata,
        header_bytes=len(raw),
        data_start=8 + len(raw),
        size=size,
    )


def _first(raw: bytes, needles: tuple[bytes, ...], pattern: re.Pattern[bytes]) -> re.Match[bytes] | None:
    """``pattern`` matched at the tensor name holding the first of ``needles``: a ``[^"]*`` pattern
    searched over a whole 100 KB header tries every quote and costs milliseconds a file."""
    hits = [i for n in needles if (i := raw.find(n)) >= 0]
    if not hits:
        return None
    start = raw.rfind(b'"', 0, min(hits))  # the opening quote of that tensor's name
    return pattern.match(raw, max(start, 0))


def load_header(path: Path) -> tuple[dict[str, Any], int]:
    """The whole JSON header of ``path`` and where its data section starts.

    Raises:
        HeaderError: as :func:`read_header`.
    """
    raw, _ = _raw_header(path)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HeaderError(f"{path}: its header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise HeaderError(f"{path}: its header is not a JSON object")
    return header, 8 + len(raw)


_SCALAR: Final = {"F32": "<f", "F16": "<e", "F64": "<d"}


def read_alpha(path: Path, info: HeaderInfo) -> float | None:
    """The value of the Kohya ``.alpha`` tensor ``info`` names (a scalar: a few bytes read), or None."""
    if info.alpha_key is None:
        return None
    raw, _ = _raw_header(path)
    match = _first(raw, (b'.alpha"',), _ALPHA)
    if match is None:
        return None
    try:
        entry = json.loads(match[2])
        start, end = entry["data_offsets"]
        dtype = entry["dtype"]
        with open(path, "rb") as fh:
            fh.seek(info.data_start + int(start))
            data = fh.read(int(end) - int(start))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if dtype == "BF16" and len(data) == 2:
        return float(struct.unpack("<f", b"\0\0" + data)[0])
    fmt = _SCALAR.get(dtype)
    if fmt is None or len(data) != struct.calcsize(fmt):
        return None
    return float(struct.unpack(fmt, data)[0])
