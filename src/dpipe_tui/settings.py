"""User settings from ``<home>/settings.toml``: engine paths, supervisor defaults, notifications.

Why at the top of the package (beside ``paths``): the per-run monitor (supervisor) needs the stop
timeout and the ``[notify]`` table, and the services read the same file, so the reader sits below both.

Why a file and environment: the diffusion-pipe checkout and its Python environment differ per
machine and must not be repeated on every command; ``$DIFFUSION_PIPE_PATH`` (and
``$DIFFUSION_PIPE_DEEPSPEED``) override the file for one shell. A bad settings file is an error that
names the file and key, never a silent default.

```toml
default_engine = "builtin"        # or "diffusion-pipe"
min_free_gib = 2.0                # refuse to launch below this much free disk in output_dir
stop_below_gib = 1.0              # during a run: save_quit below this (or 1.5x the newest state's size)
stop_timeout_s = 600              # how long `stop` waits for save_quit before signals

[diffusion_pipe]
path = "/workspace/diffusion-pipe"
deepspeed = "/workspace/diffusion-pipe/venv/bin/deepspeed"   # default: <path>/venv/bin/deepspeed or PATH

[notify]                          # sent by the run's monitor, alive when no client is
command = "notify-send dpipe"     # run through the shell, the event as one JSON object on stdin
urls = ["https://ntfy.sh/my-topic"]   # ntfy topics, Slack/Discord webhooks, or any JSON endpoint
on = ["completed", "failed", "stopped", "auto_resumed", "low_disk"]   # default: all
timeout_s = 5                     # per delivery; a dead endpoint never holds the monitor longer
bell = true                       # the TUI rings the terminal bell when a run ends

[retention]                       # every run's monitor prunes after each save (a profile's
keep_last_saves = 5               # [dpipe_tui] keep_last_saves / keep_every / keep_states win)
keep_states = 2

[keymap]                          # the TUI's keys, by binding id (the help screen lists them)
"run.stop" = "ctrl+x"             # one key or several, comma-separated: "s,ctrl+s"
```
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpipe_tui import paths

ENGINES = ("builtin", "diffusion-pipe")
NOTIFY_EVENTS = ("completed", "failed", "stopped", "auto_resumed", "low_disk")
DEEPSPEED_ENV = "DIFFUSION_PIPE_DEEPSPEED"


class SettingsError(ValueError):
    """The settings file is unreadable or has a bad value."""


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Where the monitor sends run events (``[notify]``); nothing is sent when both are empty."""

    command: str | None = None
    """A shell command; the event arrives as one JSON object on its stdin."""
    urls: tuple[str, ...] = ()
    """Webhooks: ntfy topics (plain text), Slack/Discord webhooks, else the event as JSON."""
    on: frozenset[str] = frozenset(NOTIFY_EVENTS)
    """Which events are sent."""
    timeout_s: float = 5.0
    """Per delivery; a hung command is killed, a dead endpoint abandoned."""
    bell: bool = True
    """The TUI rings the terminal bell when a run ends."""

    @property
    def active(self) -> bool:
        """True when there is somewhere to send events."""
        return bool(self.command or self.urls)


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings.

    Attributes:
        default_engine: engine when neither ``--engine`` nor the profile names one.
        diffusion_pipe_path: the user's diffusion-pipe checkout, if configured.
        deepspeed: the ``deepspeed`` executable of that checkout's environment, if configured.
        min_free_gib: launches are refused with less free disk than this where ``output_dir`` lives.
        stop_timeout_s: graceful stop (save_quit) wait before signals.
        stop_below_gib: a run's monitor asks for save_quit when free disk where ``output_dir``
            lives falls under this (or under 1.5x the newest training state's size, if larger).
        retention: ``[retention]`` counts (keep_last_saves, keep_every, keep_states), None = keep.
    """

    default_engine: str = "builtin"
    diffusion_pipe_path: Path | None = None
    deepspeed: str | None = None
    min_free_gib: float = 2.0
    stop_timeout_s: float = 600.0
    stop_below_gib: float = 1.0
    retention: tuple[int | None, int | None, int | None] = (None, None, None)
    notify: NotifySettings = field(default_factory=NotifySettings)
    keymap: tuple[tuple[str, str], ...] = ()
    """``[keymap]``: (binding id, keys) pairs the TUI applies over its default keys."""


def _number(data: dict[str, Any], key: str, default: float, where: Path) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise SettingsError(f"{where}: {key} must be a non-negative number, got {value!r}")
    return float(value)


def load_settings(home: Path) -> Settings:
    """Read ``<home>/settings.toml`` (missing file = defaults) and apply environment overrides.

    Raises:
        SettingsError: unreadable TOML or a bad value; the message names the file and key.
    """
    path = paths.settings_file(home)
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: {exc}") from exc
    engine = data.get("default_engine", "builtin")
    if engine not in ENGINES:
        raise SettingsError(f"{path}: default_engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    dp = data.get("diffusion_pipe", {})
    if not isinstance(dp, dict):
        raise SettingsError(f"{path}: [diffusion_pipe] must be a table")
    checkout = os.environ.get(paths.DIFFUSION_PIPE_ENV) or dp.get("path")
    deepspeed = os.environ.get(DEEPSPEED_ENV) or dp.get("deepspeed")
    for key, value in (("diffusion_pipe.path", checkout), ("diffusion_pipe.deepspeed", deepspeed)):
        if value is not None and not isinstance(value, str):
            raise SettingsError(f"{path}: {key} must be a string")
    return Settings(
        default_engine=engine,
        diffusion_pipe_path=Path(checkout).expanduser() if checkout else None,
        deepspeed=str(Path(deepspeed).expanduser()) if deepspeed else None,
        min_free_gib=_number(data, "min_free_gib", 2.0, path),
        stop_timeout_s=_number(data, "stop_timeout_s", 600.0, path),
        stop_below_gib=_number(data, "stop_below_gib", 1.0, path),
        retention=_retention(data.get("retention", {}), path),
        notify=_notify(data.get("notify", {}), path),
        keymap=_keymap(data.get("keymap", {}), path),
    )


_RETENTION_KEYS = ("keep_last_saves", "keep_every", "keep_states")


def _retention(table: Any, where: Path) -> tuple[int | None, int | None, int | None]:
    if not isinstance(table, dict):
        raise SettingsError(f"{where}: [retention] must be a table ({', '.join(_RETENTION_KEYS)})")
    unknown = sorted(set(table) - set(_RETENTION_KEYS))
    if unknown:
        raise SettingsError(
            f"{where}: [retention] has no key {', '.join(unknown)} ({', '.join(_RETENTION_KEYS)})"
        )
    out: list[int | None] = []
    for key, least in (("keep_last_saves", 0), ("keep_every", 1), ("keep_states", 0)):
        value = table.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise SettingsError(
                f"{where}: [retention] {key} must be a whole number >= {least}, got {value!r}"
            )
        out.append(value)
    return out[0], out[1], out[2]


def _keymap(table: Any, where: Path) -> tuple[tuple[str, str], ...]:
    if not isinstance(table, dict):
        raise SettingsError(
            f'{where}: [keymap] must be a table of binding ids to keys, e.g. "run.stop" = "ctrl+x"'
        )
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip() or " " in value.strip():
            raise SettingsError(
                f'{where}: keymap.{key} must be key names separated by commas, e.g. "ctrl+x", got {value!r}'
            )
    return tuple((str(k), str(v).strip()) for k, v in table.items())


def _notify(table: Any, where: Path) -> NotifySettings:
    if not isinstance(table, dict):
        raise SettingsError(f"{where}: [notify] must be a table")
    unknown = sorted(set(table) - {"command", "urls", "on", "timeout_s", "bell"})
    if unknown:
        raise SettingsError(
            f"{where}: notify.{unknown[0]} is not a setting (command, urls, on, timeout_s, bell)"
        )
    command = table.get("command")
    if command is not None and (not isinstance(command, str) or not command.strip()):
        raise SettingsError(f"{where}: notify.command must be a non-empty string")
    urls = table.get("urls", [])
    if not isinstance(urls, list) or not all(
        isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls
    ):
        raise SettingsError(f"{where}: notify.urls must be a list of http(s) URLs")
    on = table.get("on", list(NOTIFY_EVENTS))
    if not isinstance(on, list) or not all(e in NOTIFY_EVENTS for e in on):
        raise SettingsError(f"{where}: notify.on must list events among {', '.join(NOTIFY_EVENTS)}")
    bell = table.get("bell", True)
    if not isinstance(bell, bool):
        raise SettingsError(f"{where}: notify.bell must be true or false")
    timeout = _number(table, "timeout_s", 5.0, where)
    return NotifySettings(command, tuple(urls), frozenset(on), timeout or 5.0, bell)
