"""In-process checks of the engine's pieces: pipeline layers = diffusers forward, exact LoRA fusion,
adapter round trip, epoch planning, loader state, timestep sampling and config findings."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch

from dpipe_tui.engine import chroma, data, layers, lora
from dpipe_tui.engine.config import ConfigError, load_config, locate
from dpipe_tui.engine.demo import TINY_TRANSFORMER
from dpipe_tui.engine.trainer import DataState

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.engine.conftest import Assets


def _model(seed: int = 0) -> Any:
    from diffusers import ChromaTransformer2DModel

    torch.manual_seed(seed)
    model: Any = ChromaTransformer2DModel(**TINY_TRANSFORMER)  # type: ignore[no-untyped-call]
    return model.eval()


def _inputs(bs: int = 2, text_len: int = 5) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(3)
    latents = torch.randn(bs, 16, 8, 12, generator=gen)
    text = torch.randn(bs, text_len, 32, generator=gen)
    return chroma.make_inputs(latents, text, torch.full((bs,), text_len), {}, gen)


def test_pipeline_layers_compute_the_diffusers_forward() -> None:
    model = _model()
    (x_t, text, mask, t, img_ids, txt_ids), _ = _inputs()
    expected = model(
        hidden_states=x_t, encoder_hidden_states=text, timestep=t, img_ids=img_ids, txt_ids=txt_ids
    ).sample
    acts: Any = (x_t, text, mask, t, img_ids, txt_ids)
    with torch.no_grad():
        for layer in layers.to_layers(model, None):
            acts = layer(acts)
    torch.testing.assert_close(acts, expected, rtol=1e-4, atol=1e-5)


def test_text_padding_is_masked_out_of_the_image_prediction() -> None:
    model = _model()
    (x_t, text, mask, t, img_ids, _txt_ids), _ = _inputs(bs=1, text_len=4)
    padded = torch.cat([text, torch.randn(1, 3, 32)], 1)
    mask_padded = torch.cat([mask[:, :4], torch.zeros(1, 3, dtype=torch.bool), mask[:, 4:]], 1)
    short_ids, long_ids = torch.zeros(4, 3), torch.zeros(7, 3)
    with torch.no_grad():
        a: Any = (x_t, text, mask, t, img_ids, short_ids)
        b: Any = (x_t, padded, mask_padded, t, img_ids, long_ids)
        for layer in layers.to_layers(model, None):
            a, b = layer(a), layer(b)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def _lora_model(rank: int = 3) -> tuple[Any, Any]:
    model = _model()
    cfg = lora.configure(model, {"rank": rank}, torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_()
    return model, cfg


def test_fused_bfl_lora_is_exactly_the_separate_loras() -> None:
    model, _ = _lora_model()
    sd = lora.peft_state_dict(list(model.named_parameters()))
    bfl = lora.to_bfl(sd, model)

    def delta(prefix: str) -> torch.Tensor:
        return sd[f"{prefix}.lora_B.weight"] @ sd[f"{prefix}.lora_A.weight"]

    fused = bfl["diffusion_model.double_blocks.1.txt_attn.qkv.lora_B.weight"]
    fused = fused @ bfl["diffusion_model.double_blocks.1.txt_attn.qkv.lora_A.weight"]
    parts = [delta(f"transformer_blocks.1.attn.{p}") for p in ("add_q_proj", "add_k_proj", "add_v_proj")]
    torch.testing.assert_close(fused, torch.cat(parts, 0))
    linear1 = bfl["diffusion_model.single_blocks.0.linear1.lora_B.weight"]
    linear1 = linear1 @ bfl["diffusion_model.single_blocks.0.linear1.lora_A.weight"]
    names = ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")
    torch.testing.assert_close(
        linear1, torch.cat([delta(f"single_transformer_blocks.0.{n}") for n in names], 0)
    )
    assert bfl["diffusion_model.single_blocks.0.linear1.lora_A.weight"].shape == (12, 32)


def test_saved_adapter_loads_back_exactly(tmp_path: Path) -> None:
    model, cfg = _lora_model()
    lora.save_adapter(
        tmp_path, lora.peft_state_dict(list(model.named_parameters())), model, cfg, torch.float32
    )
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["rank_pattern"]) == (3, 3, {"qkv": 9, "linear1": 12})
    fresh = _model(seed=5)
    lora.configure(fresh, {"rank": 3}, torch.float32)
    lora.load_adapter(fresh, str(tmp_path))
    trained = dict(model.named_parameters())
    for name, p in fresh.named_parameters():
        if "lora_" in name:
            torch.testing.assert_close(p, trained[name])


def _scan(tmp_path: Path, sizes: list[tuple[int, int]], **ds: Any) -> data.DirectoryScan:
    from PIL import Image

    for i, size in enumerate(sizes):
        Image.new("RGB", size).save(tmp_path / f"img{i}.png")
        (tmp_path / f"img{i}.txt").write_text(f"tag{i}, red, blue")
    (tmp_path / "nocaption.png").write_bytes((tmp_path / "img0.png").read_bytes())
    return data.scan_directory({"path": str(tmp_path)}, {"resolutions": [64], **ds})


def test_buckets_and_epoch_plan_follow_diffusion_pipe(tmp_path: Path) -> None:
    scan = _scan(tmp_path, [(64, 64)] * 5 + [(128, 64)] * 3, enable_ar_bucket=True, min_ar=0.5, max_ar=2.0,
                 num_ar_buckets=3, num_repeats=2)  # fmt: skip
    assert sorted(scan.samples_by_bucket) == [(1.0, 64, 64, 1), (2.0, 96, 48, 1)]
    assert len(scan.images) == 8  # the image without a caption is skipped
    plan = data.plan_epoch([scan], micro_batch_size=2, gas=2, dp_world=1)
    # 10 square items → 2 batches of 4 (2 dropped); 6 wide items → 1 batch (2 dropped)
    assert len(plan) == 3
    assert all(len(b) == 4 for b in plan.batches)
    assert plan.rank_slice(0, 0) == plan.batches[0]
    assert data.plan_epoch([scan], micro_batch_size=4, gas=1, dp_world=2).dropped == [(2.0, 96, 48, 1)]


def test_shuffle_tags_and_prefix_make_caption_variants(tmp_path: Path) -> None:
    scan = _scan(tmp_path, [(64, 64)], cache_shuffle_num=3, caption_prefix="photo: ")
    captions = [s.caption for s in scan.samples_by_bucket[(1.0, 64, 64, 1)]]
    assert len(captions) == 3
    assert all(
        c.startswith("photo: ") and sorted(c[7:].split(", ")) == ["blue", "red", "tag0"] for c in captions
    )
    # shuffle_tags alone: one shuffled variant per image, the same one in every resolution's bucket
    (tmp_path / "two").mkdir()
    scan = _scan(tmp_path / "two", [(64, 64)] * 4, shuffle_tags=True, resolutions=[64, 128])
    assert sorted(scan.samples_by_bucket) == [(1.0, 64, 64, 1), (1.0, 128, 128, 1)]
    small, large = (
        sorted((s.image, s.caption) for s in scan.samples_by_bucket[b])
        for b in ((1.0, 64, 64, 1), (1.0, 128, 128, 1))
    )
    assert small == large
    assert len(small) == 4
    originals = {f"img{i}.png": f"tag{i}, red, blue" for i in range(4)}
    for image, caption in small:
        assert sorted(caption.split(", ")) == sorted(originals[Path(image).name].split(", "))
    assert any(caption != originals[Path(image).name] for image, caption in small)


def test_data_state_round_trips_like_diffusion_pipes_loader() -> None:
    state = DataState(batches=3)
    for _ in range(4):
        state.advance()
    assert (state.epoch, state.index) == (2, 1)
    saved = state.state_dict()
    assert saved == {"epoch": 2, "num_batches_pulled": 2}
    other = DataState(batches=3)
    other.load_state_dict(saved)
    assert (other.epoch, other.index) == (2, 1)
    for _ in range(2):
        state.advance()
    assert state.state_dict() == {"epoch": 3, "num_batches_pulled": 0}


@pytest.mark.parametrize(
    ("cfg", "low", "high"),
    [
        ({"timestep_sample_method": "uniform"}, 0.0, 1.0),
        ({"shift": 3.0}, 0.0, 1.0),
        ({"flux_shift": True}, 0.0, 1.0),
    ],
)
def test_timesteps_stay_in_range(cfg: dict[str, Any], low: float, high: float) -> None:
    gen = torch.Generator().manual_seed(0)
    t = chroma.sample_timesteps(cfg, 256, 64, 64, gen, None)
    assert bool(((t > low) & (t < high)).all())
    median = chroma.sample_timesteps(cfg, 1, 64, 64, gen, 0.5)
    if "shift" in cfg:
        assert median.item() == pytest.approx(0.75)  # 0.5·3 / (1 + 2·0.5)


def test_bad_config_lists_every_finding_with_location(tmp_path: Path, assets: Assets) -> None:
    from tests.engine.conftest import make_profile

    profile = make_profile(
        tmp_path, assets, epochs="many", optimizer={"type": "adamw8bit"}, adapter={"alpha": 4}
    )
    text = profile.read_text()
    with pytest.raises(ConfigError) as info:
        load_config(profile)
    keys = {p.key for p in info.value.problems}
    assert {"epochs", "optimizer.type", "adapter.alpha"} <= keys
    # only the project's validator checks types: it ran, with its message and location
    epochs = next(p for p in info.value.problems if p.key == "epochs")
    assert "valid integer" in epochs.message
    assert (epochs.line, epochs.column) == locate(text, "epochs")
    problem = next(p for p in info.value.problems if p.key == "optimizer.type")
    assert (problem.line, problem.column) == locate(text, "optimizer.type")
    assert problem.line is not None
    assert text.splitlines()[problem.line - 1].startswith("type = 'adamw8bit'")


def test_relative_paths_resolve_against_the_profile_folder(tmp_path: Path, assets: Assets) -> None:
    from tests.engine.conftest import make_profile

    profile = make_profile(tmp_path, assets)
    text = profile.read_text().replace(str(tmp_path / "dataset.toml"), "dataset.toml")
    profile.write_text(text.replace(str(tmp_path / "output"), "output"))
    config = load_config(profile)
    assert config["dataset"] == str(tmp_path / "dataset.toml")
    assert config["output_dir"] == str(tmp_path / "output")


@pytest.mark.parametrize(
    ("mbs", "gas", "world", "ds"),
    [
        (4, 1, 1, {}),
        (2, 2, 1, {}),
        (4, 1, 2, {}),
        (3, 1, 1, {}),
        (4, 1, 1, {"resolutions": [64, 96], "shuffle_tags": True}),
    ],
)
def test_epoch_length_matches_the_supervisors_plan(
    tmp_path: Path, assets: Assets, mbs: int, gas: int, world: int, ds: dict[str, Any]
) -> None:
    from dpipe_tui.datasets import plan_for_profile
    from tests.engine.conftest import make_profile

    profile = make_profile(
        tmp_path, assets, micro_batch_size_per_gpu=mbs, gradient_accumulation_steps=gas, dataset_overrides=ds
    )
    config = load_config(profile)
    from dpipe_tui.engine.setup import scan_datasets

    ours = data.plan_epoch(scan_datasets(config, False).train, mbs, gas, world)
    theirs = plan_for_profile(profile, base_dir=tmp_path, world_size=world)
    assert len(ours) == theirs.steps_per_epoch
    assert theirs.global_batch_size == mbs * gas * world
    if "resolutions" in ds:  # both resolutions train, each with its own size buckets
        assert {b[0].bucket[1:3] for b in ours.batches} >= {(64, 64), (96, 96)}


@pytest.fixture
def single_process_group() -> Iterator[None]:
    """A real one-rank gloo process group, as the engine has under the launcher."""
    import torch.distributed as tdist

    from tests.engine.conftest import free_port

    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    yield
    tdist.destroy_process_group()


class _RecordingEngine:
    """Stands in for DeepSpeed's engine: records which steps were checkpointed."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def save_checkpoint(self, path: str, *, client_state: dict[str, Any], **_: Any) -> None:
        self.steps.append(client_state["step"])


