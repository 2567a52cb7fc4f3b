"""In-process checks of the engine's pieces: pipeline layers = diffusers forward, exact LoRA fusion,
adapter round trip, epoch planning, loader state, timestep sampling and config findings."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
import torch
from safetensors.torch import save_file

from dpipe_tui.engine import bfl, chroma, data, layers, lora
from dpipe_tui.engine.config import ConfigError, load_config, locate
from dpipe_tui.engine.demo import TINY_TRANSFORMER
from dpipe_tui.engine.trainer import DataState
from tests.engine.bfl_shapes import bfl_checkpoint_shapes, diffusion_pipe_lora_shapes

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.engine.conftest import Assets


CPU = torch.device("cpu")


def _split_model(seed: int = 0) -> Any:
    """diffusers' Chroma as diffusers builds it: separate q/k/v and proj_mlp Linears."""
    from diffusers import ChromaTransformer2DModel

    torch.manual_seed(seed)
    model: Any = ChromaTransformer2DModel(**TINY_TRANSFORMER)  # type: ignore[no-untyped-call]
    return model.eval()


def _model(seed: int = 0) -> Any:
    """The engine's model: the same weights, with the original layout's fused Linears."""
    return bfl.fuse_modules(_split_model(seed))


def _inputs(bs: int = 2, text_len: int = 5) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(3)
    latents = torch.randn(bs, 16, 8, 12, generator=gen)
    text = torch.randn(bs, text_len, 32, generator=gen)
    return chroma.make_inputs(latents, text, torch.full((bs,), text_len), {}, gen)


def _run_layers(model: Any, acts: Any) -> torch.Tensor:
    with torch.no_grad():
        for layer in layers.to_layers(model, None):
            acts = layer(acts)
    return cast("torch.Tensor", acts)


def test_fused_pipeline_layers_compute_the_split_diffusers_forward() -> None:
    split = _split_model()
    (x_t, text, mask, t, img_ids, txt_ids), _ = _inputs()
    with torch.no_grad():
        expected = split(
            hidden_states=x_t, encoder_hidden_states=text, timestep=t, img_ids=img_ids, txt_ids=txt_ids
        ).sample
    fused = _model()
    assert not any(n.endswith(("to_q.weight", "proj_mlp.weight")) for n, _ in fused.named_parameters())
    # fp32, the same weights rows-concatenated: equal to 1e-5 (measured: exactly equal on this CPU)
    got = _run_layers(fused, (x_t, text, mask, t, img_ids, txt_ids))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_text_padding_is_masked_out_of_the_image_prediction() -> None:
    model = _model()
    (x_t, text, mask, t, img_ids, _txt_ids), _ = _inputs(bs=1, text_len=4)
    padded = torch.cat([text, torch.randn(1, 3, 32)], 1)
    mask_padded = torch.cat([mask[:, :4], torch.zeros(1, 3, dtype=torch.bool), mask[:, 4:]], 1)
    a = _run_layers(model, (x_t, text, mask, t, img_ids, torch.zeros(4, 3)))
    b = _run_layers(model, (x_t, padded, mask_padded, t, img_ids, torch.zeros(7, 3)))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_every_parameter_has_its_original_layout_name_and_back() -> None:
    model = _model()
    names = [n for n, _ in model.named_parameters()]
    as_bfl = [bfl.to_bfl(n) for n in names]
    assert [bfl.from_bfl(n) for n in as_bfl] == names
    assert set(as_bfl) == set(bfl_checkpoint_shapes(hidden=32, mlp=128, depth=2, single=2, context=32))
    shapes = dict(zip(as_bfl, (tuple(p.shape) for _, p in model.named_parameters()), strict=True))
    assert shapes == bfl_checkpoint_shapes(hidden=32, mlp=128, depth=2, single=2, context=32)


