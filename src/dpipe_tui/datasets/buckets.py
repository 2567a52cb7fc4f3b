"""diffusion-pipe's bucketing rules, restated in pure Python (spec §3.3, utils/dataset.py).

Why exact: the only way to know steps per epoch before a run (diffusion-pipe never prints it) is to
redo its arithmetic, including its quirks: ARs and resolutions are rounded to 3 decimals and
de-duplicated, sizes use Python's half-to-even ``round``, the nearest AR is found in log space with the
first minimum winning, and in size-bucket mode the bucket list (sorted by frames, longest first) is
indexed with positions in the *separately sorted* AR list. numpy is not a core dependency, so
``geomspace`` and ``round(np.float64, 3)`` are reproduced with the same float operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ROUND_DIGITS = 3


@dataclass(frozen=True, order=True)
class BucketKey:
    """A final size bucket. ``ar`` is None in size-bucket mode (diffusion-pipe keys those by w, h, frames)."""

    width: int
    height: int
    frames: int
    ar: float | None = None

    @property
    def side(self) -> float:
        """sqrt(w*h), the size diffusion-pipe compares with micro-batch list entries."""
        return math.sqrt(self.width * self.height)

    def label(self) -> str:
        """diffusion-pipe's cache-folder style name, e.g. ``1.000x512x512x1``."""
        core = f"{self.width}x{self.height}x{self.frames}"
        return core if self.ar is None else f"{self.ar:.{ROUND_DIGITS}f}x{core}"


def _np_round(x: float, digits: int = ROUND_DIGITS) -> float:
    """``round(np.float64(x), digits)``: scale, round half to even, unscale (numpy's algorithm)."""
    scale = 10.0**digits
    return round(x * scale) / scale


def dedup_and_sort(values: list[float], *, numpy_values: bool = False) -> list[float]:
    """Round to 3 decimals, de-duplicate and sort (diffusion-pipe's ``dedup_and_sort``).

    Args:
        values: the raw values.
        numpy_values: the values were numpy floats in diffusion-pipe (geomspace output), which round
            with numpy's algorithm rather than Python's correctly rounded one.
    """
    rounded = {_np_round(v) if numpy_values else round(v, ROUND_DIGITS) for v in values}
    return sorted(rounded)


def geomspace(start: float, stop: float, num: int) -> list[float]:
    """``np.geomspace(start, stop, num)`` for positive endpoints."""
    if num <= 0:
        return []
    lo, hi = math.log10(start), math.log10(stop)
    if num == 1:
        return [start]
    step = (hi - lo) / (num - 1)
    out = [10.0 ** (i * step + lo) for i in range(num)]
    out[0], out[-1] = start, stop
    return out


def round_to_multiple(x: float, multiple: int) -> int:
    """diffusion-pipe's ``round_to_nearest_multiple`` (half to even, like Python's round)."""
    return int(round(x / multiple) * multiple)


def nearest_index(log_ar: float, log_ars: list[float]) -> int:
    """Index of the closest AR in log space; the first of equal distances wins (np.argmin)."""
    best, best_d = 0, math.inf
    for i, v in enumerate(log_ars):
        d = abs(log_ar - v)
        if d < best_d:
            best, best_d = i, d
    return best


def frame_bucket(frames: int, frame_buckets: list[int]) -> int | None:
    """The longest frame bucket not longer than ``frames``; None when the clip fits none.

    A video (``frames > 1``) is never put into the image bucket 1.
    """
    fitting = [b for b in frame_buckets if b <= frames]
    if not fitting:
        return None
    chosen = max(fitting)
    if frames > 1 and chosen == 1:
        return None
    return chosen


def size_for(resolution: float, ar: float, multiple: int) -> tuple[int, int]:
    """Bucket (w, h) for a target side length and an AR: w = sqrt(r²·ar), h = r²/w, each rounded."""
    area = resolution**2
    w = math.sqrt(area * ar)
    h = area / w
    return round_to_multiple(w, multiple), round_to_multiple(h, multiple)


@dataclass(frozen=True)
class SizeBucketIndex:
    """Size-bucket mode lookup, reproducing diffusion-pipe's index pairing (see module docstring)."""

    buckets: tuple[tuple[int, int, int], ...]
    """The size buckets sorted by frames, longest first (stable)."""
    log_ars: tuple[float, ...]
    """log of the sorted unique rounded ARs of those buckets."""

    @classmethod
    def build(cls, size_buckets: list[tuple[int, int, int]]) -> SizeBucketIndex:
        """Prepare the lookup from the config's ``size_buckets``."""
        ordered = sorted(size_buckets, key=lambda t: t[-1], reverse=True)
        ars = dedup_and_sort([w / h for w, h, _ in ordered], numpy_values=True)
        return cls(tuple(ordered), tuple(math.log(a) for a in ars))

    def find(self, log_ar: float, frames: int) -> tuple[int, int, int] | None:
        """The bucket diffusion-pipe picks for an item, or None ("too short")."""
        order = sorted(range(len(self.log_ars)), key=lambda i: abs(log_ar - self.log_ars[i]))
        is_video = frames > 1
        for i in order:
            if i >= len(self.buckets):
                continue  # pragma: no cover - more ARs than buckets cannot happen after dedup
            bucket = self.buckets[i]
            if is_video and bucket[-1] == 1:
                continue
            if frames >= bucket[-1]:
                return bucket
        return None

    def nearest_ar_bucket(self, log_ar: float, frames: int) -> tuple[int, int, int] | None:
        """The bucket a correct nearest-AR lookup would pick (to flag the index-pairing quirk)."""
        candidates = [b for b in self.buckets if frames >= b[-1] and not (frames > 1 and b[-1] == 1)]
        if not candidates:
            return None
        return min(candidates, key=lambda b: abs(log_ar - math.log(b[0] / b[1])))