@pytest.mark.usefixtures("single_process_group")
def test_checkpoint_every_n_minutes_follows_train_pys_clock(tmp_path: Path) -> None:
    from dpipe_tui.engine.saver import Saver

    now = [1000.0]
    engine = _RecordingEngine()
    config = {"epochs": 3, "checkpoint_every_n_minutes": 1, "checkpoint_every_n_epochs": 2}
    state = DataState(batches=2)
    saver = Saver(config, tmp_path, engine, None, None, state, clock=lambda: now[0])
    # step: (clock, checkpoint expected); the first step starts the clock, then strictly > 1 minute
    timeline = {1: (1000.0, False), 2: (1059.0, False), 3: (1060.0, False), 4: (1060.5, True),
                5: (1100.0, False), 6: (1120.6, True)}  # fmt: skip
    for step, (t, due) in timeline.items():
        now[0] = t
        assert saver.process_step(step, 4 * step) == (due, False), step
    assert engine.steps == [4, 6]
    # an epoch checkpoint restarts the clock (train.py's need_to_checkpoint(epoch))
    state.epoch = 3
    now[0] = 1200.0
    assert saver.process_epoch(2, 7, 28) == (3, True, False)
    now[0] = 1250.0
    assert saver.process_step(8, 32) == (False, False)
    now[0] = 1260.5
    assert saver.process_step(9, 36) == (True, False)
    assert engine.steps == [4, 6, 7, 9]
    assert saver.process_epoch(3, 9, 36) == (3, False, False)  # no epoch change, nothing happens


