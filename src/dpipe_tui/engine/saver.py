"""Saving models and training state, and the signal files, with train.py's timing (spec §2.1, §5).

Why mirror utils/saver.py's decisions: the supervisor and the checkpoint browser read these
folders and console lines, so ``epochN``/``stepN`` names, when a checkpoint is written, what
``save``/``save_quit`` do and the ``Saving model to directory X`` / ``Manually quitting`` lines
must match diffusion-pipe's. One deliberate difference: the signal-file decision is made on
rank 0 and broadcast, so ranks cannot disagree (diffusion-pipe lets each rank look on its own).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as tdist

from dpipe_tui.engine import chroma, lora

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


class Saver:
    """Model saves, DeepSpeed checkpoints and per-step/per-epoch save decisions."""

    def __init__(
        self,
        config: dict[str, Any],
        run_dir: Path,
        engine: Any,
        pipe: Any,
        model: Any,
        state: Any,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.engine = engine
        self.pipe = pipe
        self.model = model  # the whole transformer (every rank built all layers)
        self.state = state  # the data position (epoch, batches pulled)
        self.peft_config: Any = None
        self.save_dtype: Any = None
        self.last_checkpoint_time: float | None = None
        self.clock = clock  # wall-clock seconds, as train.py's time.time()

    def _is_main(self) -> bool:
        return bool(tdist.get_rank() == 0)

    def save_model(self, name: str) -> None:
        """Write ``<run_dir>/<name>/`` (adapter or full model + a copy of the main config)."""
        if self._is_main():
            print(f"Saving model to directory {name}", flush=True)
        dp = self.engine.grid.get_data_parallel_rank()
        stage = self.engine.grid.get_pipe_parallel_rank()
        save_dir = self.run_dir / name
        tmp = save_dir / "tmp"
        if dp == 0 and stage == 0:
            os.makedirs(tmp, exist_ok=False)
        tdist.barrier()
        if dp == 0:
            named = [(p.original_name, p) for p in self.pipe.parameters() if hasattr(p, "original_name")]
            if self.peft_config is not None:
                part = lora.peft_state_dict([(n, p) for n, p in named if p.requires_grad])
            else:
                part = {n: p.detach().cpu() for n, p in named}
            torch.save(part, tmp / f"state_dict_{stage}.bin")
        tdist.barrier()
        if dp == 0 and stage == 0:
            sd: dict[str, torch.Tensor] = {}
            for path in sorted(tmp.glob("*.bin")):
                sd.update(torch.load(path, map_location="cpu", weights_only=True))
            if self.peft_config is not None:
                lora.save_adapter(save_dir, sd, self.peft_config, self.save_dtype)
            else:  # the original layout's names, loadable as transformer_path by diffusion-pipe and us
                from safetensors.torch import save_file

                dtype = self.save_dtype
                save_file(
                    {k: v.to(dtype).contiguous() for k, v in chroma.bfl_state_dict(sd).items()},
                    str(save_dir / "model.safetensors"),
                    {"format": "pt", chroma.CONFIG_METADATA_KEY: json.dumps(chroma.model_config(self.model))},
                )
            shutil.copy(self.config["_config_path"], save_dir)
            shutil.rmtree(tmp)
        tdist.barrier()

    def save_checkpoint(self, step: int, examples: int) -> None:
        """DeepSpeed training state: ``global_stepN/`` and ``latest``."""
        self.engine.save_checkpoint(
            str(self.run_dir),
            client_state={"step": step, "examples": examples, "custom_loader": self.state.state_dict()},
            save_latest=True,
            exclude_frozen_parameters=True,
        )

    def _broadcast(self, value: Any) -> Any:
        box = [value]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def _timed_checkpoint_due(self, epoch: int | None = None) -> bool:
        if epoch is not None:
            every = self.config.get("checkpoint_every_n_epochs")
            if every and epoch % every == 0:
                self.last_checkpoint_time = self.clock()
                return True
            return False
        minutes = self.config.get("checkpoint_every_n_minutes")
        if minutes is None:  # as diffusion-pipe: only an absent key is off (0 checkpoints every step)
            return False
        due = False
        if self._is_main():
            now = self.clock()
            if self.last_checkpoint_time is None:  # the first step starts the clock
                self.last_checkpoint_time = now
            elif (now - self.last_checkpoint_time) / 60 > minutes:
                due, self.last_checkpoint_time = True, now
        return bool(self._broadcast(due))

    def process_epoch(self, epoch: int, step: int, examples: int) -> tuple[int | None, bool, bool]:
        """At an epoch boundary: checkpoint, ``epochN`` save, ``Started new epoch``."""
        checkpointed = saved = False
        if self.state.epoch != epoch:
            if self._timed_checkpoint_due(epoch):
                self.save_checkpoint(step, examples)
                checkpointed = True
            every = self.config.get("save_every_n_epochs")
            if every and epoch % every == 0:
                self.save_model(f"epoch{epoch}")
                saved = True
            epoch = self.state.epoch
            if epoch > self.config["epochs"]:
                return None, checkpointed, saved
            if self._is_main():
                print(f"Started new epoch: {epoch}", flush=True)
        return epoch, checkpointed, saved

    def _signal(self) -> str | None:
        signal = None
        if self._is_main():
            for name in ("save", "save_quit"):
                path = self.run_dir / name
                if path.is_file():
                    signal = name
                    path.unlink()
                    break
        return self._broadcast(signal)

    def process_step(self, step: int, examples: int) -> tuple[bool, bool]:
        """After a step: signal files, ``stepN`` save, timed checkpoint, manual quit."""
        checkpointed = saved = False
        signal = self._signal()
        every = self.config.get("save_every_n_steps")
        if every and step % every == 0:
            self.save_model(f"step{step}")
            saved = True
        if self._timed_checkpoint_due() or signal is not None:
            self.save_checkpoint(step, examples)
            checkpointed = True
        if signal == "save_quit":
            print("Manually quitting", flush=True)
            tdist.barrier()
            sys.exit(0)
        return checkpointed, saved
