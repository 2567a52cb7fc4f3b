"""Process setup for a training run: distributed init, dtypes, data, model, run folder.

Why apart from the loop (trainer.py): these are the steps before the first step, in train.py's
order (distributed init → caching → model + adapter → run folder → DeepSpeed), each small and
separately readable; the loop then only deals with steps, epochs, evals and saves.
"""

from __future__ import annotations

import glob
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist

from dpipe_tui.engine import bfl, chroma, inputs, lora
from dpipe_tui.engine.config import load_dataset_config
from dpipe_tui.engine.data import DirectoryScan, resolutions_of, scan_directory


@dataclass
class Precision:
    """Dtypes the run computes and stores in."""

    dtype: torch.dtype
    transformer: torch.dtype
    adapter: torch.dtype
    save: torch.dtype
    autocast: torch.dtype | None


def init_distributed(master_port: int) -> tuple[bool, torch.device]:
    """train.py's env handling, then DeepSpeed's init (gloo on the CPU). Returns (on_cpu, device)."""
    os.environ["MASTER_ADDR"] = os.environ.get("MASTER_ADDR", "localhost")
    os.environ["MASTER_PORT"] = str(master_port)
    import deepspeed
    from deepspeed.accelerator import get_accelerator

    deepspeed.utils.set_log_level_from_string("info")
    on_cpu = get_accelerator().device_name() == "cpu"
    if on_cpu and os.environ.get("DPIPE_TUI_DS_SHM", "") != "1":
        # DeepSpeed would JIT-build its shared-memory comm op (~55 s once per machine) and probe
        # every op builder with compiler subprocesses; gloo alone is enough for the CPU engine.
        import deepspeed.ops

        deepspeed.ops.__dict__["__compatible_ops__"] = {}
    deepspeed.init_distributed(dist_backend="gloo" if on_cpu else None)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if on_cpu:
        return True, torch.device("cpu")
    get_accelerator().set_device(local_rank)
    # cuDNN's SDPA backward faulted on an H100 (torch 2.11/cu130: "mha_graph.execute", then an illegal
    # memory access) for Chroma's shapes; flash / memory-efficient attention are used instead.
    torch.backends.cuda.enable_cudnn_sdp(False)
    return False, torch.device(get_accelerator().device_name(local_rank))


def precision(config: dict[str, Any], on_cpu: bool) -> Precision:
    """Dtypes from the config; the CPU computes in float32 and says so once."""
    model = config["model"]
    names = {
        "dtype": model["dtype"],
        "transformer_dtype": model.get("transformer_dtype", model["dtype"]),
        "adapter dtype": (config.get("adapter") or {}).get("dtype", model["dtype"]),
    }
    save = config.get("save_dtype")
    if on_cpu:
        # saves in save_dtype or the adapter dtype, as diffusion-pipe: the same file on any machine
        stored = save or names["adapter dtype"]
        if any(v != "float32" for v in names.values()) and tdist.get_rank() == 0:
            given = ", ".join(f"{k}={v}" for k, v in names.items())
            print(f"CPU run: computing in float32, saving in {stored} (config: {given})", flush=True)
        f32 = torch.float32
        return Precision(f32, f32, f32, chroma.DTYPE_MAP[stored], None)
    m = chroma.DTYPE_MAP
    adapter = m[names["adapter dtype"]]
    return Precision(
        m[names["dtype"]],
        m[names["transformer_dtype"]],
        adapter,
        m[save] if save else adapter,
        m[names["dtype"]],
    )


@dataclass
class Datasets:
    """The scanned train and eval datasets."""

    train: list[DirectoryScan]
    evals: dict[str, list[DirectoryScan]]
    too_many_resolutions: bool
    train_subsample: float | None = None
    subsample: dict[str, float | None] = field(default_factory=dict)  # per eval dataset name


