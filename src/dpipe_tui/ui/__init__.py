"""The Textual TUI (next wave): screens and widgets over dpipe_tui.services."""
