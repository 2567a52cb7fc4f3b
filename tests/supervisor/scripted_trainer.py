"""A scripted stand-in for diffusion-pipe's train.py, for edge cases the real engine cannot produce on demand.

It accepts train.py's flags, prints diffusion-pipe-shaped lines (spec §4), writes the output layout
(timestamped run folder, global_stepN/, latest) and honours the save/save_quit files (spec §5.5).
Behaviour comes from a ``[scripted]`` table in the main TOML:

steps (int), step_time (s), checkpoint_every (steps), exit_code (int, exit with it at ``fail_at``),
fail_at (step), hang (bool: ignore SIGINT/SIGTERM and sleep forever after startup), child (bool: start a
child process in the same group), noise_rate (extra console lines per second), cache_time (s before
the run folder appears), fail_only_fresh (bool: do not fail after a resume), error (the exception line
printed at ``fail_at``, e.g. a config error; default a RuntimeError).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

DS = "[2026-01-01 00:00:00,000] [INFO] [logging.py:128:log_dist] [Rank 0]"


def log(msg: str) -> None:
    print(msg, flush=True)


def checkpoint(run_dir: Path, step: int, epoch: int) -> None:
    tag = f"global_step{step}"
    log(f"{DS} [Torch] Checkpoint {tag} is about to be saved!")
    folder = run_dir / tag
    folder.mkdir(exist_ok=True)
    (folder / "mp_rank_00_model_states.pt").write_text(f"step={step}\nepoch={epoch}\n")
    tmp = run_dir / ".latest.tmp"
    tmp.write_text(tag)
    os.replace(tmp, run_dir / "latest")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--deepspeed", action="store_true")
    ap.add_argument("--local_rank", type=int, default=-1)
    ap.add_argument("--master_port", type=int, default=29500)
    ap.add_argument("--resume_from_checkpoint", nargs="?", const=True, default=None)
    ap.add_argument("--trust_cache", action="store_true")
    args = ap.parse_args()
    with open(args.config, "rb") as fh:
        cfg = tomllib.load(fh)
    sc = cfg.get("scripted", {})
    steps = int(sc.get("steps", 10))
    step_time = float(sc.get("step_time", 0.05))
    every = int(sc.get("checkpoint_every", 0))
    noise_rate = float(sc.get("noise_rate", 0))
    out = Path(cfg["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    log(f"[INFO] [launch.py:1:main] master_port={args.master_port} cwd={os.getcwd()}")
    if sc.get("child"):
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    for i in range(3):
        sys.stderr.write(f"\rcaching latents: {i * 50}%|")
        sys.stderr.flush()
        time.sleep(float(sc.get("cache_time", 0.05)) / 3)
    sys.stderr.write("\rcaching latents: 100%|\n")
    if sc.get("hang"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log("hanging")
        while True:
            time.sleep(1)
    step, epoch = 1, 1
    resumed = bool(args.resume_from_checkpoint)
    if args.resume_from_checkpoint:
        name = args.resume_from_checkpoint
        run_dir = out / name if isinstance(name, str) else sorted(out.iterdir())[-1]
        latest = (run_dir / "latest").read_text().strip() if (run_dir / "latest").exists() else None
        if latest is None:
            log(f"[WARNING] Unable to find latest file at {run_dir}/latest")
            raise AssertionError
        saved = int(latest.removeprefix("global_step"))
        epoch = int((run_dir / latest / "mp_rank_00_model_states.pt").read_text().split("epoch=")[1])
        step = saved + 1
        log(f"Resuming training from checkpoint. Resuming at epoch: {epoch}, step: {step}")
    else:
        run_dir = out / datetime.now(UTC).strftime("%Y%m%d_%H-%M-%S")
        run_dir.mkdir()
    log("Global batch size = 1")
    fail_at = sc.get("fail_at")
    last_noise = time.monotonic()
    noise = 0
    while step <= steps:
        deadline = time.monotonic() + step_time
        while True:
            now = time.monotonic()
            if noise_rate:
                due = int((now - last_noise) * noise_rate) - noise
                for _ in range(due):
                    noise += 1
                    print(f"noise line {noise} " + "x" * 60)
                if due > 0:
                    sys.stdout.flush()
            if now >= deadline:
                break
            time.sleep(min(0.005, deadline - now))
        log(f"{DS} step={step}, skipped=0, lr=[0.0001], mom=[[0.9, 0.99]]")
        log(f"steps: {step} loss: {0.5 / step:.4f} iter time (s): {step_time:.3f} samples/sec: 1.000")
        if fail_at is not None and step == int(fail_at) and not (resumed and sc.get("fail_only_fresh")):
            error = str(sc.get("error", "RuntimeError: scripted failure"))
            log(f"Traceback (most recent call last):\n{error}")
            return int(sc.get("exit_code", 1))
        if every and step % every == 0:
            checkpoint(run_dir, step, epoch)
        if (run_dir / "save").is_file():
            checkpoint(run_dir, step, epoch)
            (run_dir / "save").unlink()
        if (run_dir / "save_quit").is_file():
            checkpoint(run_dir, step, epoch)
            (run_dir / "save_quit").unlink()
            log("Manually quitting")
            return 0
        step += 1
    checkpoint(run_dir, steps, epoch)
    log("TRAINING COMPLETE!")
    return int(sc.get("exit_code", 0)) if fail_at is None else 0


if __name__ == "__main__":
    sys.exit(main())
