"""``python -m dpipe_tui`` runs the ``dpipe-tui`` command."""

from __future__ import annotations

from dpipe_tui.cli.main import main

if __name__ == "__main__":
    main()
