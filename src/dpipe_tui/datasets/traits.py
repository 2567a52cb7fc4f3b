"""What a model type changes about bucketing: frame rate, pixel multiples and frame alignment.

Why a table here and not an import: diffusion-pipe's model classes pull in torch and ComfyUI. The few
attributes the dataset code reads from them (``framerate``, ``pixels_round_to_multiple``, and the
preprocessing step's own rounding) are restated from its models/ folder (spec §2.3, §3.3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class ModelTraits:
    """Bucketing-relevant attributes of one diffusion-pipe model."""

    model_type: str | None
    framerate: float | None
    """Frames per second videos are converted to; None = the model takes no video (videos are skipped)."""
    pixel_multiple: int = 16
    """``pixels_round_to_multiple``: bucket widths/heights are rounded to this."""
    preprocess_multiple: int = 16
    """The preprocessing step rounds the bucket size again to this before resizing."""
    frame_multiple: int = 4
    """Clip frames are aligned to ``k*frame_multiple + 1`` (MiniMax: multiples of 17, min 1)."""
    known: bool = True
    """False when the model type is unknown or unset (video handling is then a guess)."""

    def aligned_frames(self, frames: int) -> int:
        """The clip length the preprocessing step actually cuts for a bucket of ``frames`` frames."""
        if frames <= 1:
            return frames
        if self.model_type == "minimax_h3":
            return max((frames // 17) * 17, 1)
        return ((frames - 1) // self.frame_multiple) * self.frame_multiple + 1


_VIDEO_FPS: dict[str, float] = {
    "ltx-video": 25,
    "hunyuan-video": 24,
    "cosmos": 24,
    "wan": 16,
    "cosmos_predict2": 16,
    "anima": 16,
    "hunyuan_video_15": 24,
    "ltx2": 24,
    "minimax_h3": 24,
}
_IMAGE_ONLY = frozenset(
    {
        "sdxl",
        "flux",
        "lumina_2",
        "chroma",
        "hidream",
        "sd3",
        "omnigen2",
        "qwen_image",
        "hunyuan_image",
        "auraflow",
        "z_image",
        "flux2",
        "ernie_image",
        "ideogram4",
        "krea2",
    }
)
MODEL_TYPES = frozenset(_VIDEO_FPS) | _IMAGE_ONLY
"""Every model ``type`` diffusion-pipe accepts."""


def model_traits(model_type: str | None, model_config: Mapping[str, object] | None = None) -> ModelTraits:
    """Traits of a model type, refined by its ``[model]`` table where the model autodetects a variant.

    Wan reads its variant from the checkpoint: SkyReels (folder name) trains at 24 fps, and Wan2.2-5B
    (``config.json`` model_type ``ti2v``) at 24 fps with a pixel multiple of 32. When ``ckpt_path`` is
    readable we look; otherwise Wan 2.1/2.2-14B values (16 fps, 16 px) are assumed.

    Args:
        model_type: ``[model].type``, or None when unknown.
        model_config: the ``[model]`` table, for variant detection.
    """
    if model_type is None or model_type not in MODEL_TYPES:
        return ModelTraits(model_type, None, known=False)
    if model_type in _IMAGE_ONLY:
        return ModelTraits(model_type, None, pixel_multiple=32 if model_type == "hunyuan_image" else 16)
    fps = _VIDEO_FPS[model_type]
    if model_type == "ltx-video":
        return ModelTraits(model_type, fps, pixel_multiple=32)
    if model_type == "ltx2":
        return ModelTraits(model_type, fps, preprocess_multiple=32, frame_multiple=8)
    if model_type == "minimax_h3":
        return ModelTraits(model_type, fps, preprocess_multiple=32, frame_multiple=17)
    if model_type == "wan" and model_config is not None:
        return _wan_traits(model_config)
    return ModelTraits(model_type, fps)


def _wan_traits(model_config: Mapping[str, object]) -> ModelTraits:
    ckpt = model_config.get("ckpt_path")
    if not isinstance(ckpt, str):
        return ModelTraits("wan", 16)
    ckpt_dir = Path(ckpt)
    try:
        config = json.loads((ckpt_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    if isinstance(config, dict) and config.get("model_type") == "ti2v":
        return ModelTraits("wan", 24, pixel_multiple=32)
    if "skyreels" in ckpt_dir.name.lower():
        return ModelTraits("wan", 24)
    return ModelTraits("wan", 16)