@pytest.mark.usefixtures("single_process_group")
@pytest.mark.parametrize(("minutes", "expected"), [(0, [2, 3]), (None, [])])
def test_checkpoint_every_zero_minutes_is_every_step_and_only_absent_is_off(
    tmp_path: Path, minutes: int | None, expected: list[int]
) -> None:
    from dpipe_tui.engine.saver import Saver

    config: dict[str, object] = {"epochs": 3}
    if minutes is not None:
        config["checkpoint_every_n_minutes"] = minutes
    engine = _RecordingEngine()
    now = [1000.0]
    saver = Saver(config, tmp_path, engine, None, None, DataState(batches=2), clock=lambda: now[0])
    for step in (1, 2, 3):  # train.py: the first step starts the clock, then any time > 0 minutes
        now[0] += 1.0
        saver.process_step(step, 4 * step)
    assert engine.steps == expected


def _flux_shifted(t: float, image_tokens: int) -> float:
    """diffusion-pipe models/chroma.py, written out: mu on the line (256, 0.5)-(4096, 1.15), then
    time_shift(mu, 1.0, t) = e^mu / (e^mu + (1/t - 1))."""
    mu = 0.5 + (1.15 - 0.5) * (image_tokens - 256) / (4096 - 256)
    return math.exp(mu) / (math.exp(mu) + (1 / t - 1))


