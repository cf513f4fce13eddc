"""What every task shares, kept small: a backbone by name, injected optimizers, a saved tokenizer."""

from __future__ import annotations

import importlib
import os
from typing import Any

import torch
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch.optim import Optimizer

from rnnzoo._version import __version__
from rnnzoo.cells import RecurrentBackbone, build_cell
from rnnzoo.tokenizers import Tokenizer, tokenizer_from_dict

CHECKPOINT_FORMAT = 1
"""Bumped when what rnnzoo stores in a checkpoint changes incompatibly."""


class RNNTask(LightningModule):
    """Base class of the rnnzoo tasks.

    Owns what they all share:

    * :meth:`build_backbone` picks the recurrent backbone from the cell registry.
    * ``optimizer`` and ``scheduler`` are injected (from a recipe's ``class_path``
      or a Python callable) and applied in :meth:`configure_optimizers`.
    * :attr:`tokenizer` comes from the data module at ``setup()`` and is stored in
      every checkpoint, so ``load_from_checkpoint(path)`` alone restores it.
    * The global gradient norm (before clipping) is logged every step as
      ``grad_norm``; clip with the Trainer's ``gradient_clip_val``.

    Args:
        optimizer: builds the optimizer from the parameters; AdamW(lr=1e-3) if None.
        scheduler: builds an LR scheduler from the optimizer, stepped every
            training step (``ReduceLROnPlateau`` is stepped on ``val_loss`` per epoch).
    """

    def __init__(
        self, optimizer: OptimizerCallable | None = None, scheduler: LRSchedulerCallable | None = None
    ) -> None:
        super().__init__()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.tokenizer: Tokenizer | None = None

    @staticmethod
    def build_backbone(cell: str, input_size: int, hidden_size: int, **options: Any) -> RecurrentBackbone:
        """The backbone registered as ``cell`` (see :func:`rnnzoo.list_cells`)."""
        return build_cell(cell, input_size, hidden_size, **options)

    def setup(self, stage: str) -> None:
        """Take the data module's tokenizer when the model has none yet."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        tokenizer = getattr(datamodule, "tokenizer", None)
        if self.tokenizer is None:
            self.tokenizer = tokenizer
        elif tokenizer is not None and tokenizer != self.tokenizer:
            raise ValueError(
                f"the data module's tokenizer ({tokenizer!r}) differs from the model's ({self.tokenizer!r}): "
                "the model would read ids it was not trained on. Build both from the same training split."
            )
        self.check_tokenizer()

    def check_tokenizer(self) -> None:
        """Hook: raise when :attr:`tokenizer` does not fit the model (e.g. a vocabulary size)."""

    def configure_optimizers(self) -> Any:
        """Build the injected optimizer and scheduler."""
        parameters = [p for p in self.parameters() if p.requires_grad]
        optimizer = (
            self.optimizer_factory(parameters) if self.optimizer_factory else torch.optim.AdamW(parameters, lr=1e-3)
        )
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config = {"scheduler": scheduler, "monitor": "val_loss", "interval": "epoch"}
        else:
            config = {"scheduler": scheduler, "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": config}

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        """Log the global L2 norm of the gradients, before any clipping."""
        norms = [p.grad.detach().norm(2) for p in self.parameters() if p.grad is not None]
        if norms:
            self.log("grad_norm", torch.linalg.vector_norm(torch.stack(norms)))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the tokenizer, the task class and the format version with the weights."""
        checkpoint["rnnzoo"] = {
            "format": CHECKPOINT_FORMAT,
            "version": __version__,
            "task": f"{type(self).__module__}.{type(self).__qualname__}",
            "tokenizer": None if self.tokenizer is None else self.tokenizer.to_dict(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the tokenizer; refuse checkpoints from a newer, unknown format."""
        stored = checkpoint.get("rnnzoo", {})
        if stored.get("format", CHECKPOINT_FORMAT) > CHECKPOINT_FORMAT:
            raise ValueError(
                f"this checkpoint has rnnzoo format {stored['format']} (written by rnnzoo {stored.get('version')}); "
                f"this rnnzoo ({__version__}) reads format {CHECKPOINT_FORMAT} or older: upgrade rnnzoo"
            )
        if stored.get("tokenizer") is not None:
            self.tokenizer = tokenizer_from_dict(stored["tokenizer"])


def load_task(ckpt_path: str, map_location: str | torch.device = "cpu") -> RNNTask:
    """Load any rnnzoo task from a Lightning checkpoint, tokenizer included.

    The task class is read from the checkpoint, so callers need not know it.
    """
    if not os.path.isfile(ckpt_path):
        raise FileNotFoundError(f"no checkpoint at {ckpt_path!r}")
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    task = checkpoint.get("rnnzoo", {}).get("task")
    if task is None:
        raise ValueError(f"{ckpt_path!r} is not an rnnzoo checkpoint (it names no rnnzoo task)")
    module, _, name = task.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls.load_from_checkpoint(ckpt_path, map_location=map_location)
