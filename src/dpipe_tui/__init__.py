"""dpipe-tui: a terminal cockpit for diffusion-pipe LoRA training."""

from __future__ import annotations

__version__ = "0.1.0"
