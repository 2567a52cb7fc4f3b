"""The one typed refusal every use case raises: a code, a message, and a remedy.

Why typed: the CLI and the TUI say "no" to the same things (GPUs busy, run still live, profile has
errors) but offer different ways out. A refusal's message says what is wrong in plain words with no
front-end vocabulary in it; its :class:`Remedy` names the way out as data, which the CLI turns into
its flags ("add --queue to wait") and the TUI into an action (a "Queue it" button). Front ends switch on
:class:`RefusalCode`, never on message text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dpipe_tui.profiles import Finding


class RefusalCode(StrEnum):
    """Why a use case refused (stable names: scripts and front ends switch on them)."""

    NOT_FOUND = "not_found"
    """No run, profile or file matches."""
    AMBIGUOUS = "ambiguous"
    """A run id prefix matches several runs."""
    UNREADABLE = "unreadable"
    """A file (profile, settings, run record) cannot be read or parsed."""
    PROFILE_INVALID = "profile_invalid"
    """The profile has errors (see the refusal's findings)."""
    NOT_MAIN = "not_main"
    """A dataset config was given where a main profile is needed."""
    ENGINE = "engine"
    """The chosen engine cannot run here (unknown, no diffusion-pipe checkout)."""
    SETTINGS = "settings"
    """The settings file is bad."""
    GPUS_MISSING = "gpus_missing"
    """The requested GPUs (or CPU slots) do not exist on this machine."""
    GPUS_BUSY = "gpus_busy"
    """The requested GPUs are held by live runs."""
    DISK_LOW = "disk_low"
    """Too little free disk where ``output_dir`` lives."""
    PREPARE_FAILED = "prepare_failed"
    """The profile's preparation step (the demo assets) failed."""
    WRONG_STATE = "wrong_state"
    """The run's state does not allow this (stop an ended run, resume a live one, rm a live one)."""
    NOT_READY = "not_ready"
    """The run cannot take this yet (no run folder while loading); try again later."""
    NO_CHECKPOINT = "no_checkpoint"
    """Nothing to resume from."""
    RESUME_CHANGED = "resume_changed"
    """The profile changed in a way that breaks loading the checkpoint."""
    IO = "io"
    """A file operation failed (permissions, disk)."""


class RemedyAction(StrEnum):
    """A way out of a refusal; each front end renders it in its own vocabulary."""

    QUEUE = "queue"
    """Launch anyway, waiting in the queue for the GPUs (CLI ``--queue``)."""
    FORCE = "force"
    """Do it despite the warning (CLI ``--force``)."""
    STOP_FIRST = "stop_first"
    """Stop the run first (CLI ``dpipe-tui stop RUN``)."""
    FIX_PROFILE = "fix_profile"
    """Fix the findings (CLI ``dpipe-tui validate``; TUI: open the editor)."""
    FIX_SETTINGS = "fix_settings"
    """Edit the settings file named in the message."""
    RETRY_LATER = "retry_later"
    """Try again in a moment."""
    PICK_CHECKPOINT = "pick_checkpoint"
    """Resume from another checkpoint (CLI ``--from``)."""


@dataclass(frozen=True, slots=True)
class Remedy:
    """What the user can do about a refusal."""

    action: RemedyAction
    run_id: str | None = None
    """The run the action applies to (e.g. the run to stop first)."""


@dataclass(slots=True)
class RefusalInfo:
    """The data of a refusal (kept apart from the exception so it can travel in results and messages)."""

    code: RefusalCode
    message: str
    remedy: Remedy | None = None
    findings: list[Finding] = field(default_factory=list)
    """Findings of the validation behind the refusal (every one: errors, warnings, hints)."""
    warnings: list[str] = field(default_factory=list)
    """What pre-flight noticed before it refused (e.g. no NVIDIA GPU)."""


class Refusal(RuntimeError):
    """A use case refused; :attr:`info` says why (code, message) and what to do (remedy)."""

    def __init__(
        self,
        code: RefusalCode,
        message: str,
        *,
        remedy: Remedy | None = None,
        findings: list[Finding] | None = None,
    ) -> None:
        """Create a refusal; ``message`` is plain words with no front-end vocabulary (no CLI flags)."""
        super().__init__(message)
        self.info = RefusalInfo(code, message, remedy, list(findings or ()))

    @property
    def code(self) -> RefusalCode:
        """Why."""
        return self.info.code

    @property
    def message(self) -> str:
        """What is wrong, in plain words."""
        return self.info.message

    @property
    def remedy(self) -> Remedy | None:
        """The way out, if there is one."""
        return self.info.remedy

    @property
    def findings(self) -> list[Finding]:
        """Validation findings behind a ``PROFILE_INVALID`` refusal."""
        return self.info.findings
