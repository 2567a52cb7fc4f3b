"""The built-in trainer: a diffusion-pipe-compatible Chroma LoRA trainer on DeepSpeed's pipeline engine.

It runs as its own process, one per rank, under the deepspeed launcher, and speaks diffusion-pipe's
language: the same main/dataset TOML, train.py's flags, the same console lines (``Global batch
size = N``, DeepSpeed's ``steps: N loss: ...``, ``Started new epoch: N``, ``Saving model to
directory X``, ``TRAINING COMPLETE!``...) and the same output layout (``<output_dir>/<UTC
%Y%m%d_%H-%M-%S>/`` with ``epochN/``, ``stepN/``, ``global_stepN/``, ``latest``, tfevents). Nothing
above it imports it; importing this package pulls no torch (the heavy modules are imported by
``__main__`` only after the config has been checked).

Modules: ``cli`` (flags), ``config`` (TOML checks, torch-free), ``data`` (bucketing and the epoch
plan, torch-free), ``cache`` / ``inputs`` (latent and T5 caches, micro-batches), ``chroma`` (model
parts, flow-matching inputs), ``layers`` (the pipeline layers), ``lora`` (PEFT + BFL-layout save),
``optim``, ``saver``, ``monitor`` (TensorBoard / W&B), ``setup`` + ``trainer`` (the run), ``demo``.

Run the CPU demo (what the README's first command does through the supervisor)::

    python -m dpipe_tui.engine.demo --profile profiles/tiny-demo.toml      # creates .demo/ assets
    cd profiles && DS_ACCELERATOR=cpu python -m deepspeed.launcher.runner --include localhost:0 \\
        --master_port 29555 --module dpipe_tui.engine --deepspeed --config tiny-demo.toml --master_port 29555

Two CPU processes: ``--num_gpus 2`` instead of ``--include``. On the CPU the engine computes in
float32 (one log line says so) and skips DeepSpeed's op probing and shared-memory comm op (a ~55 s
JIT build per machine; gloo is enough); ``DPIPE_TUI_DS_SHM=1`` turns that back on.

Dtypes: ``[model] dtype``, ``transformer_dtype`` (incl. float8) and ``[adapter] dtype`` are GPU
paths: on the CPU they are accepted and ignored (everything is float32), so the CPU tests do not
cover them; the full-size GPU commands below exercise them. ``save_dtype`` is honoured on both:
the saved ``epochN``/``stepN`` tensors are cast to it (tested on the CPU).

Engine-only keys in the profile's ``[dpipe_tui]`` table: ``seed`` (int, default 0; every RNG is
derived from it and the step, so a resumed run repeats an uninterrupted one) and ``random_init``
(bool: build the transformer with random weights from ``<diffusers_path>/transformer/config.json``,
real Chroma's size when that file is absent, instead of reading ``transformer_path``).

Full-size Chroma on a GPU without downloads (benchmarks at 512/1024, rank 32)::

    python -m dpipe_tui.engine.demo --preset full --out /tmp/chroma-full --resolution 1024
    cd /tmp/chroma-full && deepspeed --include localhost:0 --master_port 29600 \\
        --module dpipe_tui.engine --deepspeed --config profile.toml --master_port 29600

That writes ``profile.toml`` (bf16, LoRA rank 32, adamw_optimi, activation checkpointing,
``max_steps = 30``, ``random_init = true``), ``dataset.toml``, 24 generated images at the resolution,
a small Flux-format VAE and a small T5 whose width is Chroma's 4096. Set ``transformer_dtype =
'float8'`` for fp8 storage of the block weights (diffusers layerwise casting, bf16 compute). The
console's ``iter time (s)`` / ``samples/sec`` are the step figures.
"""
