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
from textual.containers import Container, VerticalScroll
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
    ProfileForm .section { layout: grid; grid-size: 3; grid-columns: 32 1fr 10; grid-rows: 1; height: auto; }
    ProfileForm .section-title { text-style: bold; color: $accent; column-span: 3; height: 2;
                                 content-align: left bottom; }
    ProfileForm .field-name { height: 1; padding: 0 1 0 0; text-wrap: nowrap; text-overflow: ellipsis; }
    ProfileForm .field-control { height: 1; }
    ProfileForm Switch.field-control { width: auto; height: 1; border: none; padding: 0; }
    ProfileForm .field-status { height: 1; padding: 0 0 0 1; color: $text-muted; text-wrap: nowrap; }
    ProfileForm .field-status.-error { color: $error; text-style: bold; }
    ProfileForm .field-status.-warning { color: $warning; }
    ProfileForm Input.-invalid { border: tall $error; }
    ProfileForm .not-applying { color: $warning; column-span: 3; height: auto; }
    ProfileForm #remove-not-applying { column-span: 3; }
    ProfileForm .notice { color: $text-muted; padding: 1; column-span: 3; height: auto; }
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
        self._controls: dict[str, Widget] = {}
        self._statuses: dict[str, Static] = {}
        """Field id -> its control and its status cell (kept: a DOM query per field costs O(widgets))."""
        self._status_text: dict[str, tuple[str, str | None]] = {}
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
            self.call_after_refresh(self.mark, value_of, marks)
        else:
            self.mark(value_of, marks)

    def mark(self, value_of: Callable[[FieldSpec], Any], marks: dict[str, str]) -> None:
        """Show each field's state: its worst finding, else found/on/off/its unit."""
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
        self._controls, self._statuses, self._status_text = {}, {}, {}
        self._not_applying = list(not_applying)
        widgets: list[Widget] = []
        if notice:
            widgets.append(Static(notice, classes="notice", markup=False))
        for section in sections:
            # one grid container a section (ids are unique among siblings: a rebuild mounts the new
            # sections while the old ones are still being removed)
            cells: list[Widget] = [Static(f"[{section.title}]", classes="section-title", markup=False)]
            for spec in section.fields:
                self.specs[field_id(spec)] = spec
                cells.extend(self._row(spec, value_of(spec)))
            if section.title == "model" and not_applying:
                cells.append(
                    Static(
                        f"not read by {model_type}: {', '.join(not_applying)} (kept until you remove them)",
                        classes="not-applying",
                        markup=False,
                    )
                )
                cells.append(Button("Remove these keys", id="remove-not-applying", variant="warning"))
            widgets.append(Container(*cells, classes="section"))
        self.mount_all(widgets)
        if focused is not None and focused in self.specs:
            self.call_after_refresh(self._refocus, focused)

    def _refocus(self, widget_id: str) -> None:
        found = self.query(f"#{widget_id}")
        if found:
            found.first().focus()

    def _row(self, spec: FieldSpec, value: Any) -> tuple[Widget, Widget, Widget]:
        name = ("* " if spec.required else "") + spec.name
        control = self._control(spec, value)
        control.disabled = self.read_only
        status = Static(spec.unit, classes="field-status", id=f"s-{field_id(spec)}", markup=False)
        self._controls[field_id(spec)] = control
        self._statuses[field_id(spec)] = status
        return Label(name, classes="field-name", markup=False), control, status  # three grid cells

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
        control = self._controls.get(field_id(spec))
        if control is None:
            return
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
        status = self._statuses.get(field_id(spec))
        if status is None:
            return
        text = spec.unit
        if severity is not None:
            text = f"{_STATUS.get(severity, '?')} {severity}"
        elif spec.kind == "bool" and spec.default:  # a switch: said in words too (not by colour alone)
            text = "on" if (spec.default == "true" if value is None else bool(value)) else "off"
        elif spec.kind == "path" and value not in (None, "") and spec.name != "output_dir":
            text = "✓ found"  # no path finding at this key: the validator found it (output_dir is made)
        if self._status_text.get(field_id(spec)) == (text, severity):
            return  # unchanged: no update, no repaint
        self._status_text[field_id(spec)] = (text, severity)
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
                self._controls[wid].focus()
                return True
        return False
