"""Editor-ready services: validate an unsaved buffer (no dataset scan); plan a dataset with progress,
cancel and a cache that a changed file under the dataset invalidates. Real files, real scans."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from dpipe_tui.profiles import Severity, validate_file
from dpipe_tui.services.cockpit import Cockpit
from dpipe_tui.services.datasets import PlanCancelled, plan_dataset

REPO = Path(__file__).resolve().parents[2]


def test_buffer_validation_matches_the_file_and_locates_the_edit(tmp_path: Path) -> None:
    profile = REPO / "profiles" / "chroma-e6ai-1024.toml"
    text = profile.read_text()
    cockpit = Cockpit(tmp_path / "home")
    as_saved = cockpit.validate_buffer(text, profile)
    on_disk = validate_file(profile, check_paths=True)
    assert sorted((str(f.file), f.code, f.line) for f in as_saved.findings) == sorted(
        (str(f.file), f.code, f.line) for f in on_disk.findings
    )
    assert as_saved.ok == on_disk.ok
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("epochs ="))
    lines[at] = 'epochs = "ten"'
    edited = cockpit.validate_buffer("\n".join(lines) + "\n", profile)
    errors = [f for f in edited.findings if f.severity is Severity.ERROR and f.key == "epochs"]
    assert errors
    assert errors[0].line == at + 1
    assert not edited.ok


def _dataset(root: Path, dirs: int = 3, images: int = 4) -> Path:
    lines = [
        "resolutions = [64]",
        "enable_ar_bucket = true",
        "min_ar = 0.5",
        "max_ar = 2.0",
        "num_ar_buckets = 7",
        "",
    ]
    for d in range(dirs):
        folder = root / f"images{d}"
        folder.mkdir()
        for i in range(images):
            Image.new("RGB", (64 + 8 * i, 64), "gray").save(folder / f"{i}.png")
            (folder / f"{i}.txt").write_text("a gray rectangle")
        lines += ["[[directory]]", f"path = '{folder}'", ""]
    (root / "dataset.toml").write_text("\n".join(lines))
    main = root / "main.toml"
    main.write_text(
        "dataset = 'dataset.toml'\nepochs = 2\nmicro_batch_size_per_gpu = 1\n[model]\ntype = 'chroma'\n"
    )
    return main


def test_plan_reports_progress_is_cached_and_invalidated_by_a_changed_file(tmp_path: Path) -> None:
    main = _dataset(tmp_path)
    seen: list[tuple[int, int]] = []
    first = plan_dataset(main, base_dir=tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert first.plan is not None
    assert first.error is None
    assert not first.cached
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert any("steps" in line for line in first.lines)
    t0 = time.perf_counter()
    again = plan_dataset(main, base_dir=tmp_path)
    assert again.cached
    assert time.perf_counter() - t0 < 0.5
    assert again.plan is first.plan
    caption = tmp_path / "images1" / "2.txt"
    caption.write_text("a longer caption now")
    os.utime(caption, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert not plan_dataset(main, base_dir=tmp_path).cached
    Image.new("RGB", (64, 64)).save(tmp_path / "images0" / "new.png")
    (tmp_path / "images0" / "new.txt").write_text("new")
    changed = plan_dataset(main, base_dir=tmp_path)
    assert not changed.cached
    assert changed.plan is not None
    assert first.plan is not None
    assert changed.plan.total_steps > first.plan.total_steps


def test_plan_can_be_cancelled_from_another_thread(tmp_path: Path) -> None:
    main = _dataset(tmp_path, dirs=3, images=2)
    cancel = threading.Event()

    def stop_after_the_first(done: int, total: int) -> None:
        if done == 1:
            cancel.set()

    with pytest.raises(PlanCancelled):
        plan_dataset(main, base_dir=tmp_path, progress=stop_after_the_first, cancel=cancel)
    assert plan_dataset(main, base_dir=tmp_path).plan is not None  # a cancelled plan is not cached


def test_an_isolated_plan_is_the_same_plan_made_in_a_child_process(tmp_path: Path) -> None:
    from dpipe_tui.services import datasets

    main = _dataset(tmp_path, dirs=2, images=3)
    seen: list[tuple[int, int]] = []
    child = plan_dataset(main, base_dir=tmp_path, isolated=True, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 2), (1, 2), (2, 2)]  # progress crosses the process boundary
    datasets._CACHE.clear()
    here = plan_dataset(main, base_dir=tmp_path)
    assert child.plan is not None
    assert here.plan is not None
    assert child.lines == here.lines
    assert child.plan.total_steps == here.plan.total_steps
    broken = tmp_path / "broken.toml"
    broken.write_text("dataset = 'nope.toml'\nepochs = 1\n[model]\ntype = 'chroma'\n")
    failed = plan_dataset(broken, base_dir=tmp_path, isolated=True)
    assert failed.plan is None
    assert failed.error is not None
    assert "no dataset plan" in failed.error


def test_an_isolated_plan_is_cancelled_by_killing_its_child(tmp_path: Path) -> None:
    main = _dataset(tmp_path, dirs=3, images=2)
    cancel = threading.Event()
    cancel.set()  # before it starts: the child is killed within a tenth of a second
    t0 = time.perf_counter()
    with pytest.raises(PlanCancelled):
        plan_dataset(main, base_dir=tmp_path, isolated=True, cancel=cancel)
    assert time.perf_counter() - t0 < 5
