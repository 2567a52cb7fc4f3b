"""Pydantic models of diffusion-pipe's main config TOML (spec §2), plus our ``[dpipe_tui]`` table.

Why these shapes: every field is a key diffusion-pipe reads, typed the way it reads it, with its
default and meaning as an attribute docstring (they feed the editor's help, see
:func:`dpipe_tui.profiles.help.field_help`). Unknown keys are kept (``extra="allow"``) because
diffusion-pipe ignores them; the validator reports them as warnings instead of refusing the file.
Rules across fields (save keys, block swap, parallelism) live in :mod:`dpipe_tui.profiles.checks`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dpipe_tui.profiles.model_schema import ModelSection  # noqa: TC001  # pydantic resolves it at runtime
from dpipe_tui.profiles.types import Bool, Dtype, Float, Int, NonNegInt, PosInt, Section, Str

BatchSize = PosInt | list[list[Float]]
"""An int, or ``[[resolution, batch size], ...]`` pairs chosen per bucket by the closest resolution."""


class AdapterSection(Section):
    """``[adapter]``: LoRA / LoKr settings. Omit the table for a full fine-tune."""

    type: Literal["lora", "lokr"]
    """Adapter type: 'lora' or 'lokr'. Required."""
    rank: Int | Float
    """Adapter rank; alpha is forced to rank. For LoKr a huge rank (1e6) means full-matrix LoKr. Required."""
    dtype: Dtype | None = None
    """dtype of the adapter weights. Default: model.dtype."""
    dropout: Float = 0.0
    """LoRA dropout (lora only)."""
    decompose_factor: Int = -1
    """LoKr decompose factor (lokr only)."""
    rank_dropout: Float = 0.0
    """LoKr rank dropout (lokr only)."""
    exclude_modules: list[Str] | Str | None = None
    """Module names (list) or a regex (string) PEFT leaves out."""
    init_from_existing: Str | None = None
    """Folder with exactly one .safetensors (e.g. a previous epochN/) to initialise the adapter from."""
    fuse_adapters: list[FuseAdapter] | None = None
    """LoRAs merged into the base weights before training: [{path = '...', weight = 1.0}] (flux, chroma)."""


class FuseAdapter(Section):
    """One ``fuse_adapters`` entry."""

    path: Str
    """LoRA file to merge."""
    weight: Float = 1.0
    """Merge weight."""


class OptimizerSection(Section):
    """``[optimizer]``: every key except type/gradient_release/beta2_half_life goes to the constructor."""

    type: Str
    """Optimizer: adamw, adamw8bit, adamw_optimi, stableadamw, sgd, adamw8bitkahan, offload, automagic,
    genericoptim (case-insensitive), or any pytorch_optimizer class name (case-sensitive, e.g. 'Prodigy')."""
    lr: Float | None = None
    """Learning rate."""
    gradient_release: Bool = False
    """Experimental per-parameter optimizer steps; needs data-parallel degree 1 and disables clipping."""
    beta2_half_life: Float | None = None
    """Sets betas[1] = 0.5 ** (global_batch_size / half_life). Needs betas."""
    betas: list[Float] | None = None
    """Adam betas, e.g. [0.9, 0.99]."""
    weight_decay: Float | None = None
    """Weight decay (not applied to biases and norms)."""
    eps: Float | list[Float] | None = None
    """Epsilon (a pair for automagic)."""


class MonitoringSection(Section):
    """``[monitoring]``: Weights & Biases."""

    enable_wandb: Bool = False
    """Log to W&B (rank 0). Needs wandb_api_key, wandb_tracker_name and wandb_run_name."""
    wandb_api_key: Str = ""
    """Keep "" in the file: dpipe-tui passes $WANDB_API_KEY from the environment instead."""
    wandb_tracker_name: Str | None = None
    """W&B project name."""
    wandb_run_name: Str | None = None
    """W&B run name."""


class EvalDataset(Section):
    """One ``eval_datasets`` entry."""

    name: Str
    """Name used in TensorBoard/W&B tags."""
    config: Str
    """Path of the eval dataset TOML."""


class LoraLegacy(Section):
    """Legacy ``[lora]`` table: only dtype is read (DeepSpeed communication dtype)."""

    dtype: Dtype | None = None
    """DeepSpeed communication dtype."""


class DpipeTuiSection(Section):
    """``[dpipe_tui]``: our own table; diffusion-pipe ignores it."""

    engine: Literal["builtin", "diffusion-pipe"] = "diffusion-pipe"
    """Trainer: 'diffusion-pipe' (your checkout) or 'builtin' (dpipe-tui's own engine, CPU capable)."""
    gpus: list[NonNegInt] | None = None
    """GPU ids to run on (default: ask the launcher)."""
    prepare: Literal["demo"] | None = None
    """'demo': generate the demo model and dataset where the profile points before the first run."""
    description: Str | None = None
    """Free text shown in the profile list."""
    seed: int | None = None
    """Builtin engine: base random seed (noise, timesteps, shuffles); resume repeats it exactly."""
    random_init: bool = False
    """Builtin engine: random transformer weights (benchmarks, demos); transformer_path unread."""
    relative_paths: Literal["engine", "profile"] = "engine"
    """Where relative paths resolve: 'engine' (its working directory: the diffusion-pipe checkout, or
    this file's folder for the builtin engine) or 'profile' (this file's folder; the trainer gets
    absolute paths)."""
    keep_last_saves: NonNegInt | None = None
    """Retention, applied by the run's monitor after each save: saved models to keep, newest first."""
    keep_every: PosInt | None = None
    """Retention: also keep saves whose epoch/step number is a multiple of this."""
    keep_states: NonNegInt | None = None
    """Retention: training states (global_stepN) to keep, newest first (latest is always kept)."""


class MainConfig(Section):
    """The main training config (the file passed as ``--config``)."""

    output_dir: Str
    """Parent folder of run folders; each run creates output_dir/<UTC timestamp>/. Required."""
    dataset: Str
    """Path of the dataset TOML. Required."""
    epochs: PosInt
    """Train until this epoch completes. Required, even with max_steps."""
    max_steps: PosInt | None = None
    """Stop once step >= max_steps (the final model is saved as stepN)."""
    eval_datasets: list[EvalDataset] = Field(default_factory=list)
    """Held-out eval sets: [{name = '...', config = '...'}]."""
    micro_batch_size_per_gpu: BatchSize = 1
    """Per-GPU micro batch; or [[resolution, bs], ...] per bucket."""
    image_micro_batch_size_per_gpu: BatchSize | None = None
    """Micro batch for image buckets when mixing images and video. Default: micro_batch_size_per_gpu."""
    pipeline_stages: PosInt = 1
    """Pipeline-parallel degree P; data-parallel degree = GPUs / P."""
    gradient_accumulation_steps: PosInt = 1
    """Micro-batches per optimizer step."""
    gradient_clipping: Float = 1.0
    """Max gradient norm (0 disables)."""
    warmup_steps: NonNegInt = 0
    """Linear LR warmup steps."""
    lr_scheduler: Literal["constant", "linear", "cosine"] = "constant"
    """'constant', 'linear' (to 0 over epochs) or 'cosine' (to 1e-6 over epochs)."""
    force_constant_lr: Float | None = None
    """Force a constant LR (also after a resume)."""
    blocks_to_swap: NonNegInt = 0
    """Blocks kept in RAM and streamed to the GPU (LoRA and pipeline_stages = 1 only)."""
    disable_block_swap_for_eval: Bool = False
    """Run eval without block swapping (faster, more VRAM)."""
    activation_checkpointing: Bool | Literal["unsloth"] = False
    """true, false or 'unsloth' (CPU-offloaded checkpointing)."""
    reentrant_activation_checkpointing: Bool = False
    """Use reentrant torch checkpointing (sometimes needed with pipeline_stages > 1)."""
    partition_method: Str = "parameters"
    """How layers are split across stages: 'parameters', 'uniform', 'type:<regex>' or 'manual'."""
    partition_split: list[NonNegInt] | None = None
    """Split points for partition_method = 'manual'; length pipeline_stages - 1."""
    save_every_n_epochs: PosInt | None = None
    """Save the model/LoRA to epochN/ every N epochs."""
    save_every_n_steps: PosInt | None = None
    """Save to stepN/ every N steps."""
    save_every_n_examples: PosInt | None = None
    """Save every N training examples (converted to steps)."""
    checkpoint_every_n_epochs: PosInt | None = None
    """DeepSpeed training-state checkpoint every N epochs (for resume)."""
    checkpoint_every_n_minutes: Float | None = Field(default=None, ge=0)
    """DeepSpeed training-state checkpoint every N minutes (for resume)."""
    save_dtype: Dtype | None = None
    """Cast saved weights to this dtype."""
    caching_batch_size: PosInt = 1
    """Batch size for VAE/text-encoder caching."""
    map_num_proc: PosInt | None = None
    """Worker processes for dataset caching. Default: min(8, CPU count)."""
    steps_per_print: PosInt = 1
    """How often DeepSpeed prints step lines."""
    logging_steps: PosInt = 1
    """How often (in steps) metrics go to TensorBoard/W&B."""
    eval_every_n_epochs: PosInt | None = None
    """Eval every N epochs."""
    eval_every_n_steps: PosInt | None = None
    """Eval every N steps."""
    eval_every_n_examples: PosInt | None = None
    """Eval every N examples (converted to steps)."""
    eval_before_first_step: Bool = True
    """Eval at step 0 (skipped when resuming)."""
    eval_micro_batch_size_per_gpu: BatchSize | None = None
    """Eval micro batch. Default: micro_batch_size_per_gpu."""
    eval_image_micro_batch_size_per_gpu: BatchSize | None = None
    """Eval micro batch for image buckets. Default: eval micro batch."""
    eval_gradient_accumulation_steps: PosInt = 1
    """Eval micro-batches per step."""
    video_clip_mode: Literal["single_beginning", "single_middle"] = "single_beginning"
    """Which clip of a longer video is used."""
    compile: Bool = False
    """torch.compile the model."""
    x_axis_examples: Bool = False
    """Plot against examples seen instead of steps."""
    uncond_fraction: Float = Field(default=0.0, ge=0.0, le=1.0)
    """Probability of training with the empty caption (caption dropout)."""
    huber_delta: Float | None = None
    """Use Huber loss with this delta instead of MSE."""
    smooth_l1_beta: Float | None = None
    """Use smooth-L1 loss with this beta instead of MSE (huber_delta wins)."""
    resume_from_checkpoint: Bool | Str = False
    """Fallback for the --resume_from_checkpoint flag (true = newest run, or a run folder name)."""
    model: ModelSection
    """[model]: which model to train and where its files are."""
    adapter: AdapterSection | None = None
    """[adapter]: LoRA/LoKr settings; omit for a full fine-tune."""
    optimizer: OptimizerSection
    """[optimizer]."""
    monitoring: MonitoringSection | None = None
    """[monitoring]: W&B."""
    lora: LoraLegacy | None = None
    """Legacy [lora] table (only dtype is read)."""
    dpipe_tui: DpipeTuiSection | None = None
    """[dpipe_tui]: dpipe-tui's own settings (engine, gpus, prepare, description)."""


AdapterSection.model_rebuild()
