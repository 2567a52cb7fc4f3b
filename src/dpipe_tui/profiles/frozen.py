"""Reading a run's frozen profile back: the small TOML read progress plans and failure hints need.

Why here, in profiles: the frozen copy is a profile; the monitor (failure hints), the services
(progress plans) and the TUI all read it the same way, and a missing or broken copy is None, never an
exception, because it only ever refines what is shown.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def frozen_config(config_path: str | Path | None) -> dict[str, Any] | None:
    """The frozen main TOML as a mapping; None when absent or unreadable."""
    if not config_path:
        return None
    try:
        return tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log.info("cannot read the frozen profile %s: %s", config_path, exc)
        return None
