"""The pre-flight scan on real files: counts, captions, masks, controls, unreadable media, videos."""

from __future__ import annotations

import json
import tarfile
from typing import TYPE_CHECKING

import pytest
from PIL import Image, ImageFile

from dpipe_tui.datasets import DatasetConfigError, scan_dataset
from tests.datasets.helpers import write_image, write_mp4, write_toml

if TYPE_CHECKING:
    from pathlib import Path

    from dpipe_tui.datasets import DatasetScan

BASIC = "resolutions = [512]\n[[directory]]\npath = 'images'\n"


def _scan(tmp_path: Path, text: str = BASIC, model_type: str | None = "flux") -> DatasetScan:
    cfg = write_toml(tmp_path / "dataset.toml", text)
    return scan_dataset(cfg, base_dir=tmp_path, model_type=model_type)


def test_counts_captions_and_ignored_files(tmp_path: Path, ds_dir: Path) -> None:
    write_image(ds_dir / "a.png", (64, 64), "a cat")
    write_image(ds_dir / "b.jpg", (64, 48), "")  # empty caption file: trains with ""
    write_image(ds_dir / "c.webp", (48, 64))  # no caption: skipped by default
    write_image(ds_dir / "d.e.png", (64, 64))
    (ds_dir / "d.e.txt").write_text("dotted stem", encoding="utf-8")  # a.b.png -> a.b.txt
    (ds_dir / "notes.json").write_text("{}", encoding="utf-8")
    (ds_dir / "sub").mkdir()
    write_image(ds_dir / "sub" / "x.png", (64, 64), "ignored, not recursive")

    d = _scan(tmp_path).directories[0]

    assert (d.files, d.ignored_files, d.images, d.items_kept) == (8, 4, 4, 3)
    assert (d.captions.txt, d.captions.empty, d.captions.missing) == (2, 1, 1)
    assert [(i.name, i.reason) for i in d.issues] == [("c.webp", "missing_caption")]
    assert any("empty caption" in w for w in d.warnings)


def test_skip_empty_caption_false_keeps_uncaptioned_items(tmp_path: Path, ds_dir: Path) -> None:
    write_image(ds_dir / "a.png", (64, 64))
    d = _scan(tmp_path, BASIC + "skip_empty_caption = false\n").directories[0]
    assert (d.items_kept, d.captions.missing, d.issues) == (1, 1, ())


def test_captions_json_overrides_txt_and_counts_each_caption(tmp_path: Path, ds_dir: Path) -> None:
    write_image(ds_dir / "a.png", (64, 64), "ignored because captions.json exists")
    write_image(ds_dir / "b.png", (64, 64))
    write_image(ds_dir / "c.png", (64, 64))
    (ds_dir / "captions.json").write_text(json.dumps({"a.png": ["one", "two", "three"], "b.png": ["x"]}))

    d = _scan(tmp_path).directories[0]

    assert d.has_captions_json
    assert (d.captions.json, d.captions.txt, d.captions.missing, d.items_kept) == (2, 0, 1, 2)
    assert sum(c.entries for c in d.contributions) == 4  # 3 captions + 1 caption


def test_captions_json_entry_that_is_not_a_list_is_fatal(tmp_path: Path, ds_dir: Path) -> None:
    write_image(ds_dir / "a.png", (64, 64))
    (ds_dir / "captions.json").write_text(json.dumps({"a.png": "not a list"}))
    scan = _scan(tmp_path)
    assert not scan.ok
    assert scan.issues[0].reason == "bad_caption_entry"


