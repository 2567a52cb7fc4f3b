"""The training loop, in train.py's order of hooks (spec §2.1 "Timing of the hooks").

Per step: ``train_batch`` → epoch boundary (epoch checkpoint → ``epochN`` save → ``Started new
epoch``) → ``train/loss`` → eval if due → ``train/epoch_loss`` → signal files / ``stepN`` save /
timed checkpoint / manual quit → ``max_steps``. At the end: a checkpoint unless one was just
written, the final save unless just saved, then ``TRAINING COMPLETE!``.

Determinism: the global torch RNG is reseeded from (seed, step, rank) before each step and the
data noise from (seed, epoch, batch, dp rank), so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.distributed as tdist

from dpipe_tui.engine import inputs, layers, setup
from dpipe_tui.engine.data import EpochPlan, plan_epoch
from dpipe_tui.engine.monitor import Monitor
from dpipe_tui.engine.optim import build_optimizer, build_scheduler
from dpipe_tui.engine.saver import Saver

QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


@dataclass
class DataState:
    """Position in the epoch plan; saved as diffusion-pipe's ``custom_loader`` state."""

    batches: int
    epoch: int = 1
    index: int = 0

    def advance(self) -> None:
        self.index += 1
        if self.index >= self.batches:  # the epoch bumps as soon as its last batch is pulled
            self.index, self.epoch = 0, self.epoch + 1

    def state_dict(self) -> dict[str, int]:
        # diffusion-pipe's loader has always pulled one batch ahead (0 right after an epoch bump).
        return {"epoch": self.epoch, "num_batches_pulled": self.index + 1 if self.index else 0}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.index = int(state["epoch"]), max(int(state["num_batches_pulled"]) - 1, 0)


def train_micro_batch(config: dict[str, Any]) -> Any:
    """The micro-batch size of training: images train at ``image_micro_batch_size_per_gpu`` when
    set (as train.py; every dataset of the built-in engine is images)."""
    return config.get("image_micro_batch_size_per_gpu", config.get("micro_batch_size_per_gpu", 1))


def eval_micro_batch(config: dict[str, Any]) -> Any:
    """The eval micro-batch size: ``eval_image_micro_batch_size_per_gpu``, else
    ``eval_micro_batch_size_per_gpu``, else the training ``micro_batch_size_per_gpu`` (train.py)."""
    fallback = config.get("eval_micro_batch_size_per_gpu", config.get("micro_batch_size_per_gpu", 1))
    return config.get("eval_image_micro_batch_size_per_gpu", fallback)