@pytest.mark.parametrize(
    ("latent_hw", "image_tokens", "quantile", "value"),
    [
        ((64, 64), 1024, 0.5, 0.6524895),  # a 512 px square: mu = 0.63, t = sigmoid(0.63)
        ((128, 128), 4096, 0.25, 0.5128441),  # 1024 px: mu = 1.15
        ((32, 64), 512, 0.8, 0.8732082),  # 256x512 px: mu = 0.5433...
    ],
)
def test_flux_shift_is_diffusion_pipes_at_the_sequence_length(
    latent_hw: tuple[int, int], image_tokens: int, quantile: float, value: float
) -> None:
    h, w = latent_hw
    assert (h // 2) * (w // 2) == image_tokens  # 2x2 patches of the latent
    assert _flux_shifted(quantile, image_tokens) == pytest.approx(value, abs=1e-6)
    latents = torch.zeros(2, 16, h, w)
    text = torch.zeros(2, 3, 32)
    cfg = {"timestep_sample_method": "uniform", "flux_shift": True}
    features, _ = chroma.make_inputs(latents, text, torch.full((2,), 3), cfg, torch.Generator(), quantile)
    torch.testing.assert_close(features[3], torch.full((2,), value), rtol=0, atol=1e-6)
    # shift wins over flux_shift when both are set (diffusion-pipe checks `shift` first)
    both = cfg | {"shift": 3.0}
    features, _ = chroma.make_inputs(latents, text, torch.full((2,), 3), both, torch.Generator(), quantile)
    expected = quantile * 3 / (1 + 2 * quantile)
    torch.testing.assert_close(features[3], torch.full((2,), expected), rtol=0, atol=1e-6)