def test_unreadable_and_hidden_files_are_skipped(tmp_path: Path, ds_dir: Path) -> None:
    write_image(ds_dir / "good.png", (64, 64), "ok")
    (ds_dir / "broken.png").write_bytes(b"definitely not a png")
    (ds_dir / "broken.txt").write_text("caption", encoding="utf-8")
    (ds_dir / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    d = _scan(tmp_path, BASIC + "skip_empty_caption = false\n").directories[0]
    assert d.items_kept == 1
    assert sorted((i.name, i.reason) for i in d.issues) == [
        (".DS_Store", "unreadable"),
        ("broken.png", "unreadable"),
    ]


def test_masks_by_stem_default_and_size_mismatch(tmp_path: Path, ds_dir: Path) -> None:
    masks = tmp_path / "masks"
    for name in ("a", "b", "c"):
        write_image(ds_dir / f"{name}.png", (64, 48), "cap")
    write_image(masks / "a.jpg", (64, 48))  # any extension, same stem
    write_image(masks / "b.png", (32, 32))  # wrong size: ValueError while caching
    text = BASIC + "mask_path = 'masks'\n"

    d = _scan(tmp_path, text).directories[0]

    assert (d.masks.matched, d.masks.missing) == (2, 1)
    assert [(i.name, i.reason) for i in d.issues] == [("b.png", "mask_size")]
    assert d.items_kept == 2

    write_image(tmp_path / "default.png", (64, 48))
    d = _scan(tmp_path, text + "default_mask_file = 'default.png'\n").directories[0]
    assert (d.masks.matched, d.masks.default, d.masks.missing) == (2, 1, 0)


def test_control_files_required_for_every_target(tmp_path: Path, ds_dir: Path) -> None:
    controls = tmp_path / "controls"
    write_image(ds_dir / "a.png", (64, 64), "cap")
    write_image(ds_dir / "b.png", (64, 64), "cap")
    write_image(controls / "a.jpg", (64, 64))
    scan = _scan(tmp_path, BASIC + "control_path = 'controls'\n")
    d = scan.directories[0]
    assert d.controls_matched == 1
    assert [(i.name, i.reason, i.fatal) for i in d.issues] == [("b.png", "missing_control", True)]
    assert not scan.ok
    assert any("No control file exists" in e for e in scan.all_errors)


def test_invalid_paths_and_empty_directory_are_errors(tmp_path: Path, ds_dir: Path) -> None:
    scan = _scan(tmp_path, BASIC + "mask_path = 'nope'\n")
    assert any("Invalid mask_path" in e for e in scan.all_errors)
    assert any("had no images/videos" in e for e in scan.all_errors)
    scan = _scan(tmp_path, "resolutions = [512]\n[[directory]]\npath = 'missing'\n")
    assert any("Invalid path" in e for e in scan.all_errors)


def test_multi_frame_webp_is_fatal(tmp_path: Path, ds_dir: Path) -> None:
    frames = [Image.new("RGB", (32, 32), (i * 50, 0, 0)) for i in range(3)]
    frames[0].save(ds_dir / "anim.webp", save_all=True, append_images=frames[1:])
    (ds_dir / "anim.txt").write_text("cap", encoding="utf-8")
    scan = _scan(tmp_path)
    assert [i.reason for i in scan.issues] == ["webp_animation"]
    assert not scan.ok


def test_tar_members_are_items_with_captions_json(tmp_path: Path, ds_dir: Path) -> None:
    staging = tmp_path / "staging"
    write_image(staging / "m1.png", (64, 64))
    write_image(staging / "m2.png", (128, 64))
    with tarfile.open(ds_dir / "shard.tar", "w") as t:
        t.add(staging / "m1.png", arcname="m1.png")
        t.add(staging / "m2.png", arcname="m2.png")
    (ds_dir / "captions.json").write_text(json.dumps({"m1.png": ["a"], "m2.png": ["b", "c"]}))
    d = _scan(tmp_path).directories[0]
    assert (d.tar_members, d.items_kept) == (2, 2)
    assert sum(c.entries for c in d.contributions) == 3


def test_video_frames_from_mp4_header_and_too_short(tmp_path: Path, ds_dir: Path) -> None:
    write_mp4(ds_dir / "long.mp4", width=640, height=360, frames=96, fps=24)  # 4 s -> 64 frames at 16 fps
    write_mp4(ds_dir / "short.mp4", width=640, height=360, frames=12, fps=24)  # 8 frames at 16 fps
    for stem in ("long", "short"):
        (ds_dir / f"{stem}.txt").write_text("cap", encoding="utf-8")
    text = "resolutions = [256]\nframe_buckets = [33, 49]\n[[directory]]\npath = 'images'\n"

    wan = _scan(tmp_path, text, model_type="wan").directories[0]
    assert wan.videos == 2
    assert [c.key.frames for c in wan.contributions] == [49]
    assert [(i.name, i.reason) for i in wan.issues] == [("short.mp4", "too_short")]

    flux = _scan(tmp_path, text, model_type="flux").directories[0]  # image model: videos fail to open
    assert {i.reason for i in flux.issues} == {"no_video_support"}

    unknown = _scan(tmp_path, text, model_type=None)
    assert {i.reason for i in unknown.issues} == {"unknown_frames"}
    assert unknown.warnings


def test_scan_never_decodes_pixels(tmp_path: Path, ds_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        write_image(ds_dir / f"{i}.png", (64 + i * 16, 64), "cap")
    write_image(ds_dir / "j.jpg", (80, 40), "cap")
    # A valid header followed by garbage: opening works, decoding would raise.
    good = (ds_dir / "0.png").read_bytes()
    (ds_dir / "truncated.png").write_bytes(good[:60] + b"\x00" * 40)
    (ds_dir / "truncated.txt").write_text("cap", encoding="utf-8")
    loads: list[str] = []
    real_load = ImageFile.ImageFile.load

    def counting_load(self: ImageFile.ImageFile) -> object:
        loads.append(str(self.filename))
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    d = _scan(tmp_path).directories[0]
    assert loads == []
    assert d.items_kept == 7  # the truncated file counts: diffusion-pipe also only opens the header


def test_bad_toml_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetConfigError, match="syntax"):
        _scan(tmp_path, "resolutions = [\n")
    with pytest.raises(DatasetConfigError, match=r"directory\.0\.path"):
        _scan(tmp_path, "resolutions = [512]\n[[directory]]\nnum_repeats = 1\n")


def test_unparsed_video_header_is_unknown_not_unreadable(tmp_path: Path, ds_dir: Path) -> None:
    (ds_dir / "frag.mp4").write_bytes(b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00garbage")
    (ds_dir / "clip.mkv").write_bytes(b"\x1a\x45\xdf\xa3")
    issues = _scan(tmp_path, BASIC + "skip_empty_caption = false\n", model_type="wan").issues
    assert sorted((i.name, i.reason) for i in issues) == [
        ("clip.mkv", "unknown_frames"),
        ("frag.mp4", "unknown_frames"),
    ]
