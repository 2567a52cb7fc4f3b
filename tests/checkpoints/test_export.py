"""Export: a copy whose header carries the training metadata and whose tensor bytes are the source's."""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.checkpoints.export import ExportError, export_file
from dpipe_tui.checkpoints.header import load_header, read_header
from tests.checkpoints import shapes

if TYPE_CHECKING:
    from pathlib import Path


def _data(path: Path) -> bytes:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return raw[8 + n :]


def test_the_copy_has_the_metadata_and_identical_tensor_bytes(tmp_path: Path) -> None:
    src = shapes.comfy_save(tmp_path / "run" / "epoch3", rank=4) / "adapter_model.safetensors"
    before = src.read_bytes()
    dest_dir = tmp_path / "ComfyUI" / "models" / "loras"
    dest_dir.mkdir(parents=True)
    result = export_file(
        src, dest_dir / "my-style-e3.safetensors", {"ss_network_dim": "4", "format": "nope", "ss_epoch": "3"}
    )
    assert result.path.is_file()
    assert src.read_bytes() == before  # the source is untouched
    assert _data(result.path) == _data(src)
    header, start = load_header(result.path)
    assert start % 8 == 0
    assert header["__metadata__"] == {"format": "pt", "ss_network_dim": "4", "ss_epoch": "3"}
    src_header, _ = load_header(src)
    assert {k: v for k, v in header.items() if k != "__metadata__"} == {
        k: v for k, v in src_header.items() if k != "__metadata__"
    }
    info = read_header(result.path)
    assert (info.tensors, info.rank) == (6, 4)
    assert not list(dest_dir.glob(".*.tmp"))


def test_an_existing_file_is_never_overwritten_unless_forced(tmp_path: Path) -> None:
    src = shapes.kohya_save(tmp_path / "k") / "lora.safetensors"
    dest = tmp_path / "out.safetensors"
    dest.write_bytes(b"the user's file")
    with pytest.raises(ExportError, match="already exists: choose another --name, or add --force"):
        export_file(src, dest, {"ss_epoch": "1"})
    assert dest.read_bytes() == b"the user's file"
    export_file(src, dest, {"ss_epoch": "1"}, overwrite=True)
    assert (
        json.loads(dest.read_bytes()[8 : 8 + struct.unpack("<Q", dest.read_bytes()[:8])[0]])["__metadata__"][
            "ss_epoch"
        ]
        == "1"
    )


def test_a_source_that_is_not_safetensors_or_a_missing_folder_is_refused_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x01" * 20)
    with pytest.raises(ExportError, match="not a safetensors file"):
        export_file(bad, tmp_path / "x.safetensors", {})
    src = shapes.full_save(tmp_path / "f") / "model.safetensors"
    with pytest.raises(ExportError, match="is not a folder: create it first"):
        export_file(src, tmp_path / "nowhere" / "x.safetensors", {})
    assert not (tmp_path / "x.safetensors").exists()
