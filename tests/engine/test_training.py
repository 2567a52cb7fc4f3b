"""Real trainings under the deepspeed launcher on the CPU: layout, formats, caching, DP and pipelining."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from dpipe_tui.engine import chroma, lora
from tests.engine.bfl_shapes import bfl_checkpoint_shapes
from tests.engine.conftest import (
    REPO,
    Assets,
    engine_env,
    launch,
    launch_argv,
    make_profile,
    read_scalars,
    run_dirs,
    step_losses,
    write_toml,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def _adapter_keys(folder: Path) -> tuple[set[str], dict[str, str], dict[str, torch.Tensor]]:
    with safe_open(str(folder / "adapter_model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        return keys, dict(f.metadata() or {}), {k: f.get_tensor(k) for k in keys}


def test_run_writes_diffusion_pipe_layout_and_formats(tmp_path: Path, assets: Assets) -> None:
    eval_cfg = write_toml(
        tmp_path / "eval.toml", {"resolutions": [64], "directory": [{"path": str(assets.eval_images)}]}
    )
    few = tmp_path / "few"  # 2 images: less than one eval batch of 4
    few.mkdir()
    for stem in ("red-circle-large", "blue-square-small"):
        for suffix in (".png", ".txt"):
            shutil.copy(assets.eval_images / f"{stem}{suffix}", few / f"{stem}{suffix}")
    few_cfg = write_toml(tmp_path / "few.toml", {"resolutions": [64], "directory": [{"path": str(few)}]})
    profile = make_profile(
        tmp_path,
        assets,
        eval_datasets=[{"name": "shapes", "config": str(eval_cfg)}, {"name": "few", "config": str(few_cfg)}],
        eval_before_first_step=True,
        eval_every_n_epochs=2,
    )
    result = launch(profile)
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    # console markers, in order
    markers = [
        "caching latents:",
        "[CACHE] Initializing",
        "Global batch size = 4",
        "Running eval",
        "steps: 1 loss:",
    ]
    markers += ["Saving model to directory epoch1", "Started new epoch: 2", "TRAINING COMPLETE!"]
    positions = [out.index(m) for m in markers]
    assert positions == sorted(positions)
    assert re.search(r"\[Rank 0\] step=1, skipped=0, lr=\[", out)
    skipped = "WARNING: eval dataset 'few' has no complete eval batch: no size bucket holds 4 samples"
    assert out.count(skipped) == 1
    # output_dir holds exactly one run folder named by UTC time
    (run_dir,) = run_dirs(tmp_path)
    assert re.fullmatch(r"\d{8}_\d{2}-\d{2}-\d{2}", run_dir.name)
    steps = max(step_losses(out))
    names = {p.name for p in run_dir.iterdir()}
    assert {
        "profile.toml",
        "dataset.toml",
        "eval.toml",
        "few.toml",
        "epoch1",
        "epoch2",
        "latest",
        f"global_step{steps}",
    } <= names
    assert (run_dir / "latest").read_text() == f"global_step{steps}"
    ckpt = run_dir / f"global_step{steps}"
    assert (ckpt / "mp_rank_00_model_states.pt").is_file()
    assert sorted(p.name for p in ckpt.glob("layer_*-model_states.pt"))[0] == "layer_00-model_states.pt"
    state = torch.load(ckpt / "mp_rank_00_model_states.pt", map_location="cpu", weights_only=False)
    assert state["step"] == steps
    assert state["examples"] == 4 * steps
    assert state["custom_loader"] == {"epoch": 3, "num_batches_pulled": 0}
    # the LoRA in diffusion-pipe's (BFL/ComfyUI) layout
    keys, meta, tensors = _adapter_keys(run_dir / "epoch2")
    assert meta == {"format": "pt"}
    modules = {k.rsplit(".lora_", 1)[0] for k in keys}
    expected = {f"diffusion_model.double_blocks.{i}.{m}" for i in range(2) for m in
                ("img_attn.qkv", "img_attn.proj", "txt_attn.qkv", "txt_attn.proj",
                 "img_mlp.0", "img_mlp.2", "txt_mlp.0", "txt_mlp.2")}  # fmt: skip
    expected |= {f"diffusion_model.single_blocks.{i}.linear{j}" for i in range(2) for j in (1, 2)}
    assert modules == expected
    assert all(f"{m}.lora_A.weight" in keys and f"{m}.lora_B.weight" in keys for m in modules)
    # diffusion-pipe's adapter: rank 4 on the fused Linears (hidden 32, MLP 128), in the adapter dtype
    assert tensors["diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight"].shape == (4, 32)
    assert tensors["diffusion_model.double_blocks.0.img_attn.qkv.lora_B.weight"].shape == (96, 4)
    assert tensors["diffusion_model.single_blocks.0.linear1.lora_A.weight"].shape == (4, 32)
    assert tensors["diffusion_model.single_blocks.0.linear1.lora_B.weight"].shape == (3 * 32 + 128, 4)
    assert tensors["diffusion_model.single_blocks.0.linear2.lora_A.weight"].shape == (4, 32 + 128)
    assert all(t.dtype == torch.bfloat16 for t in tensors.values())
    cfg = json.loads((run_dir / "epoch2" / "adapter_config.json").read_text())
    assert cfg["r"] == cfg["lora_alpha"] == 4
    assert cfg["rank_pattern"] == cfg["alpha_pattern"] == {}
    assert sorted(cfg["target_modules"]) == sorted(m.removeprefix("diffusion_model.") for m in expected)
    assert "trainable params: 11,776 ||" in out  # what diffusion-pipe's PEFT model prints at rank 4
    assert (run_dir / "epoch2" / "profile.toml").is_file()
    assert not (run_dir / "epoch2" / "tmp").exists()
    # TensorBoard: train loss per step, epoch loss per epoch, eval tags at 0 and at the last step
    scalars = read_scalars(run_dir)
    assert [s for s, _ in scalars["train/loss"]] == list(range(1, steps + 1))
    assert [s for s, _ in scalars["train/epoch_loss"]] == [1, 2]
    assert [s for s, _ in scalars["shapes/loss"]] == [0, steps]
    assert len([t for t in scalars if t.startswith("shapes/loss_quantile_")]) == 9
    assert "eval/eval_time_sec" in scalars
    assert not [t for t in scalars if t.startswith("few/")]  # skipped, not logged as loss 0.0
    tb = dict(scalars["train/loss"])
    assert all(abs(tb[s] - v) < 1e-4 for s, v in step_losses(out).items())


def test_full_fine_tune_saves_the_original_layout_and_a_lora_starts_from_a_saved_one(
    tmp_path: Path, assets: Assets
) -> None:
    full = launch(make_profile(tmp_path / "full", assets, epochs=1, adapter=None, save_dtype="float32"))
    assert full.returncode == 0, full.stdout[-3000:]
    (full_dir,) = run_dirs(tmp_path / "full")
    saved = load_file(str(full_dir / "epoch1" / "model.safetensors"))
    assert {k: tuple(v.shape) for k, v in saved.items()} == bfl_checkpoint_shapes(
        hidden=32, mlp=128, depth=2, single=2, context=32
    )
    start = chroma.load_transformer(
        {"transformer_path": str(assets.transformer)},
        random_init=False,
        seed=0,
        device=torch.device("cpu"),
        dtype=torch.float32,
    )
    before = chroma.bfl_state_dict(dict(start.named_parameters()))
    assert any(not torch.equal(saved[k], before[k]) for k in saved)  # it trained
    # a LoRA of ours (random, not zero), written by the saver's function from an adapted model
    lora_config = lora.configure(start, {"rank": 4}, torch.float32)
    with torch.no_grad():
        for name, param in start.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.01)
    first = tmp_path / "first"
    lora.save_adapter(
        first, lora.peft_state_dict(list(start.named_parameters())), lora_config, torch.bfloat16
    )
    # the full fine-tune as transformer_path, the first LoRA as the starting adapter
    profile = make_profile(
        tmp_path / "second",
        assets,
        epochs=1,
        model={"transformer_path": str(full_dir / "epoch1" / "model.safetensors")},
        adapter={"init_from_existing": str(first)},
    )
    second = launch(profile)
    assert second.returncode == 0, second.stdout[-3000:]
    assert f"Loading adapter weights from path {first}" in second.stdout
    assert "TRAINING COMPLETE!" in second.stdout


def test_keys_diffusion_pipe_honours_change_the_run(tmp_path: Path, assets: Assets) -> None:
    profile = make_profile(
        tmp_path,
        assets,
        epochs=1,
        x_axis_examples=True,
        compile=True,
        uncond_fraction=0.5,
        huber_delta=0.3,
        image_micro_batch_size_per_gpu=2,
        gradient_accumulation_steps=2,
        optimizer={
            "type": "adamw",
            "lr": 2e-3,
            "betas": [0.9, 0.99],
            "beta2_half_life": 8,
            "gradient_release": True,
        },
        dataset_overrides={"subsample_ratio": 0.5},
    )
    result = launch(profile)
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    assert "Global batch size = 4" in out  # image_micro_batch_size_per_gpu 2 x GAS 2, not 4 x 2
    assert "compile: the built-in engine compiles only on a GPU; training uncompiled" in out
    assert re.search(r"gradient_clipping \.+ 0\.0$", out, re.M)  # gradient_release: nothing clipped
    assert f"Computed beta2 = {0.5 ** (4 / 8)}" in out  # train.py's line and formula
    assert max(step_losses(out)) == 3  # 24 images / 4 = 6 batches, subsample_ratio 0.5 keeps 3
    (run_dir,) = run_dirs(tmp_path)
    scalars = read_scalars(run_dir)
    assert [x for x, _ in scalars["train/loss"]] == [4, 8, 12]  # x_axis_examples: examples, not steps
    assert "caching text embeddings" in out  # the empty caption cached for uncond_fraction


def test_masks_captions_json_and_tar_archives_train(tmp_path: Path, assets: Assets) -> None:
    import tarfile

    from PIL import Image

    folder, masks = tmp_path / "mixed", tmp_path / "masks"
    folder.mkdir()
    masks.mkdir()
    images = sorted(assets.images.glob("*.png"))
    with tarfile.open(folder / "pack.tar", "w") as tar:
        for image in images[:8]:
            tar.add(image, arcname=image.name)
    for image in images[8:]:
        shutil.copy(image, folder / image.name)
    captions = {i.name: [(assets.images / f"{i.stem}.txt").read_text(), f"a {i.stem}"] for i in images}
    (folder / "captions.json").write_text(json.dumps(captions))
    for image in images[::2]:  # half the images weigh only their left half
        with Image.open(image) as img:
            mask = Image.new("RGB", img.size, "black")
        mask.paste((255, 255, 255), (0, 0, mask.width // 2, mask.height))
        mask.save(masks / f"{image.stem}.png")
    profile = make_profile(
        tmp_path, assets, images=folder, epochs=1, directory_overrides={"mask_path": str(masks)}
    )
    result = launch(profile)
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    assert max(step_losses(out)) == 12  # 24 images x 2 captions.json captions, 8 read from the .tar
    assert "No mask file was found for image" in out  # the other half train unmasked, as diffusion-pipe


def test_cache_is_reused_trusted_invalidated_and_regenerated(tmp_path: Path, assets: Assets) -> None:
    images = tmp_path / "images"
    shutil.copytree(assets.images, images)
    profile = make_profile(tmp_path, assets, images=images)
    first = launch(profile, "--cache_only")
    assert first.returncode == 0, first.stdout[-3000:]
    assert "[CACHE] Storing new fingerprint" in first.stdout
    assert "[CACHE] Creating new shard" in first.stdout
    assert (images / "cache" / "chroma" / "cache_1.000x64x64x1" / "latents" / "metadata.json").is_file()
    assert not run_dirs(tmp_path)  # --cache_only stops before the run folder exists
    text_meta = images / "cache" / "chroma" / "text_embeddings_1" / "metadata.json"
    latent_shards = sorted(images.glob("cache/chroma/cache_*/latents/shard_0.pt"))
    assert len(latent_shards) == 2
    latent_mtimes = [p.stat().st_mtime_ns for p in latent_shards]
    before = json.loads(text_meta.read_text())
    (images / "red-circle-large.txt").write_text("a picture of a changed caption\n")
    trusted = launch(profile, "--cache_only", "--trust_cache")
    assert trusted.returncode == 0, trusted.stdout[-3000:]
    assert "Fingerprint changed" not in trusted.stdout
    assert "Storing new fingerprint" not in trusted.stdout
    # nothing is rechecked or rebuilt: only the one caption without an embedding is added, and the
    # store keeps its old fingerprint (trusting it does not make it up to date)
    assert trusted.stdout.count("[CACHE] Creating new shard") == 1
    after = json.loads(text_meta.read_text())
    assert after == {"fingerprint": before["fingerprint"], "length": before["length"] + 1}
    assert [p.stat().st_mtime_ns for p in latent_shards] == latent_mtimes
    checked = launch(profile, "--cache_only")
    assert checked.returncode == 0, checked.stdout[-3000:]
    # the two latent stores are reused as they are; only the text store is found stale and rebuilt
    assert checked.stdout.count("[CACHE] Existing cache has fingerprint") == 3
    assert checked.stdout.count("[CACHE] Fingerprint changed") == 1
    assert checked.stdout.count("[CACHE] Creating new shard") == 1
    rebuilt = json.loads(text_meta.read_text())
    assert rebuilt["fingerprint"] != before["fingerprint"]
    assert rebuilt["length"] == before["length"]  # rebuilt from scratch: the old caption is gone
    assert [p.stat().st_mtime_ns for p in latent_shards] == latent_mtimes
    third = launch(profile, "--cache_only", "--regenerate_cache")
    assert third.returncode == 0
    assert third.stdout.count("[CACHE] Creating new shard") == 3  # two latent buckets + text, all rebuilt
    assert "Fingerprint changed" not in third.stdout


def test_two_processes_data_parallel(tmp_path: Path, assets: Assets) -> None:
    profile = make_profile(tmp_path, assets, epochs=1, save_dtype="bfloat16")
    result = launch(profile, procs=2)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Global batch size = 8" in result.stdout
    assert result.stdout.count("TRAINING COMPLETE!") == 1
    (run_dir,) = run_dirs(tmp_path)
    # 20 square images → 2 batches of 8; the 4 wide ones are dropped (not enough for a global batch)
    assert max(step_losses(result.stdout)) == 2
    assert "being completely dropped" in result.stdout
    # save_dtype is honoured on the CPU too (the run itself computes in float32)
    assert "CPU run: computing in float32" in result.stdout
    keys, _, tensors = _adapter_keys(run_dir / "epoch1")
    assert keys
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}


def test_two_pipeline_stages(tmp_path: Path, assets: Assets) -> None:
    profile = make_profile(tmp_path, assets, epochs=1, pipeline_stages=2, gradient_accumulation_steps=2,
                           micro_batch_size_per_gpu=2)  # fmt: skip
    result = launch(profile, procs=2)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Global batch size = 4" in result.stdout
    assert re.search(r"stage=1 layers=\d+", result.stdout)
    (run_dir,) = run_dirs(tmp_path)
    keys, _, _ = _adapter_keys(run_dir / "epoch1")
    assert any(k.startswith("diffusion_model.double_blocks.0.") for k in keys)
    assert any(k.startswith("diffusion_model.single_blocks.1.") for k in keys)  # from the other stage
    assert {p.name for p in (run_dir / "global_step6").glob("mp_rank_*")} == {
        "mp_rank_00_model_states.pt",
        "mp_rank_01_model_states.pt",
    }


def test_bad_config_fails_before_loading(tmp_path: Path, assets: Assets) -> None:
    profile = make_profile(tmp_path, assets, optimizer={"type": "AdamW8bitKahan"})
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dpipe_tui.engine", "--config", str(profile)],
        capture_output=True, text=True, env=engine_env(), cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    line = next(ln for ln in result.stderr.splitlines() if ": error: optimizer.type:" in ln)
    assert re.match(rf"{re.escape(str(profile))}:\d+:\d+: error: optimizer\.type: .*not available", line)
    assert "available: adamw" in line
    assert not re.search(r"\|\s+torch$", result.stderr, re.M)  # nothing heavy was even imported


def test_wandb_offline_logs_without_leaking_the_key(tmp_path: Path, assets: Assets) -> None:
    pytest.importorskip("wandb", reason="the wandb extra is not installed : scripts/bootstrap installs it")
    secret = "wandb-key-0123456789abcdef-must-not-leak"
    profile = make_profile(
        tmp_path,
        assets,
        epochs=1,
        monitoring={
            "enable_wandb": True,
            "wandb_api_key": "",
            "wandb_tracker_name": "dpipe-test",
            "wandb_run_name": "tiny",
        },
    )
    env = engine_env() | {"WANDB_MODE": "offline", "WANDB_API_KEY": secret, "WANDB_DIR": str(tmp_path)}
    result = subprocess.run(
        launch_argv(profile), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path)
    assert list((run_dir / "wandb").glob("offline-run-*"))
    assert secret not in result.stdout + result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