def test_checkpoints_load_from_either_layout_and_full_saves_are_original_layout(tmp_path: Path) -> None:
    split, fused = _split_model(seed=2), _model(seed=2)
    expected = dict(fused.named_parameters())
    # diffusers layout (split q/k/v), config from the metadata
    save_file(
        {k: v.contiguous() for k, v in split.state_dict().items()},
        str(tmp_path / "diffusers.safetensors"),
        {"format": "pt", chroma.CONFIG_METADATA_KEY: json.dumps(TINY_TRANSFORMER)},
    )
    # the original layout as a full fine-tune saves it: BFL names, no config (inferred from shapes)
    original = chroma.bfl_state_dict({k: v.detach() for k, v in expected.items()})
    assert {k: tuple(v.shape) for k, v in original.items()} == bfl_checkpoint_shapes(
        hidden=32, mlp=128, depth=2, single=2, context=32
    )
    save_file(original, str(tmp_path / "bfl.safetensors"), {"format": "pt"})
    prefixed = {f"model.diffusion_model.{k}": v for k, v in original.items()}  # as some releases ship
    save_file(prefixed, str(tmp_path / "prefixed.safetensors"), {"format": "pt"})
    for name in ("diffusers", "bfl", "prefixed"):
        cfg = {"transformer_path": str(tmp_path / f"{name}.safetensors")}
        loaded = chroma.load_transformer(cfg, random_init=False, seed=0, device=CPU, dtype=torch.float32)
        got = dict(loaded.named_parameters())
        assert got.keys() == expected.keys(), name
        assert all(torch.equal(got[k], expected[k]) for k in got), name
    broken = dict(original)
    broken["double_blocks.0.img_attn.extra.weight"] = torch.zeros(1)
    save_file(broken, str(tmp_path / "broken.safetensors"))
    with pytest.raises(RuntimeError, match="not an original-layout Chroma checkpoint"):
        chroma.load_transformer(
            {"transformer_path": str(tmp_path / "broken.safetensors")},
            random_init=False, seed=0, device=CPU, dtype=torch.float32,
        )  # fmt: skip


def _lora_model(rank: int = 3, seed: int = 0, **adapter: Any) -> tuple[Any, Any]:
    model = _model(seed)
    cfg = lora.configure(model, {"rank": rank, **adapter}, torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_()
    return model, cfg


def test_saved_lora_is_diffusion_pipes_key_for_key(tmp_path: Path) -> None:
    model, cfg = _lora_model(rank=8)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    expected = diffusion_pipe_lora_shapes(hidden=32, mlp=128, depth=2, single=2, rank=8)
    assert trainable == sum(math.prod(s) for s in expected.values()) == 23_552
    lora.save_adapter(tmp_path, lora.peft_state_dict(list(model.named_parameters())), cfg, torch.bfloat16)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "adapter_model.safetensors"), "pt") as fh:
        assert fh.metadata() == {"format": "pt"}
        saved = {k: (tuple(fh.get_slice(k).get_shape()), fh.get_slice(k).get_dtype()) for k in fh.keys()}  # noqa: SIM118
    assert saved == {k: (shape, "BF16") for k, shape in expected.items()}
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (8, 8)
    assert config["rank_pattern"] == config["alpha_pattern"] == {}
    modules = {k.removeprefix("diffusion_model.").rsplit(".lora_", 1)[0] for k in expected}
    assert sorted(config["target_modules"]) == sorted(modules)


def test_lora_round_trips_and_a_diffusion_pipe_lora_loads_at_its_merged_loss(tmp_path: Path) -> None:
    model, cfg = _lora_model(seed=0)
    tensors = lora.peft_state_dict(list(model.named_parameters()))
    lora.save_adapter(tmp_path / "ours", tensors, cfg, torch.float32)
    fresh, _ = _lora_model(seed=5)
    lora.load_adapter(fresh, str(tmp_path / "ours"))
    trained = dict(model.named_parameters())
    for name, p in fresh.named_parameters():
        if "lora_" in name:
            torch.testing.assert_close(p, trained[name])
    # a LoRA written as diffusion-pipe writes it (shapes from the BFL module sizes, random values)
    gen = torch.Generator().manual_seed(11)
    theirs = {
        k: torch.randn(shape, generator=gen) * 0.05
        for k, shape in diffusion_pipe_lora_shapes(hidden=32, mlp=128, depth=2, single=2, rank=3).items()
    }
    folder = tmp_path / "theirs"
    folder.mkdir()
    save_file(theirs, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    (folder / "adapter_config.json").write_text(json.dumps({"r": 3, "lora_alpha": 3, "peft_type": "LORA"}))
    with_lora, _ = _lora_model(seed=0)
    lora.load_adapter(with_lora, str(folder))
    merged = _model(seed=0)
    lora.merge_adapter(merged, str(folder))
    features, (target, _) = _inputs()
    a, b = _run_layers(with_lora, features), _run_layers(merged, features)
    base = _run_layers(_model(seed=0), features)
    assert (a - base).abs().max() > 1e-3  # the LoRA changes the prediction ...
    loss_a, loss_b = ((a - target) ** 2).mean(), ((b - target) ** 2).mean()
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-5, atol=1e-6)  # ... exactly as merging it does
    with pytest.raises(RuntimeError, match="set \\[adapter\\] rank"):
        lora.load_adapter(_lora_model(rank=4)[0], str(folder))


