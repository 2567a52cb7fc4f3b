"""The checkpoint inventory on diffusion-pipe-shaped folders: formats, states, leftovers, timelines."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.checkpoints.header import HeaderError, read_alpha, read_header
from dpipe_tui.checkpoints.inventory import (
    SaveTelemetry,
    run_folders,
    scan_output_dir,
    scan_run_folder,
)
from tests.checkpoints import shapes

if TYPE_CHECKING:
    from pathlib import Path


def test_each_format_is_told_with_rank_alpha_dtype_and_tensor_count(tmp_path: Path) -> None:
    run = tmp_path / "20260101_10-00-00"
    shapes.comfy_save(run / "epoch1", rank=4, alpha=2)
    shapes.diffusers_save(run / "epoch2", rank=8)
    shapes.kohya_save(run / "epoch3", rank=16, alpha=8.0)
    shapes.full_save(run / "step40")
    inv = scan_run_folder(run)
    got = {s.name: (s.format, s.rank, s.alpha, s.dtype, s.tensors) for s in inv.saves}
    assert got == {
        "epoch1": ("comfyui", 4, 2.0, "BF16", 6),
        "epoch2": ("diffusers", 8, 8.0, "BF16", 4),  # no alpha key: alpha = rank (spec §6)
        "epoch3": ("kohya", 16, 8.0, "BF16", 5),
        "step40": ("full", None, None, "BF16", 2),
    }
    step40 = inv.save("step40")
    assert step40 is not None
    assert step40.step == 40
    assert step40.label == "full model"
    assert all(s.size > 0 and s.problem is None for s in inv.saves)
    assert inv.leftovers == ()


def test_a_header_that_is_not_safetensors_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "epoch1").mkdir(parents=True)
    (run / "epoch1" / "adapter_model.safetensors").write_bytes(b"garbage!" * 3)
    (run / "epoch2").mkdir()
    (run / "epoch2" / "adapter_model.safetensors").write_bytes(struct.pack("<Q", 10**12))
    inv = scan_run_folder(run)
    problems = {s.name: s.problem or "" for s in inv.saves}
    assert "not a safetensors file" in problems["epoch1"]
    assert "header length" in problems["epoch2"]
    (run / "short.safetensors").write_bytes(b"abc")
    with pytest.raises(HeaderError, match="shorter than 8 bytes"):
        read_header(run / "short.safetensors")
    with pytest.raises(HeaderError, match="cannot read it"):
        read_header(run / "missing.safetensors")


def test_read_header_counts_without_decoding_all_and_reads_a_kohya_alpha(tmp_path: Path) -> None:
    path = shapes.kohya_save(tmp_path / "k", rank=32, alpha=16.0) / "lora.safetensors"
    info = read_header(path)
    assert (info.tensors, info.rank, info.dtype, info.alpha_key) == (5, 32, "BF16", "lora_unet_block_0.alpha")
    assert info.metadata == {"format": "pt"}
    assert read_alpha(path, info) == 16.0
    assert info.dtypes == (("BF16", 4), ("F32", 1))


def test_states_complete_latest_and_stage_mismatch(tmp_path: Path) -> None:
    run = tmp_path / "20260101_10-00-00"
    run.mkdir()
    shapes.main_config(run, stages=2)
    shapes.state(run / "global_step10", stages=2)
    shapes.state(run / "global_step20", stages=1)  # saved by a one-stage config
    (run / "global_step30").mkdir()  # cut off before any file
    shapes.state(run / "global_step40", stages=2, layers=0)
    (run / "latest").write_text("global_step10")
    inv = scan_run_folder(run)
    assert inv.pipeline_stages == 2
    by_tag = {s.tag: s for s in inv.states}
    assert [s.tag for s in inv.states] == ["global_step40", "global_step30", "global_step20", "global_step10"]
    assert by_tag["global_step10"].complete
    assert by_tag["global_step10"].is_latest
    assert by_tag["global_step10"].problem is None
    assert "pipeline_stages = 2" in (by_tag["global_step20"].problem or "")
    assert not by_tag["global_step30"].complete
    assert "no mp_rank" in (by_tag["global_step30"].problem or "")
    assert "no layer_" in (by_tag["global_step40"].problem or "")
    assert by_tag["global_step10"].size == 5 * 1000


def test_leftovers_tmp_of_a_cut_save_latest_naming_nothing_and_trash(tmp_path: Path) -> None:
    run = tmp_path / "20260101_10-00-00"
    shapes.comfy_save(run / "epoch1")
    (run / "epoch1" / "tmp").mkdir()
    (run / "epoch1" / "tmp" / "state_dict_0.bin").write_bytes(b"x")
    (run / "latest").write_text("global_step99")
    (run / ".dpipe-trash.global_step5.123").mkdir()
    inv = scan_run_folder(run)
    text = "\n".join(inv.leftovers)
    assert "epoch1: cut off mid-write: a tmp/ folder is left" in text
    assert "latest names 'global_step99', which does not exist" in text
    assert "interrupted prune" in text
    assert inv.trash == (run / ".dpipe-trash.global_step5.123",)


def _timeline(run: Path) -> None:
    """Launch 1 at t=1000 reaches step 300; launch 2 at t=2000 resumes from step 100 and rewrites
    epoch2 and global_step200 (diffusion-pipe writes the state, then the epoch's save)."""
    shapes.launch_file(run, 1000)
    for step, t in ((100, 1100), (200, 1200), (300, 1300)):
        shapes.state(run / f"global_step{step}")
        for f in [*(run / f"global_step{step}").iterdir(), run / f"global_step{step}"]:
            shapes.touch(f, t)
    for epoch, t in ((1, 1105), (2, 1205), (3, 1305)):
        shapes.comfy_save(run / f"epoch{epoch}")
        for f in [*(run / f"epoch{epoch}").iterdir(), run / f"epoch{epoch}"]:
            shapes.touch(f, t)
    shapes.full_save(run / "step250")
    for f in [*(run / "step250").iterdir(), run / "step250"]:
        shapes.touch(f, 1250)
    shapes.launch_file(run, 2000)
    for f in (run / "epoch2").iterdir():  # rewritten in place: the folder's own mtime stays
        shapes.touch(f, 2205)
    for f in (run / "global_step200").iterdir():
        shapes.touch(f, 2200)
    (run / "latest").write_text("global_step200")


@pytest.mark.parametrize("with_telemetry", [False, True])
def test_the_abandoned_timeline_of_a_resume_from_an_older_state(tmp_path: Path, with_telemetry: bool) -> None:
    run = tmp_path / "20260101_10-00-00"
    run.mkdir()
    _timeline(run)
    telemetry = (
        SaveTelemetry(
            saves={"epoch1": (100, 0.5), "epoch2": (200, 0.4), "epoch3": (300, 0.3)},
            resumes=[(2010.0, 100)],
        )
        if with_telemetry
        else None
    )
    inv = scan_run_folder(run, telemetry=telemetry)
    assert inv.launches == (1000.0, 2000.0)
    abandoned = sorted(s.name for s in inv.saves if s.abandoned) + sorted(
        s.tag for s in inv.states if s.abandoned
    )
    assert abandoned == ["epoch3", "step250", "global_step300"]
    attempts = {s.name: s.attempt for s in inv.saves} | {s.tag: s.attempt for s in inv.states}
    assert attempts == {
        "epoch1": 1,
        "epoch2": 2,
        "epoch3": 1,
        "step250": 1,
        "global_step100": 1,
        "global_step200": 2,
        "global_step300": 1,
    }
    if with_telemetry:
        epoch1 = inv.save("epoch1")
        assert epoch1 is not None
        assert (epoch1.step, epoch1.loss) == (100, 0.5)
    saves, states = inv.later_than("global_step100")
    assert sorted(s.name for s in saves) == ["epoch2"]
    assert [s.tag for s in states] == ["global_step200"]


def test_an_output_dir_lists_run_folders_of_runs_started_anywhere(tmp_path: Path) -> None:
    out = tmp_path / "out"
    shapes.comfy_save(out / "20260101_10-00-00" / "epoch1")
    shapes.state(out / "my-named-resume" / "global_step5")
    (out / "notes").mkdir(parents=True)
    (out / "stray.txt").write_text("x")
    assert [p.name for p in run_folders(out)] == ["20260101_10-00-00", "my-named-resume"]
    invs = scan_output_dir(out)
    assert [len(i.saves) for i in invs] == [1, 0]
    assert [len(i.states) for i in invs] == [0, 1]
