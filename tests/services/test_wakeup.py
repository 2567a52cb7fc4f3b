"""The registry watch that lets an idle client sleep: real files, real inotify (watchfiles)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from dpipe_tui.services.wakeup import Wakeup

if TYPE_CHECKING:
    from pathlib import Path


def test_a_change_wakes_and_quiet_does_not(tmp_path: Path) -> None:
    (tmp_path / "runs" / "a").mkdir(parents=True)
    wake = Wakeup([tmp_path / "runs"])
    try:
        assert wake.watching
        assert not wake.wait(0.5)  # nothing happened
        t0 = time.monotonic()
        (tmp_path / "runs" / "a" / "console.log").write_text("steps: 1 loss: 0.5\n")  # nested: recursive
        assert wake.wait(5.0)
        assert time.monotonic() - t0 < 2.0
        assert not wake.changed()  # the change was consumed by wait
        (tmp_path / "runs" / "b").mkdir()
        deadline = time.monotonic() + 5
        while not wake.changed():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        wake.close()


def test_close_releases_a_waiter_and_a_missing_folder_means_polling(tmp_path: Path) -> None:
    wake = Wakeup([tmp_path])
    wake.close()
    t0 = time.monotonic()
    assert not wake.wait(10.0)
    assert time.monotonic() - t0 < 1.0
    assert not Wakeup([tmp_path / "nope"]).watching


def test_ignored_names_do_not_wake(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    wake = Wakeup([tmp_path / "runs"], ignore=frozenset({"console.log"}))
    try:
        for i in range(5):
            with open(run / "console.log", "a") as fh:
                fh.write(f"steps: {i}\n")
            time.sleep(0.05)
        assert not wake.wait(1.0)  # a live run's console lines do not wake a listing
        (run / "run.json").write_text("{}")
        assert wake.wait(5.0)
    finally:
        wake.close()
