from __future__ import annotations

from dpipe_tui.telemetry import ConsoleParser, EventKind, classify_failure


def test_step_lines_join_into_one_event_with_lr() -> None:
    parser = ConsoleParser(lambda: 1.0)
    text = (
        "[2026-08-21 14:10:03,412] [INFO] [logging.py:123:log_dist] [Rank 0] step=25, skipped=0, "
        "lr=[5.15e-06], mom=[[0.9, 0.99]]\nsteps: 25 loss: 0.0873 iter time (s): 4.512 samples/sec: 0.887\n"
    )
    steps = [e for e in parser.feed(text) + parser.flush() if e.kind is EventKind.STEP]
    assert len(steps) == 1
    assert steps[0].data == {
        "step": 25,
        "loss": 0.0873,
        "iter_time": 4.512,
        "samples_per_sec": 0.887,
        "lr": [5.15e-06],
    }


def test_oom_traceback_classified() -> None:
    parser = ConsoleParser(lambda: 1.0)
    text = (
        "[rank0]: Traceback (most recent call last):\n"
        '[rank0]:   File "/x/train.py", line 900, in <module>\n'
        "[rank0]:     loss = model_engine.train_batch()\n"
        "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.\n"
    )
    events = parser.feed(text) + parser.flush()
    failure = classify_failure(1, events, [])
    assert failure is not None
    assert failure.cls == "cuda_oom"
    assert "blocks_to_swap" in failure.hint
