"""In-process checks of the engine's pieces: pipeline layers = diffusers forward, exact LoRA fusion,
adapter round trip, epoch planning, loader state, timestep sampling and config findings."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import torch

from dpipe_tui.engine import chroma, data, layers, lora
from dpipe_tui.engine.config import ConfigError, load_config, locate
from dpipe_tui.engine.demo import TINY_TRANSFORMER
from dpipe_tui.engine.trainer import DataState

if TYPE_CHECKING:
    from pathlib import Path

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

    profile = make_profile(tmp_path, assets, optimizer={"type": "adamw8bit"}, adapter={"alpha": 4})
    text = profile.read_text()
    with pytest.raises(ConfigError) as info:
        load_config(profile)
    keys = {p.key for p in info.value.problems}
    assert {"optimizer.type", "adapter.alpha"} <= keys
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


@pytest.mark.parametrize(("mbs", "gas", "world"), [(4, 1, 1), (2, 2, 1), (4, 1, 2), (3, 1, 1)])
def test_epoch_length_matches_the_supervisors_plan(
    tmp_path: Path, assets: Assets, mbs: int, gas: int, world: int
) -> None:
    from dpipe_tui.datasets import plan_for_profile
    from tests.engine.conftest import make_profile

    profile = make_profile(tmp_path, assets, micro_batch_size_per_gpu=mbs, gradient_accumulation_steps=gas)
    config = load_config(profile)
    from dpipe_tui.engine.setup import scan_datasets

    ours = data.plan_epoch(scan_datasets(config, False).train, mbs, gas, world)
    theirs = plan_for_profile(profile, base_dir=tmp_path, world_size=world)
    assert len(ours) == theirs.steps_per_epoch
    assert theirs.global_batch_size == mbs * gas * world
