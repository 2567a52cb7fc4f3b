"""Pinned checkpoints: items a prune never removes, recorded in dpipe-tui's home, not in output_dir.

Why not a marker file beside the item: nothing may be created in an engine's output (spec §5.6) and
pins must also cover run folders of runs started outside dpipe-tui. The file holds absolute paths
(one JSON list, replaced atomically), so a pin follows the item wherever it is listed from.
"""

from __future__ import annotations

import json
from pathlib import Path

from dpipe_tui import fsutil

PINS_FILE = "checkpoint-pins.json"


class Pins:
    """The pin list in ``home``."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / PINS_FILE

    def load(self) -> set[Path]:
        """The pinned paths (empty when the file is missing or unreadable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return set()
        items = data.get("pinned", []) if isinstance(data, dict) else []
        return {Path(p) for p in items if isinstance(p, str)}

    def set(self, path: Path, pinned: bool) -> bool:
        """Pin or unpin ``path``; True when that changed anything."""
        target = Path(path).absolute()
        current = self.load()
        if (target in current) == pinned:
            return False
        current = current | {target} if pinned else current - {target}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"pinned": sorted(str(p) for p in current)}, indent=1) + "\n"
        fsutil.atomic_write_text(self.path, text)
        return True
