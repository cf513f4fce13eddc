"""Checkpoints a run can trust: ``last.ckpt`` is always the latest state, and no file is ever half-written.

Lightning's ``ModelCheckpoint(monitor=..., save_last=True)`` rewrites ``last.ckpt`` only when it
saves a top-k checkpoint, so once the monitored metric stops improving ``last.ckpt`` goes back in
time (a 60-step run left it at step 40), and every resume from it silently loses work.
:class:`Checkpoint` keeps Lightning's top-k logic and also rewrites ``last.ckpt`` at every
validation, at every epoch end, every ``last_every_n_steps`` training steps and when training
ends. Every file it writes goes to a temporary file in the same folder first, flushed to disk and
moved into place with :func:`os.replace`, so a crash while saving leaves the previous file whole.

:func:`rng_states` and :func:`set_rng_states` carry the global random generators through a
checkpoint, so that a resumed run draws what the uninterrupted one drew.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor


class Checkpoint(ModelCheckpoint):
    """A ``ModelCheckpoint`` whose ``last.ckpt`` is always the latest state, written atomically.

    Use it wherever ``ModelCheckpoint`` is used (the recipes do)::

        callbacks:
          - class_path: rnnzoo.Checkpoint
            init_args: {monitor: val_loss, last_every_n_steps: 100}

    Args:
        last_every_n_steps: also rewrite ``last.ckpt`` every this many training steps (None: only at
            validation, epoch end and training end). After a crash, ``--ckpt_path last`` resumes
            from the latest of these.
        save_last: keep a ``last.ckpt`` (True, the default). ``"link"`` is refused: a link to the
            best checkpoint is not the latest state.
        **options: the other arguments of ``ModelCheckpoint`` (``monitor``, ``mode``,
            ``save_top_k``, ``dirpath``, ``filename`` ...).

    Raises:
        ValueError: for ``save_last`` other than True or False, or a ``last_every_n_steps`` below 1.
    """

    def __init__(self, last_every_n_steps: int | None = None, save_last: bool = True, **options: Any) -> None:
        if save_last not in (True, False):
            raise ValueError(f"save_last must be true or false for rnnzoo.Checkpoint, got {save_last!r}")
        if last_every_n_steps is not None and last_every_n_steps < 1:
            raise ValueError(f"last_every_n_steps must be a positive number of steps or null, got {last_every_n_steps}")
        super().__init__(save_last=save_last, **options)
        self.last_every_n_steps = last_every_n_steps
        self._last_step_written: int | None = None
        self._last_writes = 0

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Lightning's step-based saving, then ``last.ckpt`` every ``last_every_n_steps`` steps."""
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        every = self.last_every_n_steps
        if every is not None and trainer.global_step % every == 0:
            self.refresh_last(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Lightning's top-k saving, then ``last.ckpt`` (with this validation's callback state) if it did not."""
        writes = self._last_writes
        super().on_validation_end(trainer, pl_module)
        if self._last_writes == writes:
            self.refresh_last(trainer, again=True)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Lightning's epoch-end saving, then ``last.ckpt`` unless it already holds this step."""
        super().on_train_epoch_end(trainer, pl_module)
        self.refresh_last(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """``last.ckpt`` holds the final step, whatever the metric did; say where the run's checkpoints are."""
        super().on_train_end(trainer, pl_module)
        self.refresh_last(trainer)
        if trainer.fast_dev_run or self.dirpath is None:
            return
        best = ""
        if self.best_model_path:
            score = "" if self.best_model_score is None else f" {self.monitor} {float(self.best_model_score):.4g}"
            best = f"; best{score}: {self.best_model_path}"
        last = f"; last: {self.last_model_path}" if self.last_model_path else ""
        rank_zero_info(f"rnnzoo: this run's checkpoints are in {self.dirpath}{best}{last}")

    def refresh_last(self, trainer: Trainer, again: bool = False) -> None:
        """Write ``last.ckpt`` now unless it holds this step already (``again``: even then).

        A refresh does not count as a top-k save: Lightning skips its top-k check at a step it
        already saved, so the refresh must not hide the validation that follows it.
        """
        if not self.save_last or trainer.fast_dev_run or trainer.sanity_checking:
            return
        if trainer.state.fn != TrainerFn.FITTING:
            return
        if not again and self._last_step_written == trainer.global_step:
            return
        saved = self._last_global_step_saved
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self._last_global_step_saved = saved

    def _save_last_checkpoint(self, trainer: Trainer, monitor_candidates: dict[str, Tensor]) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self._last_step_written = trainer.global_step
            self._last_writes += 1

    def _save_checkpoint(self, trainer: Trainer, filepath: str) -> None:
        """Write to a temporary file beside ``filepath``, flush it to disk, then move it into place."""
        if not isinstance(self._fs, LocalFileSystem):
            super()._save_checkpoint(trainer, filepath)  # object stores write whole objects already
            return
        temporary = f"{filepath}.{os.getpid()}.tmp"
        super()._save_checkpoint(trainer, temporary)
        if trainer.is_global_zero:
            replace_atomically(temporary, filepath)
        trainer.strategy.barrier("rnnzoo.Checkpoint")
        self._last_checkpoint_saved = filepath


def replace_atomically(temporary: str | os.PathLike, path: str | os.PathLike) -> None:
    """Flush ``temporary`` to disk and move it to ``path`` in one step (the old ``path`` stays whole until then)."""
    descriptor = os.open(temporary, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def rng_states() -> dict[str, Any]:
    """The states of torch's (CPU and CUDA), Python's and NumPy's global generators, as tensors and ints.

    Dropout, teacher forcing and word dropout draw from these, so a resumed run restores them
    (:func:`set_rng_states`) to draw what the uninterrupted run drew. Only types
    ``torch.load(weights_only=True)`` reads are stored.
    """
    version, python_state, gauss = random.getstate()
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": [version, list(python_state), gauss]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if True:
        name, keys, position, has_gauss, cached = numpy.random.get_state()
        states["numpy"] = [name, torch.from_numpy(keys.astype(numpy.int64)), position, has_gauss, cached]
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` stored."""
    torch.set_rng_state(states["torch"])
    version, python_state, gauss = states["python"]
    random.setstate((version, tuple(python_state), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if "numpy" in states:
        name, keys, position, has_gauss, cached = states["numpy"]
        numpy.random.set_state((name, keys.numpy().astype(numpy.uint32), position, has_gauss, cached))
