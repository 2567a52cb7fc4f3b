"""Cross-field rules of the main config: what diffusion-pipe silently ignores, or crashes on later.

Why on the raw TOML data rather than on the parsed model: the rules must still speak when pydantic
rejects some other key (a user fixing one typo wants to see every other problem too), so each rule
reads the values it needs defensively and stays quiet when they are absent or mistyped (pydantic
reports those). Spec references are to /work/shared/diffusion-pipe.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dpipe_tui.profiles.builtin_gaps import check_main_gaps
from dpipe_tui.profiles.context import Context, did_you_mean, section_classes
from dpipe_tui.profiles.findings import Severity
from dpipe_tui.profiles.model_schema import BLOCK_SWAP_MAX, LORA_ONLY_SAVE, MODEL_CLASSES, NO_FULL_FINETUNE
from dpipe_tui.profiles.optimizers import HAS_BETAS, NOT_KWARGS, OPTIMIZER_KWARGS, accepted_kwargs
from dpipe_tui.profiles.schema import MainConfig

if TYPE_CHECKING:
    from dpipe_tui.profiles.positions import KeyPath

IGNORED_TOP_KEYS: dict[str, tuple[str, str]] = {
    "pseudo_huber_c": (
        "pseudo_huber_c has no effect: diffusion-pipe reads huber_delta or smooth_l1_beta (spec §2.7)",
        "use huber_delta = <delta> (Huber loss) or smooth_l1_beta = <beta>",
    ),
    "image_eval_micro_batch_size_per_gpu": (
        "misspelt key, ignored by diffusion-pipe (the example's comment is wrong, spec §2.7)",
        "rename it to eval_image_micro_batch_size_per_gpu",
    ),
    "regenerate_cache": (
        "regenerate_cache in the config has no effect (a diffusion-pipe bug, spec §2.7)",
        "remove it and launch with --regenerate_cache instead",
    ),
}
"""Keys that look meaningful but diffusion-pipe never honours."""


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _model_type(data: Mapping[str, Any]) -> str | None:
    value = _dict(data.get("model")).get("type")
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_main(ctx: Context, data: Mapping[str, Any], *, gpu_count: int | None) -> None:
    """Run every cross-field rule of the main config on ``data`` (the unwrapped TOML)."""
    _check_ignored_keys(ctx, data)
    _check_unknown_keys(ctx, data)
    _check_save(ctx, data)
    _check_model(ctx, data)
    _check_adapter(ctx, data)
    _check_optimizer(ctx, data)
    _check_parallelism(ctx, data, gpu_count)
    _check_block_swap(ctx, data)
    _check_monitoring(ctx, data)
    _check_misc(ctx, data)
    check_main_gaps(ctx, data)


def _check_ignored_keys(ctx: Context, data: Mapping[str, Any]) -> None:
    for key, (message, fix) in IGNORED_TOP_KEYS.items():
        if key in data:
            ctx.warning((key,), message, code="ignored-key", fix=fix)
    evals = data.get("eval_datasets")
    if isinstance(evals, list):
        for i, entry in enumerate(evals):
            if isinstance(entry, str):
                ctx.add(
                    Severity.ERROR,
                    ("eval_datasets", i),
                    "a bare string entry is accepted by diffusion-pipe's loader but crashes a new run when "
                    "it copies the configs (spec §2.7)",
                    code="eval-dataset-string",
                    fix=f"write {{name = 'eval{i}', config = '{entry}'}}",
                    claim=True,
                )
    model = _dict(data.get("model"))
    if model.get("type") == "hidream" and model.get("transformer_dtype") == "nf4":
        ctx.add(
            Severity.ERROR,
            ("model", "transformer_dtype"),
            "HiDream transformer_dtype = 'nf4' crashes diffusion-pipe (KeyError: 'nf4', spec §2.7)",
            code="hidream-nf4",
            fix="use transformer_dtype = 'float8'",
            claim=True,
        )
    ac = data.get("activation_checkpointing")
    if "activation_checkpointing" in data and not (isinstance(ac, bool) or ac == "unsloth"):
        ctx.add(
            Severity.ERROR,
            ("activation_checkpointing",),
            f"activation_checkpointing must be true, false or 'unsloth' (got {ac!r}); other values raise "
            "NotImplementedError",
            code="activation-checkpointing",
            fix="activation_checkpointing = true",
            claim=True,
        )


def _unknown(ctx: Context, path: KeyPath, key: str, known: set[str], what: str, extra: str = "") -> None:
    guess = did_you_mean(key, known)
    ctx.warning(
        (*path, key),
        f"unknown key in {what}; diffusion-pipe ignores it{extra}",
        code="unknown-key",
        fix=f"did you mean {guess}?" if guess else "remove it, or check the spelling",
    )


def _walk_section(ctx: Context, cls: type, value: object, path: KeyPath, what: str) -> None:
    if not isinstance(value, Mapping):
        return
    fields = cls.model_fields  # type: ignore[attr-defined]
    for key, sub in value.items():
        if key not in fields:
            if not path and key in IGNORED_TOP_KEYS:
                continue
            _unknown(ctx, path, key, set(fields), what)
            continue
        if not path and key in ("model", "optimizer", "adapter"):
            continue  # walked by their own rules
        for sub_cls in section_classes(fields[key].annotation):
            items = enumerate(sub) if isinstance(sub, list) else [(None, sub)]
            for i, item in items:
                sub_path = (*path, key) if i is None else (*path, key, i)
                _walk_section(ctx, sub_cls, item, sub_path, f"[{'.'.join(str(p) for p in sub_path)}]")


def _check_unknown_keys(ctx: Context, data: Mapping[str, Any]) -> None:
    _walk_section(ctx, MainConfig, data, (), "the main config")
    model = data.get("model")
    mtype = _model_type(data)
    if isinstance(model, Mapping) and mtype in MODEL_CLASSES:
        cls = MODEL_CLASSES[mtype]
        for key in model:
            if key in cls.model_fields:
                if key == "text_encoders":
                    _walk_section(ctx, cls, {key: model[key]}, ("model",), "[model]")
                continue
            owners = [t for t, c in MODEL_CLASSES.items() if key in c.model_fields]
            extra = f" for type '{mtype}' (it is read by {', '.join(owners[:4])})" if owners else ""
            _unknown(ctx, ("model",), key, set(cls.model_fields), f"[model] (type '{mtype}')", extra)


def _check_save(ctx: Context, data: Mapping[str, Any]) -> None:
    if not any(k in data for k in ("save_every_n_epochs", "save_every_n_steps", "save_every_n_examples")):
        ctx.error(
            (),
            "no save_every_n_epochs, save_every_n_steps or save_every_n_examples: diffusion-pipe asserts "
            "that one is set",
            code="no-save",
            fix="add save_every_n_epochs = 1",
        )
    if not any(k in data for k in ("checkpoint_every_n_epochs", "checkpoint_every_n_minutes")):
        ctx.add(
            Severity.HINT,
            (),
            "no checkpoint_every_n_minutes / checkpoint_every_n_epochs: only the end of the run writes a "
            "resumable training state",
            code="no-checkpoint",
            fix="add checkpoint_every_n_minutes = 60",
        )


def _check_model(ctx: Context, data: Mapping[str, Any]) -> None:
    model = data.get("model")
    if "model" not in data:
        ctx.error(
            (), "the [model] table is missing", code="missing-key", fix="add [model] with type and dtype"
        )
        ctx.claimed.add(("model",))  # the schema's "model: required key is missing" would repeat it
        return
    if not isinstance(model, Mapping):
        return
    mtype = _model_type(data)
    if "type" not in model:
        ctx.add(
            Severity.ERROR,
            ("model", "type"),
            "[model] has no type",
            code="missing-key",
            fix="add type = '<model type>', e.g. 'chroma'",
            claim=True,
        )
        ctx.claimed.add(("model",))
    elif mtype is None:
        ctx.add(
            Severity.ERROR,
            ("model", "type"),
            "model.type must be a string naming the model",
            code="type",
            fix="e.g. type = 'chroma'",
            claim=True,
        )
        ctx.claimed.add(("model",))
    elif mtype not in MODEL_CLASSES:
        guess = did_you_mean(mtype, MODEL_CLASSES)
        ctx.add(
            Severity.ERROR,
            ("model", "type"),
            f"unknown model type {mtype!r}: diffusion-pipe raises NotImplementedError",
            code="unknown-model-type",
            fix=f"did you mean {guess!r}?" if guess else "one of: " + ", ".join(MODEL_CLASSES),
            claim=True,
        )
        ctx.claimed.add(("model",))
    alternatives: dict[str, list[tuple[str, ...]]] = {
        "hunyuan-video": [("ckpt_path",), ("transformer_path", "vae_path", "llm_path", "clip_path")],
        "qwen_image": [("diffusers_path",), ("transformer_path", "text_encoder_path", "vae_path")],
        "cosmos_predict2": [("t5_path",), ("llm_path",)],
        "anima": [("llm_path",), ("t5_path",)],
    }
    options = alternatives.get(str(mtype))
    if options and not any(all(k in model for k in opt) for opt in options):
        wanted = " or ".join(" + ".join(opt) for opt in options)
        ctx.error(
            ("model",),
            f"model type '{mtype}' needs {wanted}",
            code="missing-key",
            fix=f"add {' + '.join(options[0])}",
        )
    if mtype in NO_FULL_FINETUNE and "adapter" not in data:
        ctx.error(
            (),
            f"model type '{mtype}' cannot be fully fine-tuned: an [adapter] table is required",
            code="fft-unsupported",
            fix="add [adapter] with type = 'lora' and rank = 32",
        )


def _check_adapter(ctx: Context, data: Mapping[str, Any]) -> None:
    adapter = data.get("adapter")
    if not isinstance(adapter, Mapping):
        return
    from dpipe_tui.profiles.schema import AdapterSection

    if "alpha" in adapter:
        ctx.error(
            ("adapter", "alpha"),
            "alpha is forbidden: diffusion-pipe forces alpha = rank and raises NotImplementedError",
            code="adapter-alpha",
            fix="remove alpha (alpha equals rank)",
        )
    for key in adapter:
        if key not in AdapterSection.model_fields and key != "alpha":
            _unknown(ctx, ("adapter",), key, set(AdapterSection.model_fields), "[adapter]")
    if "fuse_adapters" in adapter:
        _walk_section(
            ctx, AdapterSection, {"fuse_adapters": adapter["fuse_adapters"]}, ("adapter",), "[adapter]"
        )
    mtype = _model_type(data)
    if adapter.get("type") == "lokr" and mtype in LORA_ONLY_SAVE:
        ctx.error(
            ("adapter", "type"),
            f"model type '{mtype}' can only save adapter type 'lora'",
            code="adapter-type",
            fix="type = 'lora'",
        )
    if "fuse_adapters" in adapter and mtype not in ("flux", "chroma"):
        ctx.warning(
            ("adapter", "fuse_adapters"),
            f"fuse_adapters is only used by flux and chroma, not '{mtype}'",
            code="ignored-key",
            fix="remove it, or use model.merge_adapters on ComfyUI-based models",
        )


def _check_optimizer(ctx: Context, data: Mapping[str, Any]) -> None:
    opt = data.get("optimizer")
    if "optimizer" not in data:
        ctx.error(
            (),
            "the [optimizer] table is missing",
            code="missing-key",
            fix="add [optimizer] with type = 'adamw_optimi' and lr = 1e-4",
        )
        ctx.claimed.add(("optimizer",))
        return
    if not isinstance(opt, Mapping) or not isinstance(opt.get("type"), str):
        return
    otype: str = opt["type"]
    accepted = accepted_kwargs(otype)
    if accepted is not None:
        for key in opt:
            if key not in accepted and key not in NOT_KWARGS:
                guess = did_you_mean(key, accepted)
                fix = f"did you mean {guess}?" if guess else "remove it"
                if key == "decoupled_weight_decay":
                    fix = (
                        "remove it (AdamW's weight decay is already decoupled), or use "
                        "type = 'adamw_optimi', whose decouple_lr is the closest setting"
                    )
                ctx.error(
                    ("optimizer", key),
                    f"optimizer '{otype}' does not accept {key!r}: diffusion-pipe passes "
                    "it to the constructor, which raises TypeError",
                    code="optimizer-kwarg",
                    fix=fix,
                )
        if otype.lower() == "genericoptim" and "compile" in opt:
            top = bool(data.get("compile", False))
            ctx.add(
                Severity.WARNING,
                ("optimizer", "compile"),
                f"[optimizer] compile is overwritten by diffusion-pipe with the top-level compile "
                f"(= {str(top).lower()}) for genericoptim",
                code="optimizer-compile-overwritten",
                fix="remove it and set the top-level compile instead",
            )
    elif otype.lower() in OPTIMIZER_KWARGS:
        pass
    else:
        close = did_you_mean(otype.lower(), OPTIMIZER_KWARGS)
        if close:
            ctx.add(
                Severity.HINT,
                ("optimizer", "type"),
                f"{otype!r} is not a built-in optimizer; it will be "
                "looked up in pytorch_optimizer (case-sensitive)",
                code="optimizer-type",
                fix=f"did you mean {close!r}?",
            )
    if "beta2_half_life" in opt and "betas" not in opt:
        ctx.error(
            ("optimizer", "beta2_half_life"),
            "beta2_half_life needs betas (diffusion-pipe reads betas[1])",
            code="missing-key",
            fix="add betas = [0.9, 0.99]",
        )
    betas = opt.get("betas")
    if isinstance(betas, list) and len(betas) != 2 and otype.lower() in HAS_BETAS:
        ctx.error(
            ("optimizer", "betas"),
            f"betas needs two values, got {len(betas)}",
            code="type",
            fix="betas = [0.9, 0.99]",
        )
    lr = opt.get("lr")
    if otype.lower() == "automagic" and isinstance(lr, int | float) and lr > 1e-3:
        ctx.warning(
            ("optimizer", "lr"),
            "automagic forces a start lr above 1e-3 back to 1e-6",
            code="automagic-lr",
            fix="remove lr, or use a start lr <= 1e-3",
        )


def _check_parallelism(ctx: Context, data: Mapping[str, Any], gpu_count: int | None) -> None:
    stages = _int(data.get("pipeline_stages", 1)) or 1
    method = data.get("partition_method", "parameters")
    split = data.get("partition_split")
    if method == "manual" and isinstance(split, list) and len(split) != stages - 1:
        ctx.error(
            ("partition_split",),
            f"partition_split has {len(split)} entries; with pipeline_stages = "
            f"{stages} it needs {stages - 1}",
            code="partition-split",
            fix=f"give {stages - 1} split points, or change pipeline_stages",
        )
    if method == "manual" and split is None and stages > 1:
        ctx.warning(
            ("partition_method",),
            "partition_method = 'manual' without partition_split",
            code="partition-split",
            fix="add partition_split = [...] with pipeline_stages - 1 entries",
        )
    if split is not None and method != "manual":
        ctx.warning(
            ("partition_split",),
            "partition_split is only used with partition_method = 'manual'",
            code="ignored-key",
            fix="set partition_method = 'manual' or remove partition_split",
        )
    release = _dict(data.get("optimizer")).get("gradient_release") is True
    if gpu_count is not None and gpu_count >= 1:
        if gpu_count % stages:
            ctx.error(
                ("pipeline_stages",),
                f"pipeline_stages = {stages} does not divide the {gpu_count} GPUs "
                "(DeepSpeed needs GPUs % pipeline_stages == 0)",
                code="pipeline-stages",
                fix="use a divisor of the GPU count, or change the GPUs",
            )
        elif release and gpu_count // stages != 1:
            ctx.error(
                ("optimizer", "gradient_release"),
                f"gradient_release needs data-parallel degree 1, but "
                f"{gpu_count} GPUs / {stages} stages = {gpu_count // stages}",
                code="gradient-release",
                fix=f"set pipeline_stages = {gpu_count}, or remove gradient_release",
            )
    mcfg = _dict(data.get("model")).get("cfg")
    if isinstance(mcfg, int | float) and mcfg > 1 and stages != 1:
        ctx.error(
            ("model", "cfg"),
            "cfg > 1 needs pipeline_stages = 1",
            code="pipeline-stages",
            fix="set pipeline_stages = 1",
        )


def _check_block_swap(ctx: Context, data: Mapping[str, Any]) -> None:
    blocks = _int(data.get("blocks_to_swap"))
    if not blocks:
        return
    mtype = _model_type(data)
    if (_int(data.get("pipeline_stages", 1)) or 1) != 1:
        ctx.error(
            ("blocks_to_swap",),
            "block swapping needs pipeline_stages = 1",
            code="block-swap",
            fix="set pipeline_stages = 1 or blocks_to_swap = 0",
        )
    if "adapter" not in data:
        ctx.error(
            ("blocks_to_swap",),
            "block swapping only works for LoRA training (no [adapter] table here)",
            code="block-swap",
            fix="add an [adapter] table or set blocks_to_swap = 0",
        )
    if isinstance(mtype, str) and mtype in MODEL_CLASSES:
        if mtype not in BLOCK_SWAP_MAX:
            ctx.error(
                ("blocks_to_swap",),
                f"model type '{mtype}' does not implement block swapping",
                code="block-swap",
                fix="remove blocks_to_swap",
            )
        elif (limit := BLOCK_SWAP_MAX[mtype]) is not None and blocks > limit:
            ctx.error(
                ("blocks_to_swap",),
                f"at most {limit} blocks can be swapped for '{mtype}'",
                code="block-swap",
                fix=f"blocks_to_swap = {limit}",
            )


def _check_monitoring(ctx: Context, data: Mapping[str, Any]) -> None:
    mon = data.get("monitoring")
    if not isinstance(mon, Mapping):
        return
    key = mon.get("wandb_api_key")
    if isinstance(key, str) and key.strip():
        ctx.warning(
            ("monitoring", "wandb_api_key"),
            "a W&B API key is stored in the profile (value not shown); "
            "anyone who can read the file can use it",
            code="secret-in-profile",
            fix='set wandb_api_key = "" and export WANDB_API_KEY in the environment',
        )
    if mon.get("enable_wandb") is True:
        for name in ("wandb_tracker_name", "wandb_run_name"):
            if not mon.get(name):
                ctx.error(
                    ("monitoring", name),
                    f"enable_wandb = true needs {name} (diffusion-pipe raises KeyError)",
                    code="wandb",
                    fix=f"set {name} = '...'",
                )
        if "wandb_api_key" not in mon:
            ctx.error(
                ("monitoring",),
                "enable_wandb = true needs a wandb_api_key key (KeyError otherwise)",
                code="wandb",
                fix='add wandb_api_key = "" (the key comes from $WANDB_API_KEY)',
            )


def _check_misc(ctx: Context, data: Mapping[str, Any]) -> None:
    if "huber_delta" in data and "smooth_l1_beta" in data:
        ctx.add(
            Severity.HINT,
            ("smooth_l1_beta",),
            "huber_delta wins over smooth_l1_beta; this key has no effect",
            code="ignored-key",
            fix="remove one of them",
        )
    if "max_steps" in data and data.get("lr_scheduler") in ("linear", "cosine"):
        ctx.add(
            Severity.HINT,
            ("lr_scheduler",),
            "linear/cosine schedules decay over epochs and ignore max_steps",
            code="scheduler",
            fix="size epochs to the run, or use lr_scheduler = 'constant'",
        )
