"""The registry on disk: private modes, tolerance of corrupt records, prefix lookup, crash consistency."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.runs.model import RunRecord
from dpipe_tui.runs.registry import AmbiguousRun, Registry, RunNotFound
from dpipe_tui.supervisor.follow import LineTail, last_lines
from dpipe_tui.telemetry.events import Event

if TYPE_CHECKING:
    from pathlib import Path


def _record(run_id: str) -> RunRecord:
    return RunRecord(id=run_id, profile_path="/p/demo.toml", engine="builtin", created_at=time.time())


def test_create_is_private_and_complete(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    run_dir = reg.create(_record("20260101-0000-a-0001"))
    assert reg.root.stat().st_mode & 0o777 == 0o700
    assert run_dir.stat().st_mode & 0o777 == 0o700
    for name in ("run.json", "console.log", "metrics.jsonl"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        reg.create(_record("20260101-0000-a-0001"))


def test_corrupt_and_missing_records_are_problems_not_errors(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    for i in range(3):
        reg.create(_record(f"20260101-0000-a-000{i}"))
    (reg.run_dir("20260101-0000-a-0001") / "run.json").write_text('{"id": "20260101-0000-a-0001", "engi')
    (reg.run_dir("20260101-0000-a-0002") / "run.json").unlink()
    records, problems = reg.scan()
    assert [r.id for r in records] == ["20260101-0000-a-0000"]
    assert {p.run_id for p in problems} == {"20260101-0000-a-0001", "20260101-0000-a-0002"}
    assert any("missing" in p.message for p in problems)


def test_resolve_prefix(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    for run_id in ("20260101-0000-a-0001", "20260101-0000-a-0002", "20260102-0000-b-0003"):
        reg.create(_record(run_id))
    assert reg.resolve("20260102") == "20260102-0000-b-0003"
    with pytest.raises(AmbiguousRun) as info:
        reg.resolve("20260101")
    assert len(info.value.candidates) == 2
    with pytest.raises(RunNotFound):
        reg.resolve("2027")


WRITER = """
import dataclasses, sys, time
from pathlib import Path
from dpipe_tui.runs.registry import Registry
reg = Registry(Path(sys.argv[1]))
i = 0
print("ready", flush=True)
while True:
    i += 1
    reg.update(sys.argv[2], lambda r: dataclasses.replace(r, last_step=i, note="x" * (i % 5000)))
"""


def test_registry_survives_a_writer_killed_mid_update(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    run_id = "20260101-0000-a-0001"
    reg.create(_record(run_id))
    rng = random.Random(7)
    steps = []
    for _ in range(25):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), run_id], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.08))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        record = reg.load(run_id)  # never half a file
        records, problems = reg.scan()
        assert problems == []
        assert [r.id for r in records] == [run_id]
        steps.append(record.last_step or 0)
    assert max(steps) > 0
    reg.update(run_id, lambda r: dataclasses.replace(r, note="after"))  # the lock died with its holder
    assert reg.load(run_id).note == "after"


STOPPING_WRITER = """
import dataclasses, os, signal, sys
from pathlib import Path
from dpipe_tui.runs.registry import Registry

def stop_here():
    os.kill(os.getpid(), signal.SIGSTOP)  # the test kills us while we are stopped here

if sys.argv[3] == "before-replace":  # the temp file is complete; run.json not yet replaced
    real_replace = os.replace
    def replace(src, dst):
        stop_here()
        real_replace(src, dst)
    os.replace = replace
else:  # "mid-write": half of the new record is in the temp file
    real_fdopen = os.fdopen
    class Half:
        def __init__(self, fh):
            self.fh = fh
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.fh.close()
        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            self.fh.flush()
            stop_here()
            self.fh.write(data[len(data) // 2 :])
        def __getattr__(self, name):
            return getattr(self.fh, name)
    os.fdopen = lambda fd, *args, **kwargs: Half(real_fdopen(fd, *args, **kwargs))
Registry(Path(sys.argv[1])).update(sys.argv[2], lambda r: dataclasses.replace(r, note="new " * 500))
"""


@pytest.mark.parametrize("where", ["mid-write", "before-replace"])
def test_writer_killed_at_a_known_point_leaves_the_old_record(tmp_path: Path, where: str) -> None:
    reg = Registry(tmp_path)
    run_id = "20260101-0000-a-0001"
    reg.create(dataclasses.replace(_record(run_id), note="old"))
    proc = subprocess.Popen([sys.executable, "-c", STOPPING_WRITER, str(tmp_path), run_id, where])
    _, status = os.waitpid(proc.pid, os.WUNTRACED)  # returns once the writer has stopped itself
    assert os.WIFSTOPPED(status), f"writer ended before the fault point (status {status})"
    [tmp] = [p for p in reg.run_dir(run_id).iterdir() if p.name.startswith(".run.json.")]
    partial = tmp.read_text()
    if where == "mid-write":  # provably mid-write: a non-empty prefix that is not a record yet
        assert partial
        with pytest.raises(json.JSONDecodeError):
            json.loads(partial)
    else:
        assert json.loads(partial)["note"].startswith("new ")
    proc.kill()
    proc.wait()
    assert reg.load(run_id).note == "old"  # the old record, intact
    records, problems = reg.scan()
    assert ([r.id for r in records], problems) == ([run_id], [])
    reg.update(run_id, lambda r: dataclasses.replace(r, note="after"))  # the killed writer's lock is gone
    assert reg.load(run_id).note == "after"


def test_tail_skips_a_half_appended_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    good = Event.from_json('{"t": 1, "kind": "step", "step": 1}')
    assert good is not None
    path.write_text(good.to_json() + "\n" + '{"t": 2, "kind": "st')
    tail = LineTail(path)
    assert [Event.from_json(line) for line in tail.read()] == [good]
    with open(path, "a") as fh:
        fh.write('ep", "step": 2}\n')
    [line] = tail.read()
    event = Event.from_json(line)
    assert event is not None
    assert event.get("step") == 2
    assert Event.from_json('{"t": 2, "kind": "st') is None
    lines, offset = last_lines(path, 5)
    assert len(lines) == 2
    assert offset == path.stat().st_size


def test_record_json_is_plain(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.create(_record("20260101-0000-a-0001"))
    data = json.loads((reg.run_dir("20260101-0000-a-0001") / "run.json").read_text())
    assert data["schema"] == 1
    assert data["state"] == "queued"
