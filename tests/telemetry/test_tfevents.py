"""TensorBoard event files written by tensorboardX (the engine's writer), read without TensorFlow."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from tensorboardX import SummaryWriter

from dpipe_tui.telemetry.events import EventKind
from dpipe_tui.telemetry.tfevents import TfEventsReader
from dpipe_tui.telemetry.tfrecord import crc32c, read_records

if TYPE_CHECKING:
    from pathlib import Path


def write_run(log_dir: Path) -> None:
    writer = SummaryWriter(log_dir=str(log_dir))
    for step in range(1, 11):
        writer.add_scalar("train/loss", 1.0 / step, step)
        writer.add_scalar("train/grad_norm", 0.5, step)
    for q in (0.1, 0.5, 0.9):
        writer.add_scalar(f"val/loss_quantile_{q:.2f}", q, 10)
    writer.add_scalar("val/loss", 0.5, 10)
    writer.add_scalar("eval/eval_time_sec", 3.25, 10)
    writer.add_scalar("train/epoch_loss", 0.25, 1)
    writer.close()


def test_crc32c_known_vector() -> None:
    assert crc32c(b"123456789") == 0xE3069283


def test_reads_scalars_and_evals(tmp_path: Path) -> None:
    write_run(tmp_path)
    events = TfEventsReader(tmp_path).read_new()
    losses = [(e.data["step"], e.data["value"]) for e in events if e.get("tag") == "train/loss"]
    assert [s for s, _ in losses] == list(range(1, 11))
    assert losses[1][1] == pytest.approx(0.5)
    evals = [e for e in events if e.kind is EventKind.EVAL]
    assert len(evals) == 1
    assert evals[0].data["name"] == "val"
    assert evals[0].data["step"] == 10
    assert evals[0].data["loss"] == pytest.approx(0.5)
    assert evals[0].data["quantiles"] == pytest.approx({"0.10": 0.1, "0.50": 0.5, "0.90": 0.9})
    tags = {e.get("tag") for e in events if e.kind is EventKind.SCALAR}
    assert {"train/grad_norm", "eval/eval_time_sec", "train/epoch_loss"} <= tags
    assert TfEventsReader(tmp_path).read_new() == events


def test_incremental_and_truncated_tail(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_run(src)
    (full,) = src.glob("events.out.tfevents.*")
    data = full.read_bytes()
    dst = tmp_path / "run"
    dst.mkdir()
    target = dst / full.name
    reader = TfEventsReader(dst)
    expected = TfEventsReader(src).read_new()
    got = []
    for cut in (0, 37, 200, len(data) - 3, len(data)):  # cuts inside records: wait for the rest
        target.write_bytes(data[:cut])
        got += reader.read_new()
    assert got == expected


def test_corrupt_data_crc_skips_record(tmp_path: Path) -> None:
    write_run(tmp_path)
    (path,) = tmp_path.glob("events.out.tfevents.*")
    buf = bytearray(path.read_bytes())
    records, _ = read_records(bytes(buf))
    # flip a byte inside the second record's payload
    first_len = 12 + len(records[0]) + 4
    buf[first_len + 14] ^= 0xFF
    bad, used = read_records(bytes(buf))
    assert len(bad) == len(records) - 1
    assert used == len(buf)


def test_multiple_files_one_per_launch(tmp_path: Path) -> None:
    for _ in range(2):
        writer = SummaryWriter(log_dir=str(tmp_path), filename_suffix=f".{_}")
        writer.add_scalar("train/loss", 1.0, 1 + _)
        writer.close()
    events = TfEventsReader(tmp_path).read_new()
    assert sorted(e.data["step"] for e in events) == [1, 2]


def test_tensor_scalars(tmp_path: Path) -> None:
    from tensorboardX.proto.event_pb2 import Event as PbEvent
    from tensorboardX.proto.summary_pb2 import Summary
    from tensorboardX.proto.tensor_pb2 import TensorProto

    writer = SummaryWriter(log_dir=str(tmp_path))
    tensor = TensorProto(dtype=1, float_val=[2.5])
    summary = Summary(value=[Summary.Value(tag="x/tensor", tensor=tensor)])
    writer._get_file_writer().add_event(PbEvent(summary=summary, step=4, wall_time=1.0))
    writer.close()
    events = TfEventsReader(tmp_path).read_new()
    assert [(e.data["tag"], e.data["step"], e.data["value"]) for e in events] == [("x/tensor", 4, 2.5)]


def test_corrupt_length_header_keeps_the_good_records_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "src"
    write_run(src)
    (full,) = src.glob("events.out.tfevents.*")
    data = full.read_bytes()
    payloads, _ = read_records(data)
    expected = TfEventsReader(src).read_new()
    # corrupt the length header of the 7th record (the file-version record and 5 scalars precede it)
    start = sum(12 + len(p) + 4 for p in payloads[:6])
    broken = bytearray(data)
    broken[start] ^= 0xFF
    run = tmp_path / "run"
    run.mkdir()
    target = run / full.name
    target.write_bytes(bytes(broken))
    reader = TfEventsReader(run)
    with caplog.at_level("WARNING"):
        first = reader.read_new()
        with target.open("ab") as fh:
            fh.write(data[-40:])  # the writer goes on appending
        assert reader.read_new() == []
        assert reader.read_new() == []
    kept = [e for p in payloads[:6] for e in _events_of(p)]
    assert len(first) == len(kept) > 0  # the good records before the bad header are not lost
    assert first == expected[: len(first)]
    assert len([r for r in caplog.records if "corrupt record header" in r.message]) == 1
    assert reader.corrupt == {target: start}
    target.write_bytes(data)  # the block became valid (e.g. a lagging filesystem): reading resumes
    assert first + reader.read_new() == expected
    assert reader.corrupt == {}


def _events_of(payload: bytes) -> list[object]:
    from dpipe_tui.telemetry.tfrecord import decode_event

    return list(decode_event(payload))


def test_only_top_level_event_files_are_read(tmp_path: Path) -> None:
    write_run(tmp_path)
    write_run(tmp_path / "global_step10")  # never there in diffusion-pipe (spec §5.1): not walked
    reader = TfEventsReader(tmp_path)
    assert [p.parent for p in reader.files()] == [tmp_path]
    assert len([e for e in reader.read_new() if e.get("tag") == "train/loss"]) == 10
