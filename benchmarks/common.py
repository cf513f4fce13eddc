"""Helpers shared by the benchmarks: the real data, a timed Trainer run, a table printer."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from lightning import Callback, Trainer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_dataset(folder: str) -> str:
    """Path of a real dataset's local copy; exit with a clear reason when it is absent."""
    path = SHARED_DATA / folder
    if not path.is_dir():
        sys.exit(f"skipped: real dataset {folder!r} not found at {path}")
    return str(path)


class StepTimer(Callback):
    """Times the training steps after ``warmup`` steps (``clock``: ``time.perf_counter`` or ``time.process_time``)."""

    def __init__(self, warmup: int, clock=time.perf_counter) -> None:
        self.warmup, self.clock = warmup, clock
        self.start = self.end = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            self.start = self.clock()

    def on_train_end(self, trainer, pl_module) -> None:
        self.end = self.clock()


def timed_fit(
    model, datamodule, steps: int, warmup: int, precision: str, clock=time.perf_counter, callbacks=()
) -> float:
    """Fit for ``warmup + steps`` steps with the fewest extras; return seconds for the last ``steps``."""
    timer = StepTimer(warmup, clock)
    trainer = Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=warmup + steps,
        precision=precision,
        gradient_clip_val=1.0,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer, *callbacks],
    )
    trainer.fit(model, datamodule=datamodule)
    return timer.end - timer.start


def alternate(variants: dict, datamodule, steps: int, warmup: int, repeats: int) -> dict[str, float]:
    """Median training tokens/s of each variant, the variants taking turns so noise hits them alike.

    ``variants`` maps a name to ``(make_model, precision)``; ``make_model()`` builds a fresh model.
    """
    tokens = steps * datamodule.hparams.batch_size * datamodule.hparams.tbptt_steps
    speeds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (make_model, precision) in variants.items():
            torch.manual_seed(0)
            speeds[name].append(tokens / timed_fit(make_model(), datamodule, steps, warmup, precision))
    return {name: statistics.median(values) for name, values in speeds.items()}


def alternate_calls(variants: dict, warmup: int, repeats: int) -> dict[str, float]:
    """Median seconds of one call of each variant, the variants taking turns so noise hits them alike.

    ``variants`` maps a name to a no-argument callable (e.g. one training step).
    """
    for run in variants.values():
        for _ in range(warmup):
            run()
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def machine() -> str:
    """One line naming the machine and software."""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    """Print a Markdown table."""
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
