"""The ``dpipe-tui`` command: thin typer commands over :mod:`dpipe_tui.services`."""
