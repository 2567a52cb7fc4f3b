"""The profile editor driven as a person would (Pilot), on real files in temp folders."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image
from textual.widgets import Input, OptionList, Select, Static

from dpipe_tui.services.cockpit import Cockpit
from dpipe_tui.ui.app import DpipeApp
from dpipe_tui.ui.modals.choice import ChoiceModal
from dpipe_tui.ui.screens.editor import EditorScreen
from dpipe_tui.ui.screens.new_run import NewRunScreen
from dpipe_tui.ui.widgets.profile_form import ProfileForm
from dpipe_tui.ui.widgets.toml_editor import TomlEditor
from tests.ui.test_app import until

if TYPE_CHECKING:
    from textual.pilot import Pilot

REPO = Path(__file__).resolve().parents[2]


def _e6ai(tmp_path: Path) -> Path:
    for name in ("chroma-e6ai-1024.toml", "chroma-e6ai-1024.dataset.toml"):
        shutil.copy(REPO / "profiles" / name, tmp_path / name)
    return tmp_path / "chroma-e6ai-1024.toml"


def _editor(app: DpipeApp) -> EditorScreen:
    screen = app.screen
    assert isinstance(screen, EditorScreen), screen
    return screen


async def _opened(pilot: Pilot[None], app: DpipeApp) -> EditorScreen:
    await until(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.validated_at > 0)
    return _editor(app)


def _findings(editor: EditorScreen) -> list[str]:
    listing = editor.query_one("#findings", OptionList)
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


async def test_a_form_edit_changes_exactly_its_line_on_save(tmp_path: Path) -> None:
    profile = _e6ai(tmp_path)
    original = profile.read_text()
    app = DpipeApp(Cockpit(tmp_path / "home"), edit=profile)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await _opened(pilot, app)
        rank = editor.query_one("#f-adapter-rank", Input)
        rank.focus()
        await pilot.press("end", "backspace", "backspace", "1", "6")
        await until(pilot, lambda: "rank = 16" in editor.buffer)
        assert "adapter.rank" in str(editor.query_one("#field-help", Static).render())
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not editor.has_unsaved())
    saved = profile.read_text().splitlines()
    before = original.splitlines()
    changed = [(a, b) for a, b in zip(before, saved, strict=True) if a != b]
    assert changed == [("rank = 32", "rank = 16")]  # comments, order, every other byte kept


async def test_a_typo_in_the_raw_view_is_found_and_jumped_to(tmp_path: Path) -> None:
    profile = _e6ai(tmp_path)
    app = DpipeApp(Cockpit(tmp_path / "home"), edit=profile)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await _opened(pilot, app)
        await pilot.press("f3")
        raw = editor.query_one("#toml", TomlEditor)
        line = next(i for i, text in enumerate(raw.text.splitlines()) if text.startswith("epochs"))
        raw.move_cursor((line, 0))
        await pilot.press(*"epohcs = 3", "enter")
        await until(pilot, lambda: any("epohcs" in f for f in _findings(editor)))
        finding = next(f for f in _findings(editor) if "epohcs" in f)
        assert finding.startswith(f"{line + 1}:1 ")  # its line and column
        assert raw.marks.get(line) in ("warning", "error")  # and the gutter marks the line
        listing = editor.query_one("#findings", OptionList)
        listing.focus()
        listing.highlighted = next(i for i in range(listing.option_count) if "epohcs" in _findings(editor)[i])
        raw.move_cursor((0, 0))
        await pilot.press("enter")
        await until(pilot, lambda: raw.cursor_location == (line, 0))
        assert raw.has_focus
        assert editor.has_unsaved()
        assert "epohcs" not in profile.read_text()  # nothing is written before ctrl+s


async def test_switching_the_model_type_shows_what_no_longer_applies_before_removing(tmp_path: Path) -> None:
    profile = _e6ai(tmp_path)
    app = DpipeApp(Cockpit(tmp_path / "home"), edit=profile)
    async with app.run_test(size=(160, 48)) as pilot:
        editor = await _opened(pilot, app)
        form = editor.query_one("#profile-form", ProfileForm)
        first = editor.query_one("#f-model-type", Select)
        first.value = "flux"
        await until(pilot, lambda: "type = 'flux'" in editor.buffer)
        # the schema: flux reads every key chroma does, and adds its own
        await until(pilot, lambda: "f-model-guidance" in form.specs)
        assert not form.query(".not-applying")

        def rebuilt() -> list[Select[str]]:
            return [w for w in form.query("#f-model-type").results(Select) if w is not first and w.is_mounted]

        await until(pilot, rebuilt)  # the form was rebuilt for flux
        await pilot.pause()
        rebuilt()[0].value = "sdxl"
        await until(pilot, lambda: bool(form.query(".not-applying")))
        note = str(form.query_one(".not-applying", Static).render())
        assert "not read by sdxl" in note
        assert "flux_shift" in note  # a key sdxl does not read
        assert "flux_shift" in editor.buffer  # shown, not removed
        assert "f-model-flux_shift" not in form.specs  # and no longer a field of the form
        form.query_one("#remove-not-applying").focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press("r")
        await until(pilot, lambda: "flux_shift" not in editor.buffer)
        assert "dtype = 'bfloat16'" in editor.buffer  # sdxl reads it: kept


async def test_the_dataset_panel_counts_missing_captions(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(8):
        Image.new("RGB", (64, 64), (i * 20, 0, 0)).save(images / f"{i}.png")
        if i >= 3:
            (images / f"{i}.txt").write_text(f"a red square {i}")
    (tmp_path / "d.toml").write_text(f"resolutions = [64]\n\n[[directory]]\npath = '{images}'\n")
    profile = tmp_path / "p.toml"
    main = (REPO / "profiles" / "tiny-demo.toml").read_text()
    main = main.replace("'tiny-demo-dataset.toml'", "'d.toml'")
    main = main.replace("prepare = 'demo'", "random_init = true")
    profile.write_text(main.replace("../.demo", str(REPO / ".demo")))
    app = DpipeApp(Cockpit(tmp_path / "home"), edit=profile)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await _opened(pilot, app)
        await pilot.press("f4")
        text = editor.query_one("#plan-text", Static)
        await until(pilot, lambda: "captions:" in str(text.render()), timeout=60)
        assert "3 missing" in str(text.render())
        # and, as `validate` does after its scan, the plan's problems join the findings
        await until(pilot, lambda: any("d.toml" in f and "3 item(s)" in f for f in _findings(editor)))


@pytest.mark.parametrize(("answer", "saved"), [("d", False), ("s", True)], ids=["discard", "save"])
async def test_unsaved_changes_are_never_lost_on_quit(tmp_path: Path, answer: str, saved: bool) -> None:
    profile = _e6ai(tmp_path)
    original = profile.read_text()
    app = DpipeApp(Cockpit(tmp_path / "home"), edit=profile)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await _opened(pilot, app)
        editor.query_one("#f-epochs", Input).value = "41"
        await until(pilot, editor.has_unsaved)
        editor.query_one("#f-epochs", Input).blur()
        await pilot.press("q")  # the app's quit key: asks, because the editor holds changes
        await until(pilot, lambda: isinstance(app.screen, ChoiceModal))
        assert app.is_running
        await pilot.press("escape")  # cancel: still editing, still unsaved
        await until(pilot, lambda: isinstance(app.screen, EditorScreen))
        assert editor.has_unsaved()
        await pilot.press("escape")  # back: asks again
        await until(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press(answer)
        await until(pilot, lambda: not app.is_running)
    assert ("epochs = 41" in profile.read_text()) is saved
    if not saved:
        assert profile.read_text() == original


async def test_an_external_change_is_offered_as_reload_or_keep_mine(tmp_path: Path) -> None:
    profile = _e6ai(tmp_path)
    app = DpipeApp(Cockpit(tmp_path / "home"), edit=profile)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await _opened(pilot, app)
        await asyncio.sleep(0.3)
        profile.write_text(profile.read_text().replace("epochs = 40", "epochs = 7"))
        await until(pilot, lambda: isinstance(app.screen, ChoiceModal), timeout=20)
        body = str(app.screen.query_one("#choice-body", Static).render())
        assert "epochs = 7" in body
        assert "epochs = 40" in body  # the diff of yours vs on disk
        await pilot.press("r")
        await until(pilot, lambda: "epochs = 7" in editor.buffer)
        assert not editor.has_unsaved()
        assert editor.query_one("#f-epochs", Input).value == "7"


async def test_an_unparseable_file_opens_in_the_raw_view_located_and_untouched(tmp_path: Path) -> None:
    profile = tmp_path / "broken.toml"
    text = "# mine\nepochs = 3\n[model\ntype = 'chroma'\n"
    profile.write_text(text)
    app = DpipeApp(Cockpit(tmp_path / "home"), edit=profile)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await _opened(pilot, app)
        raw = editor.query_one("#toml", TomlEditor)
        assert raw.has_focus
        assert raw.cursor_location[0] == 2  # the line of the syntax error
        assert any(f.startswith("3:") for f in _findings(editor))
        form = editor.query_one("#profile-form", ProfileForm)
        assert not form.specs  # no form over text it cannot parse
        assert "not valid TOML" in str(form.query_one(".notice", Static).render())
        await pilot.press("escape", "escape")  # the first leaves the text area (Textual's), then the editor
        await until(pilot, lambda: not app.is_running)
    assert profile.read_text() == text


async def test_a_wandb_key_typed_into_the_form_is_refused(tmp_path: Path) -> None:
    profile = _e6ai(tmp_path)
    app = DpipeApp(Cockpit(tmp_path / "home"), edit=profile)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await _opened(pilot, app)
        editor.query_one("#f-monitoring-wandb_api_key", Input).value = "secret-key-123"
        await pilot.pause(0.3)
        assert "secret-key-123" not in editor.buffer
        assert any("WANDB_API_KEY" in str(n.message) for n in app._notifications)


async def test_launch_is_blocked_by_errors_and_goes_through_new_run_when_clean(tmp_path: Path) -> None:
    profile = _e6ai(tmp_path)
    app = DpipeApp(Cockpit(tmp_path / "home"), edit=profile)
    async with app.run_test(size=(80, 24)) as pilot:
        await _opened(pilot, app)
        await pilot.press("ctrl+l")
        await pilot.pause(0.2)
        assert isinstance(app.screen, EditorScreen)  # 3 placeholder errors block it
        assert any("block the launch" in str(n.message) for n in app._notifications)
    demo = REPO / "profiles" / "tiny-demo.toml"
    app = DpipeApp(Cockpit(tmp_path / "home"), edit=demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await _opened(pilot, app)
        await pilot.press("ctrl+l")
        await until(pilot, lambda: isinstance(app.screen, NewRunScreen))
        new_run = app.screen
        assert isinstance(new_run, NewRunScreen)
        assert new_run.preselect == demo


async def test_a_runs_frozen_profile_opens_read_only(tmp_path: Path) -> None:
    profile = _e6ai(tmp_path)
    app = DpipeApp(Cockpit(tmp_path / "home"))
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(EditorScreen(app.cockpit, profile, read_only=True, title="run x: frozen profile"))
        editor = await _opened(pilot, app)
        assert editor.query_one("#toml", TomlEditor).read_only
        assert all(w.disabled for w in editor.query(".field-control"))
        await pilot.press("ctrl+s")
        assert any("read-only" in str(n.message) for n in app._notifications)