def test_exclude_modules_match_diffusion_pipes_names() -> None:
    model, cfg = _lora_model(exclude_modules=r"single_blocks\..*")
    adapted = {n.split(".lora_")[0] for n, _ in model.named_parameters() if "lora_" in n}
    assert adapted
    assert not any(n.startswith("single_transformer_blocks") for n in adapted)
    assert cfg.exclude_modules == r"single_blocks\..*"
    with pytest.raises(ValueError, match="excludes every module"):
        _lora_model(exclude_modules=".*")


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
    ("mbs", "gas", "world", "ds", "main", "steps"),
    [
        (4, 1, 1, {}, {}, 6),
        (2, 2, 1, {}, {}, 6),
        (4, 1, 2, {}, {}, 2),
        (3, 1, 1, {}, {}, 7),
        (4, 1, 1, {"resolutions": [64, 96], "shuffle_tags": True}, {}, 12),
        (4, 1, 1, {"subsample_ratio": 0.5}, {}, 3),  # the first half of the interleaved batches
        (4, 1, 1, {"subsample_ratio": 0}, {}, 6),  # 0 is off, as diffusion-pipe's walrus
        (4, 1, 1, {}, {"image_micro_batch_size_per_gpu": 2}, 12),  # images use their own size
        (4, 2, 1, {"subsample_ratio": 0.34}, {"image_micro_batch_size_per_gpu": 1}, 4),
    ],
)
def test_epoch_length_matches_the_supervisors_plan(
    tmp_path: Path,
    assets: Assets,
    mbs: int,
    gas: int,
    world: int,
    ds: dict[str, Any],
    main: dict[str, Any],
    steps: int,
) -> None:
    from dpipe_tui.datasets import plan_for_profile
    from dpipe_tui.engine.setup import scan_datasets
    from dpipe_tui.engine.trainer import train_micro_batch
    from tests.engine.conftest import make_profile

    profile = make_profile(
        tmp_path,
        assets,
        micro_batch_size_per_gpu=mbs,
        gradient_accumulation_steps=gas,
        dataset_overrides=ds,
        **main,
    )
    config = load_config(profile)
    scans = scan_datasets(config, False)
    ours = data.plan_epoch(scans.train, train_micro_batch(config), gas, world, scans.train_subsample)
    theirs = plan_for_profile(profile, base_dir=tmp_path, world_size=world)
    assert len(ours) == theirs.steps_per_epoch == steps
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


def test_uncond_fraction_drops_captions_at_that_rate_and_repeats_on_resume() -> None:
    from dpipe_tui.engine import inputs

    bucket = (1.0, 64, 64, 1)
    source = inputs.Source()
    samples = [data.Sample(f"img{i}.png", bucket, f"caption {i}") for i in range(8)]
    for s in samples:
        source.latents[(bucket, s.image)] = torch.zeros(16, 8, 8)
        source.text[inputs._caption_key(s.caption)] = torch.ones(3, 32)
    source.text[inputs._caption_key("")] = torch.zeros(2, 32)  # the empty caption: 2 tokens here
    empty = total = 0
    for batch in range(250):
        parts = (7, 1, batch, 0)
        ((features, _),) = inputs.micro_batches(source, samples, 1, {}, parts, uncond_fraction=0.25)
        again = inputs.micro_batches(source, samples, 1, {}, parts, uncond_fraction=0.25)[0][0]
        lengths = (features[2][:, : features[1].shape[1]]).sum(1)
        torch.testing.assert_close(features[1], again[1])  # the same draw for the same step
        empty += int((lengths == 2).sum())
        total += len(samples)
    assert abs(empty / total - 0.25) < 0.03  # 2,000 draws: 3 sigma is 0.029
    ((never, _),) = inputs.micro_batches(source, samples, 1, {}, (7, 1, 0, 0))
    assert int((never[2][:, : never[1].shape[1]].sum(1) == 2).sum()) == 0


def test_huber_and_smooth_l1_losses_replace_mse_when_set() -> None:
    gen = torch.Generator().manual_seed(0)
    output, target = torch.randn(2, 6, 8, generator=gen) * 3, torch.randn(2, 6, 8, generator=gen)
    labels = (target, torch.tensor([]))
    mse = layers.loss_for({})(output, labels)
    huber = layers.loss_for({"huber_delta": 0.5})(output, labels)
    smooth = layers.loss_for({"smooth_l1_beta": 0.5})(output, labels)
    torch.testing.assert_close(mse, torch.nn.functional.mse_loss(output, target))
    torch.testing.assert_close(huber, torch.nn.functional.huber_loss(output, target, delta=0.5))
    torch.testing.assert_close(smooth, torch.nn.functional.smooth_l1_loss(output, target, beta=0.5))
    assert len({round(float(x), 4) for x in (mse, huber, smooth)}) == 3
    mask = torch.zeros(2, 6, 8)
    mask[:, :3] = 1.0  # a masked-out region contributes nothing
    changed = target.clone()
    changed[:, 3:] += 100
    torch.testing.assert_close(
        layers.loss_fn(output, (target, mask)), layers.loss_fn(output, (changed, mask))
    )


