"""The editor's form view: one row per schema key, a control that fits its type, its state beside it.

Why generated: :mod:`dpipe_tui.profiles.form` derives the sections and fields from the pydantic
schema, so this widget only maps a field's kind to a control (select, switch, numeric input, text)
and reports edits as :class:`ProfileForm.Changed`. It never writes a file: the editor screen applies
an edit to its buffer (one line changes) and hands the parsed buffer back through :meth:`show`, which
updates the controls in place, or rebuilds them when the structure changed (another ``model.type``,
a ``[[directory]]`` added in the raw view).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static, Switch

from dpipe_tui.services.editor import UNSET, FieldSpec, FormValueError, SectionSpec, parse_value, value_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.events import DescendantFocus
    from textual.widget import Widget

_STATUS = {"error": "✗", "warning": "!", "hint": "i"}
_NOTHING = object()


def field_id(spec: FieldSpec) -> str:
    """The widget id of a field's control (``f-model-dtype``, ``f-directory-0-path``)."""
    return "f-" + re.sub(r"[^A-Za-z0-9_-]+", "-", spec.dotted).strip("-")


class ProfileForm(VerticalScroll):
    """Sections of field rows; edits come out as :class:`Changed` (or :class:`Invalid`)."""

    DEFAULT_CSS: ClassVar[str] = """
    ProfileForm { height: 1fr; }
    ProfileForm .section-title { text-style: bold; color: $accent; margin-top: 1; }
    ProfileForm .field-row { height: 1; }
    ProfileForm .field-name { width: 32; padding: 0 1 0 0; text-wrap: nowrap; text-overflow: ellipsis; }
    ProfileForm .field-control { width: 1fr; }
    ProfileForm Switch.field-control { width: auto; height: 1; border: none; padding: 0; }
    ProfileForm .field-status { width: 10; padding: 0 0 0 1; color: $text-muted; text-wrap: nowrap; }
    ProfileForm .field-status.-error { color: $error; text-style: bold; }
    ProfileForm .field-status.-warning { color: $warning; }
    ProfileForm Input.-invalid { border: tall $error; }
    ProfileForm .not-applying { color: $warning; margin-top: 1; }
    ProfileForm .notice { color: $text-muted; padding: 1; }
    """

    @dataclass
    class Changed(Message):
        """The user set a field (``value`` None: emptied, remove the key)."""

        spec: FieldSpec
        value: Any

    @dataclass
    class Invalid(Message):
        """A control holds text that is no value of its field (the buffer keeps the last good one)."""

        spec: FieldSpec
        message: str

    @dataclass
    class FieldFocused(Message):
        """A field's control got the focus (the screen shows its help)."""

        spec: FieldSpec

    @dataclass
    class RemoveNotApplying(Message):
        """The user asked to remove the ``[model]`` keys the chosen model type does not read."""

        keys: list[str]

    def __init__(self, *, read_only: bool = False, id: str | None = None) -> None:
        """An empty form (:meth:`show` fills it)."""
        super().__init__(id=id)
        self.read_only = read_only
        self.specs: dict[str, FieldSpec] = {}
        self._shape: tuple[object, ...] | None = None
        self._not_applying: list[str] = []
        self._shown: dict[str, Any] = {}
        """Field id -> the buffer's value as last shown: an event that repeats it is no edit."""

    # -- filling -----------------------------------------------------------------------------------

    def show(
        self,
        sections: list[SectionSpec],
        value_of: Callable[[FieldSpec], Any],
        *,
        marks: dict[str, str],
        not_applying: list[str],
        model_type: str,
        notice: str = "",
    ) -> None:
        """Show these sections with the buffer's values; rebuild only when the structure changed.

        Args:
            sections: from the edit session.
            value_of: a field's value in the buffer (None: absent).
            marks: dotted key -> worst finding severity of that key.
            not_applying: ``[model]`` keys the chosen ``model_type`` does not read.
            model_type: the buffer's ``model.type`` (for the not-applying note).
            notice: instead of a form (the buffer is not valid TOML): say so and where.
        """
        shape = (notice, model_type, tuple(not_applying), *((s.title, len(s.fields)) for s in sections))
        rebuilt = shape != self._shape
        if rebuilt:
            self._shape = shape
            self._build(sections, value_of, not_applying, model_type, notice)
        for wid, spec in self.specs.items():
            value = value_of(spec)
            before = self._shown.get(wid, _NOTHING)
            self._shown[wid] = value
            # Only a value the buffer changed is put into its control: a control being typed in keeps
            # its text ("" while retyping, "1." on the way to "1.5"). New controls were made with it.
            if not rebuilt and (before is _NOTHING or before != value or type(before) is not type(value)):
                self._set_control(spec, value)
        if rebuilt:
            self.call_after_refresh(self._marks, value_of, marks)
        else:
            self._marks(value_of, marks)

    def _marks(self, value_of: Callable[[FieldSpec], Any], marks: dict[str, str]) -> None:
        for spec in self.specs.values():
            self._set_status(spec, value_of(spec), marks.get(spec.dotted))

    def _build(
        self,
        sections: list[SectionSpec],
        value_of: Callable[[FieldSpec], Any],
        not_applying: list[str],
        model_type: str,
        notice: str,
    ) -> None:
        focused = self.app.focused.id if self.app.focused is not None else None
        self.remove_children()
        self.specs = {}
        self._not_applying = list(not_applying)
        widgets: list[Widget] = []
        if notice:
            widgets.append(Static(notice, classes="notice", markup=False))
        for section in sections:
            widgets.append(Static(f"[{section.title}]", classes="section-title", markup=False))
            for spec in section.fields:
                self.specs[field_id(spec)] = spec
                widgets.append(self._row(spec, value_of(spec)))
            if section.title == "model" and not_applying:
                widgets.append(
                    Static(
                        f"not read by {model_type}: {', '.join(not_applying)} (kept until you remove them)",
                        classes="not-applying",
                        markup=False,
                    )
                )
                widgets.append(Button("Remove these keys", id="remove-not-applying", variant="warning"))
        self.mount_all(widgets)
        if focused is not None and focused in self.specs:
            self.call_after_refresh(self._refocus, focused)

    def _refocus(self, widget_id: str) -> None:
        found = self.query(f"#{widget_id}")
        if found:
            found.first().focus()

    def _row(self, spec: FieldSpec, value: Any) -> Horizontal:
        name = ("* " if spec.required else "") + spec.name
        control = self._control(spec, value)
        control.disabled = self.read_only
        return Horizontal(
            Label(name, classes="field-name", markup=False),
            control,
            Static(spec.unit, classes="field-status", id=f"s-{field_id(spec)}", markup=False),
            classes="field-row",
        )

    def _control(self, spec: FieldSpec, value: Any) -> Widget:
        wid = field_id(spec)
        if spec.kind == "bool" and spec.default:
            on_ = spec.default == "true" if value is None else bool(value)
            return Switch(value=on_, id=wid, classes="field-control", animate=False)
        if spec.kind in ("enum", "bool"):
            choices = spec.choices if spec.kind == "enum" else ("true", "false")
            prompt = f"(unset: {spec.default})" if spec.default else "(unset)"
            current = None if value is None else value_text(value)
            return Select(
                [(c, c) for c in choices],
                prompt=prompt,
                value=current if current in choices else Select.NULL,
                allow_blank=True,  # without a blank, a Select picks its first option on mount (an edit!)
                id=wid,
                classes="field-control",
                compact=True,
            )
        placeholder = (
            f"default: {spec.default}" if spec.default else ("required" if spec.required else "unset")
        )
        if spec.secret:
            placeholder = "from $WANDB_API_KEY (never stored here)"
        kind = {"int": "integer", "float": "number"}.get(spec.kind, "text")
        text = UNSET if value is None else value_text(value)
        return Input(text, placeholder=placeholder, type=kind, id=wid, classes="field-control", compact=True)  # type: ignore[arg-type]

    def _set_control(self, spec: FieldSpec, value: Any) -> None:
        found = self.query(f"#{field_id(spec)}")
        if not found:
            return
        control = found.first()
        if isinstance(control, Switch):
            want = spec.default == "true" if value is None else bool(value)
            if control.value != want:
                with control.prevent(Switch.Changed):
                    control.value = want
        elif isinstance(control, Select):
            want_select: Any = Select.NULL if value is None else value_text(value)
            if want_select is not Select.NULL and want_select not in (spec.choices or ("true", "false")):
                want_select = Select.NULL  # a value outside the choices: the finding says so
            if control.value != want_select:
                with control.prevent(Select.Changed):
                    control.value = want_select
        elif isinstance(control, Input):
            want_text = UNSET if value is None else value_text(value)
            if control.value != want_text:
                with control.prevent(Input.Changed):
                    control.value = want_text
                control.remove_class("-invalid")

    def _set_status(self, spec: FieldSpec, value: Any, severity: str | None) -> None:
        found = self.query(f"#s-{field_id(spec)}")
        if not found:
            return
        status = found.first(Static)
        text = spec.unit
        if severity is not None:
            text = f"{_STATUS.get(severity, '?')} {severity}"
        elif spec.kind == "path" and value not in (None, "") and spec.name != "output_dir":
            text = "✓ found"  # no path finding at this key: the validator found it (output_dir is made)
        status.update(text)
        status.set_class(severity == "error", "-error")
        status.set_class(severity == "warning", "-warning")

    # -- edits -------------------------------------------------------------------------------------

    def _spec_of(self, widget: Widget | None) -> FieldSpec | None:
        return self.specs.get(widget.id or "") if widget is not None else None

    def _edit(self, spec: FieldSpec, value: Any) -> None:
        """Report an edit, unless it only repeats the buffer's value (a control settling on mount)."""
        shown = self._shown.get(field_id(spec))
        if value == shown and type(value) is type(shown):
            return
        if value is None and shown is None:
            return
        self._shown[field_id(spec)] = value
        self.post_message(self.Changed(spec, value))

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        spec = self._spec_of(event.input)
        if spec is None:
            return
        try:
            value = parse_value(spec, event.value)
        except FormValueError as exc:
            event.input.add_class("-invalid")
            self.post_message(self.Invalid(spec, str(exc)))
            return
        event.input.remove_class("-invalid")
        if value is not None:  # emptied while typing: removing the key waits for Enter or leaving
            self._edit(spec, value)

    @on(Input.Submitted)
    @on(Input.Blurred)
    def _input_done(self, event: Input.Submitted | Input.Blurred) -> None:
        spec = self._spec_of(event.input)
        if spec is not None and not event.input.value.strip():
            self._edit(spec, None)  # left empty: the key goes (the trainer's default applies)

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        spec = self._spec_of(event.select)
        if spec is None:
            return
        self._edit(spec, None if event.value is Select.NULL else parse_value(spec, str(event.value)))

    @on(Switch.Changed)
    def _switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        spec = self._spec_of(event.switch)
        if spec is not None:
            self._edit(spec, event.value)

    @on(Button.Pressed, "#remove-not-applying")
    def _remove(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.RemoveNotApplying(list(self._not_applying)))

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        """Tell the screen which field is focused (it shows the field's help)."""
        spec = self._spec_of(event.widget)
        if spec is not None:
            self.post_message(self.FieldFocused(spec))

    def focus_field(self, dotted: str) -> bool:
        """Focus the control of ``dotted`` (False when the form has no such field)."""
        for wid, spec in self.specs.items():
            if spec.dotted == dotted:
                self.query_one(f"#{wid}").focus()
                return True
        return False
