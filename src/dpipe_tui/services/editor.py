"""An open profile in the editor: its text on disk, edits to a buffer, saving, external changes.

Why a session object: the editor holds a buffer (the text being edited) that is the one truth both of
its views show; the form changes it one key at a time through tomlkit, so every untouched line keeps
its bytes. The session remembers what was on disk when the file was opened or last saved, so a save
over someone else's change is refused (the front end offers reload or keep-mine with a diff), and a
file that is not valid TOML is never rewritten from the form.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dpipe_tui.fsutil import atomic_write_text
from dpipe_tui.profiles import form as form_schema
from dpipe_tui.profiles.document import ProfileDocument
from dpipe_tui.profiles.snapshot import read_profile_text
from dpipe_tui.profiles.validate import detect_kind, parse_toml
from dpipe_tui.services.errors import Refusal, RefusalCode

if TYPE_CHECKING:
    from dpipe_tui.profiles.findings import Finding
    from dpipe_tui.services.wakeup import Wakeup

FieldSpec = form_schema.FieldSpec
SectionSpec = form_schema.SectionSpec
FormValueError = form_schema.FormValueError
UNSET = form_schema.UNSET
value_text = form_schema.value_text
parse_value = form_schema.parse_value


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Parsed:
    """A buffer parsed: its table and kind, or the located syntax error."""

    data: dict[str, Any] | None
    kind: Literal["main", "dataset"]
    error: Finding | None

    @property
    def ok(self) -> bool:
        """The buffer is valid TOML (the form can show and edit it)."""
        return self.data is not None


class EditSession:
    """One profile file opened for editing. Create with :meth:`open`."""

    def __init__(self, path: Path, disk_text: str, *, read_only: bool = False) -> None:
        self.path = path
        self.disk_text = disk_text
        """What was on disk when the file was opened, reloaded or last saved."""
        self.read_only = read_only

    @classmethod
    def open(cls, path: Path, *, read_only: bool = False) -> EditSession:
        """Open ``path`` (a new, missing file opens empty).

        Raises:
            Refusal: ``UNREADABLE`` for a directory, FIFO, binary or huge file (it says which).
        """
        path = Path(path).expanduser().absolute()
        try:
            text = read_profile_text(path)
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise Refusal(RefusalCode.UNREADABLE, f"{path}: cannot edit it: {reason}") from exc
        return cls(path, text, read_only=read_only)

    # -- reading ---------------------------------------------------------------------------------

    def parse(self, text: str) -> Parsed:
        """Parse a buffer (the kind is detected; an unparseable buffer counts as main)."""
        data, error = parse_toml(text, self.path)
        if data is None:
            return Parsed(None, "dataset" if self.path.name.endswith("dataset.toml") else "main", error)
        return Parsed(data, detect_kind(data), None)

    def sections(self, parsed: Parsed) -> list[SectionSpec]:
        """The form of a parsed buffer (empty when it is not valid TOML)."""
        if parsed.data is None:
            return []
        if parsed.kind == "dataset":
            return form_schema.dataset_sections(parsed.data)
        return form_schema.main_sections(parsed.data)

    @staticmethod
    def value(parsed: Parsed, key: tuple[str | int, ...]) -> Any:
        """The value at ``key`` of a parsed buffer (None when absent)."""
        node: Any = parsed.data
        for part in key:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def keys_not_applying(self, parsed: Parsed, model_type: str) -> list[str]:
        """``[model]`` keys that a model of ``model_type`` would not read (shown before removing any)."""
        return form_schema.keys_not_applying(parsed.data or {}, model_type)

    def is_modified(self, text: str) -> bool:
        """The buffer differs from the file as last read or saved."""
        return text != self.disk_text

    def changed_on_disk(self) -> str | None:
        """The file's text when it changed on disk since it was read or saved (None: unchanged or gone)."""
        try:
            now = read_profile_text(self.path)
        except (OSError, UnicodeDecodeError):
            return None
        return now if _digest(now) != _digest(self.disk_text) else None

    @staticmethod
    def diff(mine: str, theirs: str, *, mine_name: str = "yours", theirs_name: str = "on disk") -> list[str]:
        """A unified diff from ``theirs`` to ``mine`` (what keeping yours would write)."""
        return list(
            difflib.unified_diff(
                theirs.splitlines(), mine.splitlines(), fromfile=theirs_name, tofile=mine_name, lineterm=""
            )
        )

    # -- editing ---------------------------------------------------------------------------------

    def set_value(self, text: str, spec: FieldSpec, value: Any) -> str:
        """The buffer with ``spec``'s key set to ``value`` (None removes it); only that line changes.

        Raises:
            Refusal: ``PROFILE_INVALID`` for a secret typed into the form, or a buffer that is not TOML
                (the form never rewrites a file it cannot parse).
        """
        if spec.secret and value not in (None, ""):
            raise Refusal(
                RefusalCode.PROFILE_INVALID,
                f"{spec.dotted}: a key is never stored in a profile; export WANDB_API_KEY in the "
                "environment instead (dpipe-tui passes it to the run)",
            )
        doc = self._document(text)
        if value is None:
            doc.delete(spec.key)
        else:
            doc.set(spec.key, value)
        return doc.text

    def remove_keys(self, text: str, keys: list[tuple[str | int, ...]]) -> str:
        """The buffer without ``keys`` (e.g. the model keys a new ``model.type`` does not read)."""
        doc = self._document(text)
        for key in keys:
            doc.delete(key)
        return doc.text

    def _document(self, text: str) -> ProfileDocument:
        if self.read_only:
            raise Refusal(RefusalCode.WRONG_STATE, f"{self.path} is open read-only (a run's frozen profile)")
        try:
            return ProfileDocument.from_text(text, self.path)
        except Exception as exc:  # tomlkit's parse errors have no common base worth naming
            raise Refusal(
                RefusalCode.PROFILE_INVALID, f"{self.path}: fix the TOML in the raw view first ({exc})"
            ) from exc

    # -- saving ----------------------------------------------------------------------------------

    def save(self, text: str, *, force: bool = False) -> Path:
        """Write the buffer atomically (temp file, then rename), keeping the file's permissions.

        Args:
            text: the buffer.
            force: write even though the file changed on disk since it was read (keep mine).

        Raises:
            Refusal: ``WRONG_STATE`` read-only; ``NOT_READY`` the file changed on disk (offer reload or
                keep mine); ``IO`` unwritable.
        """
        if self.read_only:
            raise Refusal(RefusalCode.WRONG_STATE, f"{self.path} is open read-only (a run's frozen profile)")
        if not force and self.changed_on_disk() is not None:
            raise Refusal(RefusalCode.NOT_READY, f"{self.path} changed on disk since you opened it")
        try:
            mode = self.path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
        except OSError as exc:
            raise Refusal(RefusalCode.IO, f"cannot save {self.path}: {exc.strerror or exc}") from exc
        try:
            atomic_write_text(self.path, text, mode=mode)
        except OSError as exc:
            raise Refusal(RefusalCode.IO, f"cannot save {self.path}: {exc.strerror or exc}") from exc
        self.disk_text = text
        return self.path

    def reload(self) -> str:
        """Take the file's current text as the new base (the front end replaces its buffer with it)."""
        try:
            self.disk_text = read_profile_text(self.path)
        except (OSError, UnicodeDecodeError) as exc:
            raise Refusal(RefusalCode.UNREADABLE, f"{self.path}: cannot read it again: {exc}") from exc
        return self.disk_text


def watch_file(path: Path) -> Wakeup:
    """A watch that wakes when anything in ``path``'s folder changes (an atomic save replaces the file,
    so its folder is what can be watched); the client then asks :meth:`EditSession.changed_on_disk`."""
    from dpipe_tui.services.wakeup import Wakeup

    return Wakeup([path.parent], recursive=False)
