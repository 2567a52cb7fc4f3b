"""GPU monitoring: NVML probe (``probe``), per-run attribution and peak VRAM (``attribution``)."""