def test_fuse_adapters_adds_the_lora_into_the_base_weights(tmp_path: Path) -> None:
    rank = 2
    gen = torch.Generator().manual_seed(4)
    tensors = {
        k: torch.randn(shape, generator=gen)
        for k, shape in diffusion_pipe_lora_shapes(hidden=32, mlp=128, depth=2, single=2, rank=rank).items()
    }
    save_file(tensors, str(tmp_path / "adapter_model.safetensors"), metadata={"format": "pt"})
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": 2 * rank}))
    model, base = _model(), _model()
    lora.merge_adapter(model, str(tmp_path))
    weights, before = dict(model.named_parameters()), dict(base.named_parameters())
    key = "diffusion_model.single_blocks.1.linear1"
    delta = tensors[f"{key}.lora_B.weight"] @ tensors[f"{key}.lora_A.weight"] * 2.0  # alpha / r
    got = (
        weights["single_transformer_blocks.1.linear1.weight"]
        - before["single_transformer_blocks.1.linear1.weight"]
    )
    torch.testing.assert_close(got, delta, rtol=1e-4, atol=1e-4)
    untouched = "transformer_blocks.0.attn.norm_q.weight"
    assert torch.equal(weights[untouched], before[untouched])


def _json_tar_folder(tmp_path: Path, assets: Assets) -> Path:
    """The shapes images with captions.json (two captions for some, none for two) and four of them
    inside a .tar archive."""
    import tarfile

    folder = tmp_path / "mixed"
    folder.mkdir()
    images = sorted(assets.images.glob("*.png"))
    captions: dict[str, list[str]] = {}
    for i, image in enumerate(images):
        if i >= 2:
            captions[image.name] = [f"shape {i}", f"a drawing of shape {i}"] if i % 2 else [f"shape {i}"]
    with tarfile.open(folder / "pack.tar", "w") as tar:
        for image in images[:4]:
            tar.add(image, arcname=image.name)
    for image in images[4:]:
        shutil.copy(image, folder / image.name)
    (folder / "captions.json").write_text(json.dumps(captions))
    return folder


@pytest.mark.parametrize(
    ("ds", "steps"),
    [
        ({}, 8),  # 22 images with a caption (2 missing), 11 with two: 33 items in 4-batches
        ({"shuffle_tags": True, "cache_shuffle_num": 2}, 16),
        ({"size_buckets": [[64, 64, 1], [96, 48, 1]], "resolutions": None}, 8),
    ],
)
def test_captions_json_tar_archives_and_size_buckets_plan_like_diffusion_pipe(
    tmp_path: Path, assets: Assets, ds: dict[str, Any], steps: int
) -> None:
    from dpipe_tui.datasets import plan_for_profile
    from dpipe_tui.engine.setup import scan_datasets
    from tests.engine.conftest import make_profile

    folder = _json_tar_folder(tmp_path, assets)
    profile = make_profile(tmp_path, assets, images=folder, dataset_overrides=ds)
    if ds.get("resolutions", 0) is None:  # size_buckets replace resolutions and AR buckets
        text = profile.with_name("dataset.toml").read_text()
        kept = [ln for ln in text.splitlines() if not ln.startswith(("resolutions", "min_ar", "max_ar"))]
        profile.with_name("dataset.toml").write_text("\n".join(kept).replace("num_ar_buckets = 3", "") + "\n")
    config = load_config(profile)
    scans = scan_datasets(config, False)
    ours = data.plan_epoch(scans.train, 4, 1, 1)
    theirs = plan_for_profile(profile, base_dir=tmp_path, world_size=1)
    assert len(ours) == theirs.steps_per_epoch == steps
    samples = [s for b in ours.batches for s in b]
    assert any(data.TAR_SEPARATOR in s.image for s in samples)  # the archive's members train
    if not ds:
        assert {s.caption for s in samples} >= {"shape 3", "a drawing of shape 3", "shape 2"}
        member = next(s.image for s in samples if data.TAR_SEPARATOR in s.image)
        with data.open_image(member) as img:
            assert img.size[0] > 0
    if "size_buckets" in ds:
        assert {s.bucket[1:3] for s in samples} <= {(64, 64), (96, 48)}


