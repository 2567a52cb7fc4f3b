"""Use cases shared by the CLI and the TUI (validate, launch, stop, resume, list, follow).

One implementation per use case, so the two front ends never disagree. Services return typed results
and never print; front ends render them.
"""