class Run:
    """One training process (one rank)."""

    def __init__(self, args: Any, config: dict[str, Any]) -> None:
        self.args, self.config = args, config
        self.seed = int((config.get("dpipe_tui") or {}).get("seed", 0))
        self.uncond = float(config.get("uncond_fraction", 0.0))
        self.rank = 0

    def build(self) -> bool:
        """Everything before the first step; False when the run ends early (cache only, warning)."""
        args, config = self.args, self.config
        on_cpu, device = setup.init_distributed(args.master_port)
        self.rank = tdist.get_rank()
        p = setup.precision(config, on_cpu)
        data = setup.scan_datasets(config, args.i_know_what_i_am_doing)
        if data.too_many_resolutions:
            if self.rank == 0:
                print(
                    "WARNING: You have set a lot of resolutions in the dataset config. "
                    "Run with --i_know_what_i_am_doing to proceed."
                )
            return False
        setup.run_caching(config, data, args, device, p)
        if args.cache_only:
            return False
        self.source = inputs.Source()
        for scan in data.train + [s for scans in data.evals.values() for s in scans]:
            self.source.add_scan(scan)
        model, peft_config = setup.build_transformer(config, device, p, self.seed)
        resume = args.resume_from_checkpoint
        self.resume = resume if resume is not None else config.get("resume_from_checkpoint", False)
        self.run_dir = setup.choose_run_dir(config, self.resume)
        self.data = data
        self._init_engine(model, p)
        self.saver = Saver(config, self.run_dir, self.engine, self.pipe, model, self.state)
        self.saver.peft_config, self.saver.save_dtype = peft_config, p.save
        self._plan_evals(data.evals)
        return True

    def _init_engine(self, model: Any, p: setup.Precision) -> None:
        import deepspeed

        config = self.config
        kwargs: dict[str, Any] = {}
        if config.get("activation_checkpointing"):
            reentrant = config.get("reentrant_activation_checkpointing", False)
            kwargs = {
                "activation_checkpoint_interval": 1,
                "checkpointable_layers": ["DoubleBlockLayer", "SingleBlockLayer"],
                "activation_checkpoint_func": partial(
                    torch.utils.checkpoint.checkpoint, use_reentrant=reentrant
                ),
            }
        self.pipe = layers.EnginePipelineModule(
            layers=layers.to_layers(model, p.autocast),
            num_stages=config.get("pipeline_stages", 1),
            loss_fn=layers.loss_for(config),
            partition_method=config.get("partition_method", "parameters"),
            manual_split=config.get("partition_split"),
            dynamic_shape=True,
            **kwargs,
        )
        if config.get("compile", False):
            if p.autocast is not None:  # a GPU
                self.pipe.compile(dynamic=True)  # as train.py
            elif self.rank == 0:  # the CPU (validate says so too)
                print("compile: the built-in engine compiles only on a GPU; training uncompiled", flush=True)
        mbs_cfg = train_micro_batch(config)
        mbs = mbs_cfg if isinstance(mbs_cfg, int) else mbs_cfg[0][1]
        self.gas = int(config.get("gradient_accumulation_steps", 1))
        optim_cfg = dict(config["optimizer"])
        release = bool(optim_cfg.get("gradient_release", False))
        ds_config = {
            "train_micro_batch_size_per_gpu": mbs,
            "gradient_accumulation_steps": self.gas,
            # gradient release steps each parameter as its gradient arrives, so nothing is clipped
            # (train.py sets 0); the update itself is the same as one optimizer step after backward
            "gradient_clipping": 0.0 if release else float(config.get("gradient_clipping", 1.0)),
            "steps_per_print": int(config.get("steps_per_print", 1)),
        }
        params = [q for q in self.pipe.parameters() if q.requires_grad]
        if half_life := optim_cfg.pop("beta2_half_life", None):
            dp_world = tdist.get_world_size() // int(config.get("pipeline_stages", 1))
            betas = list(optim_cfg["betas"])
            betas[1] = 0.5 ** (mbs * self.gas * dp_world / half_life)
            if self.rank == 0:
                print(f"Computed beta2 = {betas[1]}", flush=True)
            optim_cfg["betas"] = betas
        self.engine, self.optimizer, _, _ = deepspeed.initialize(
            model=self.pipe,
            model_parameters=params,
            optimizer=lambda ps: build_optimizer(list(ps), optim_cfg),
            config=ds_config,
        )
        self.engine._support_torch_style_backward = True  # as diffusion-pipe, for pipeline_stages > 1
        grid = self.engine.grid
        self.dp_rank, dp_world = grid.get_data_parallel_rank(), grid.get_data_parallel_world_size()
        self.global_batch = mbs * self.gas * dp_world
        print(f"Global batch size = {self.global_batch}", flush=True)
        for what in ("save", "eval"):
            if n := config.pop(f"{what}_every_n_examples", None):
                config[f"{what}_every_n_steps"] = n // self.global_batch
                print(f"Computed {what}_every_n_steps = {config[f'{what}_every_n_steps']}", flush=True)
        self._plan_train(mbs_cfg, dp_world)
        self.engine.lr_scheduler = build_scheduler(self.optimizer, config, len(self.plan))

    def _plan_train(self, mbs_cfg: Any, dp_world: int) -> None:
        self.plan = plan_epoch(self.data.train, mbs_cfg, self.gas, dp_world, self.data.train_subsample)
        if len(self.plan) == 0:
            raise RuntimeError(
                "Processed dataset was empty. Probably caused by rounding down for each size bucket.\n"
                "Try decreasing the global batch size, or increasing num_repeats."
            )
        self.state = DataState(len(self.plan))

    def _plan_evals(self, evals: dict[str, Any]) -> None:
        cfg = self.config
        mbs = eval_micro_batch(cfg)
        self.eval_gas = int(cfg.get("eval_gradient_accumulation_steps", 1))
        dp_world = self.engine.grid.get_data_parallel_world_size()
        self.eval_plans: dict[str, EpochPlan] = {}
        for name, scans in evals.items():
            plan = plan_epoch(scans, mbs, self.eval_gas, dp_world, self.data.subsample.get(name))
            if len(plan) == 0:
                # an empty plan would log an eval loss of 0.0 at every eval; say so and skip it
                if self.rank == 0:
                    size = mbs * self.eval_gas * dp_world if isinstance(mbs, int) else None
                    what = f"{size} samples" if size else "enough samples for one batch"
                    print(
                        f"WARNING: eval dataset '{name}' has no complete eval batch: no size bucket holds "
                        f"{what} (eval_micro_batch_size_per_gpu x eval_gradient_accumulation_steps x "
                        "data-parallel ranks). Its eval is skipped; add images (or num_repeats) or lower "
                        "eval_micro_batch_size_per_gpu.",
                        flush=True,
                    )
                continue
            self.eval_plans[name] = plan

    def _iterator(self, batches: list[Any]) -> Any:
        return iter(batches) if self.engine.is_first_stage() or self.engine.is_last_stage() else None

    def evaluate(self, monitor: Monitor, x: int) -> None:
        """Eval at the 9 fixed timestep quantiles (``<name>/loss``, quantile tags, eval time)."""
        if not self.eval_plans:
            return
        if self.rank == 0:
            print("Running eval", flush=True)
        start = time.time()
        model_cfg = self.config["model"]
        with torch.no_grad():
            for name, plan in self.eval_plans.items():
                losses = []
                for qi, q in enumerate(QUANTILES):
                    total = 0.0
                    for index in range(len(plan)):
                        samples = plan.rank_slice(index, self.dp_rank)
                        parts = (self.seed, -1, index, self.dp_rank, qi)
                        batches = inputs.micro_batches(
                            self.source, samples, self.eval_gas, model_cfg, parts, q, self.uncond
                        )
                        self.engine.reset_activation_shape()
                        it = self._iterator(batches)
                        total += self.engine.eval_batch(it, num_micro_batches=self.eval_gas).item()
                    losses.append(total / len(plan))
                    monitor.scalar(f"{name}/loss_quantile_{q:.2f}", losses[-1], x)
                monitor.scalar(f"{name}/loss", sum(losses) / len(losses), x)
        monitor.scalar("eval/eval_time_sec", time.time() - start, x)

    def _resume(self) -> tuple[int, int]:
        args = self.args
        optimizer = self.engine.optimizer
        param_groups = list(optimizer.param_groups) if optimizer is not None else []
        load_path, client = self.engine.load_checkpoint(
            str(self.run_dir),
            load_module_strict=False,
            load_optimizer_states=not args.reset_optimizer,
            load_lr_scheduler_states="force_constant_lr" not in self.config
            and not (args.reset_optimizer or args.reset_optimizer_params),
        )
        if args.reset_optimizer_params and optimizer is not None:
            optimizer.param_groups = param_groups  # state restored, hyperparameters from this config
        tdist.barrier()
        if load_path is None:
            raise RuntimeError(f"Unable to resume: no usable checkpoint ('latest') in {self.run_dir}")
        if args.reset_dataloader:
            self.state.epoch = client["custom_loader"]["epoch"]
        else:
            self.state.load_state_dict(client["custom_loader"])
        step = client["step"] + 1
        examples = (
            client["examples"] + self.global_batch if "examples" in client else step * self.global_batch
        )
        if self.rank == 0:
            print(f"Resuming training from checkpoint. Resuming at epoch: {self.state.epoch}, step: {step}")
        return step, examples

    def train(self) -> None:
        """The loop; returns after TRAINING COMPLETE (or exits 0 on save_quit)."""
        config = self.config
        step, examples = self._resume() if self.resume else (1, self.global_batch)
        if "force_constant_lr" in config:  # as train.py: after any resume, a constant lr from now on
            optimizer = self.engine.optimizer
            self.engine.lr_scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
            for group in optimizer.param_groups:
                group["lr"] = config["force_constant_lr"]
        monitor = Monitor(self.run_dir, config, self.rank == 0)
        if config.get("eval_before_first_step", True) and not self.resume:
            self.evaluate(monitor, 0)
        epoch, epoch_loss, num_steps = self.state.epoch, 0.0, 0
        checkpointed = saved = False
        logging_steps = int(config.get("logging_steps", 1))
        while True:
            torch.manual_seed(inputs.step_seed(self.seed, step, self.rank))
            samples = self.plan.rank_slice(self.state.index, self.dp_rank)
            parts = (self.seed, self.state.epoch, self.state.index, self.dp_rank)
            batches = inputs.micro_batches(
                self.source, samples, self.gas, config["model"], parts, uncond_fraction=self.uncond
            )
            self.state.advance()
            self.engine.reset_activation_shape()
            loss = self.engine.train_batch(self._iterator(batches)).item()
            epoch_loss, num_steps = epoch_loss + loss, num_steps + 1
            new_epoch, checkpointed, saved = self.saver.process_epoch(epoch, step, examples)
            finished = new_epoch != epoch
            x_axis = examples if config.get("x_axis_examples", False) else step
            if step % logging_steps == 0:
                monitor.scalar("train/loss", loss, x_axis)
            every_steps, every_epochs = config.get("eval_every_n_steps"), config.get("eval_every_n_epochs")
            if (every_steps and step % every_steps == 0) or (
                finished and every_epochs and epoch % every_epochs == 0
            ):
                self.evaluate(monitor, x_axis)
            if finished:
                monitor.scalar("train/epoch_loss", epoch_loss / num_steps, epoch, x_name="epoch")
                monitor.flush()
                epoch_loss, num_steps = 0.0, 0
                if new_epoch is None:
                    final = f"epoch{epoch}"
                    break
                epoch = new_epoch
            checkpointed, saved = self.saver.process_step(step, examples)
            if "max_steps" in config and step >= config["max_steps"]:
                final = f"step{step}"
                break
            step, examples = step + 1, examples + self.global_batch
        if not checkpointed:
            self.saver.save_checkpoint(step, examples)
        if not saved:
            self.saver.save_model(final)
        monitor.close()
        if self.rank == 0:
            print("TRAINING COMPLETE!", flush=True)