def test_masks_weight_the_loss_per_latent_pixel(tmp_path: Path) -> None:
    from PIL import Image

    from dpipe_tui.engine import inputs

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (64, 64), "red").save(images / f"{name}.png")
        (images / f"{name}.txt").write_text(name)
    mask = Image.new("RGB", (64, 64), "black")
    mask.paste((255, 255, 255), (0, 0, 32, 64))  # the left half counts, the right half does not
    mask.save(masks / "a.png")
    scan = data.scan_directory({"path": str(images), "mask_path": str(masks)}, {"resolutions": [64]})
    by_image = {Path(s.image).stem: s for lst in scan.samples_by_bucket.values() for s in lst}
    assert by_image["a"].mask == str(masks / "a.png")
    assert by_image["b"].mask is None  # no mask file: trains unmasked (ones), as diffusion-pipe
    source = inputs.Source()
    for s in by_image.values():
        source.latents[(s.bucket, s.image)] = torch.zeros(16, 8, 8)
        source.text[inputs._caption_key(s.caption)] = torch.ones(2, 32)
        if s.mask:
            source.masks[(s.bucket, s.image)] = inputs.load_mask(s.mask, s.bucket, (8, 8))
    ((_, (target, packed)),) = inputs.micro_batches(
        source, [by_image["a"], by_image["b"]], 1, {}, (1, 1, 0, 0)
    )
    grid = packed.view(2, 4, 4, 16, 2, 2)  # (b, h/2, w/2, c, 2, 2)
    assert torch.all(grid[0, :, :2] == 1)
    assert torch.all(grid[0, :, 2:] == 0)
    assert torch.all(grid[1] == 1)
    output = torch.randn(target.shape)
    changed = target.clone()
    changed[0].view(4, 4, 64)[:, 2:] += 50.0  # only where the mask is 0
    torch.testing.assert_close(
        layers.loss_fn(output, (target, packed)), layers.loss_fn(output, (changed, packed))
    )
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.new("RGB", (32, 32)).save(bad / "a.png")
    with pytest.raises(ValueError, match="was not the same as image shape"):
        data.scan_directory({"path": str(images), "mask_path": str(bad)}, {"resolutions": [64]})
    with pytest.raises(RuntimeError, match="Invalid mask_path"):
        data.scan_directory({"path": str(images), "mask_path": str(tmp_path / "nope")}, {"resolutions": [64]})


def test_transformer_dtype_keeps_diffusion_pipes_high_precision_parameters(assets: Assets) -> None:
    from dpipe_tui.engine import setup

    config = {"model": {"transformer_path": str(assets.transformer)}}
    p = setup.Precision(torch.float32, torch.bfloat16, torch.float32, torch.float32, None)
    model, peft_config = setup.build_transformer(config, CPU, p, seed=0)
    assert peft_config is None
    dtypes = {bfl.to_bfl(n): t.dtype for n, t in model.named_parameters()}
    kept = {n for n in dtypes if any(x in n for x in bfl.KEEP_IN_HIGH_PRECISION)}
    assert "double_blocks.0.img_attn.norm.query_norm.scale" in kept
    assert {
        "img_in.weight",
        "txt_in.weight",
        "final_layer.linear.weight",
        "double_blocks.1.img_mlp.0.bias",
    } <= kept
    assert all(dtypes[n] == torch.float32 for n in kept)
    cast = set(dtypes) - kept
    assert {"double_blocks.0.img_attn.qkv.weight", "single_blocks.1.linear2.weight"} <= cast
    assert all(dtypes[n] == torch.bfloat16 for n in cast)


@pytest.mark.parametrize(
    ("keys", "train", "evaluation"),
    [
        ({}, 1, 1),
        ({"micro_batch_size_per_gpu": 4}, 4, 4),
        ({"micro_batch_size_per_gpu": 4, "image_micro_batch_size_per_gpu": 2}, 2, 4),
        ({"micro_batch_size_per_gpu": 4, "eval_micro_batch_size_per_gpu": 3}, 4, 3),
        (
            {
                "micro_batch_size_per_gpu": 4,
                "eval_micro_batch_size_per_gpu": 3,
                "eval_image_micro_batch_size_per_gpu": 2,
            },
            4,
            2,
        ),
    ],
)
def test_image_micro_batch_sizes_take_precedence_as_in_train_py(
    keys: dict[str, Any], train: int, evaluation: int
) -> None:
    from dpipe_tui.engine.trainer import eval_micro_batch, train_micro_batch

    assert (train_micro_batch(keys), eval_micro_batch(keys)) == (train, evaluation)