def scan_datasets(config: dict[str, Any], skip_checks: bool) -> Datasets:
    """Read and scan the dataset TOMLs (relative paths against the main profile's folder)."""
    base = Path(config["_base_dir"])

    def scan(path: str) -> tuple[list[DirectoryScan], bool, float | None]:
        ds = load_dataset_config(Path(path), base)
        many = any(
            len(resolutions_of(d.get("resolutions", ds.get("resolutions", [])))) > 3 for d in ds["directory"]
        )
        scans = [scan_directory(d, ds) for d in ds["directory"]]
        return scans, many and not skip_checks, ds.get("subsample_ratio")

    train, many, ratio = scan(config["dataset"])
    data = Datasets(train, {}, many, ratio)
    for entry in config.get("eval_datasets") or []:
        data.evals[entry["name"]], _, data.subsample[entry["name"]] = scan(entry["config"])
    return data


def run_caching(
    config: dict[str, Any], data: Datasets, args: Any, device: torch.device, p: Precision
) -> None:
    """Rank 0 caches every dataset; all ranks wait (spec §3.4)."""
    if tdist.get_rank() == 0:
        models = inputs.Models(config["model"]["diffusers_path"], p.dtype, device)
        for scan in data.train + [s for scans in data.evals.values() for s in scans]:
            inputs.cache_directory(scan, models, config, args)
        del models
    tdist.barrier()


def build_transformer(
    config: dict[str, Any], device: torch.device, p: Precision, seed: int
) -> tuple[Any, Any]:
    """Load the transformer, set storage dtypes, add the LoRA. Returns (model, peft_config or None)."""
    extra = config.get("dpipe_tui") or {}
    model = chroma.load_transformer(
        config["model"],
        random_init=bool(extra.get("random_init", False)),
        seed=seed,
        device=device,
        dtype=p.dtype,
    )
    if model.dtype != p.dtype:
        model.to(p.dtype)
    adapter = config.get("adapter")
    if adapter and (fuse := adapter.get("fuse_adapters")):
        print(f"Fusing adapters: {fuse}", flush=True)
        for entry in fuse:
            lora.merge_adapter(model, entry["path"])
    if p.transformer != p.dtype:
        if p.transformer in (torch.float8_e4m3fn, torch.float8_e5m2):
            from diffusers.hooks import apply_layerwise_casting  # type: ignore[attr-defined]

            for block in [*model.transformer_blocks, *model.single_transformer_blocks]:
                apply_layerwise_casting(block, storage_dtype=p.transformer, compute_dtype=p.dtype)
        else:  # as diffusion-pipe: norms, biases, embedders, approximator and final layer stay
            for name, param in model.named_parameters():
                if not any(x in bfl.to_bfl(name) for x in bfl.KEEP_IN_HIGH_PRECISION):
                    param.data = param.data.to(p.transformer)
    torch.manual_seed(seed)  # identical LoRA init on every rank
    if adapter:
        peft_config = lora.configure(model, adapter, p.adapter)
        if adapter.get("init_from_existing"):
            lora.load_adapter(model, adapter["init_from_existing"])
    else:
        peft_config = None
        for name, param in model.named_parameters():
            param.original_name = name
    model.train()
    return model, peft_config


def choose_run_dir(config: dict[str, Any], resume: bool | str | None) -> Path:
    """Rank 0 picks the run folder (new timestamp, newest entry, or named), broadcast to all."""
    box: list[Any] = [None]
    if tdist.get_rank() == 0:
        out = config["output_dir"]
        if resume is True:
            entries = sorted(glob.glob(os.path.join(out, "*")))
            if not entries:
                raise RuntimeError(f"--resume_from_checkpoint: no run folder in {out}")
            box[0] = entries[-1]
        elif isinstance(resume, str):
            box[0] = os.path.join(out, resume)
        else:
            box[0] = os.path.join(out, datetime.now(UTC).strftime("%Y%m%d_%H-%M-%S"))
    tdist.broadcast_object_list(box, src=0)
    run_dir = Path(box[0])
    os.makedirs(run_dir, exist_ok=True)
    if not resume and tdist.get_rank() == 0:
        shutil.copy(config["_config_path"], run_dir)
        shutil.copy(config["dataset"], run_dir)
        for entry in config.get("eval_datasets") or []:
            shutil.copy(entry["config"], run_dir)
    tdist.barrier()
    return run_dir
