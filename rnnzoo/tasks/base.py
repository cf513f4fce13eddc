"""What every task shares, kept small: a backbone by name, injected optimizers, a saved tokenizer."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCard, ModelHubMixin
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch.optim import Optimizer

from rnnzoo._version import __version__
from rnnzoo.cells import RecurrentBackbone, build_cell
from rnnzoo.tokenizers import Tokenizer, tokenizer_from_dict

CHECKPOINT_FORMAT = 1
"""Bumped when what rnnzoo stores in a checkpoint changes incompatibly."""

MODEL_CARD = """---
{{ card_data }}
---

# {{ name }}

An rnnzoo `{{ task }}` ({{ summary }}), {{ num_params }} parameters.

- **Data**: {{ dataset | default("not recorded", true) }}
- **Licence of the data**: {{ data_license | default("not recorded", true) }}
- **Recipe**: {{ recipe | default("not recorded", true) }}
- **Trained with**: `{{ command | default("not recorded", true) }}`

## Metrics measured on the test split

{{ metrics_table }}

## Use

```python
from rnnzoo import RNNTask

model = RNNTask.from_pretrained("{{ source }}")
```
"""


class RNNTask(
    LightningModule, ModelHubMixin, library_name="rnnzoo", tags=["rnnzoo", "rnn"], model_card_template=MODEL_CARD
):
    """Base class of the rnnzoo tasks.

    Owns what they all share:

    * :meth:`build_backbone` picks the recurrent backbone from the cell registry.
    * ``optimizer`` and ``scheduler`` are injected (from a recipe's ``class_path``
      or a Python callable) and applied in :meth:`configure_optimizers`.
    * :attr:`tokenizer` comes from the data module at ``setup()`` and is stored in
      every checkpoint, so ``load_from_checkpoint(path)`` alone restores it.
    * The global gradient norm (before clipping) is logged every step as
      ``grad_norm``; clip with the Trainer's ``gradient_clip_val``.
    * :meth:`save_pretrained` / :meth:`from_pretrained` / ``push_to_hub`` move a
      model as a safetensors artifact with its tokenizer and a model card
      (:mod:`rnnzoo.hub.artifact`, through ``huggingface_hub``'s ``ModelHubMixin``).

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

    def adopt_labels(self, datamodule: Any, size_option: str, what: str) -> None:
        """Take the data module's ``labels`` / ``label_names`` on first use; later, check they are the same.

        Args:
            datamodule: has ``labels`` (values, by index) and ``label_names``.
            size_option: the hyper-parameter that sized the head (``num_classes``, ``num_tags``).
            what: the labels' plural name in messages (``classes``, ``tags``).

        Raises:
            ValueError: when the head has another size, or the model was trained on other labels.
        """
        labels, names = list(datamodule.labels), list(datamodule.label_names)
        expected = self.hparams[size_option]
        if len(labels) != expected:
            raise ValueError(
                f"the model was built for {size_option}={expected} but the data has {len(labels)} {what} {names}; "
                f"set {size_option} to {len(labels)}"
            )
        if getattr(self, "labels", None) is None:
            self.labels, self.label_names = labels, names
        elif labels != self.labels:
            raise ValueError(
                f"the data's {what} {names} differ from the {what} this model was trained on {self.label_names}: "
                f"its predictions would be named wrongly. Use data with the same {what}."
            )

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

    # Validation and test metrics: accumulated by the steps, reset and logged once per epoch here.

    def reset_metrics(self, stage: str) -> None:
        """Hook: clear the metric state of ``stage`` (``val`` or ``test``)."""

    def log_metrics(self, stage: str) -> None:
        """Hook: compute and log the metrics of ``stage``, then clear them."""

    def on_validation_epoch_start(self) -> None:
        """Fresh metric state (made in this loop's grad mode: a standalone validate runs in inference mode)."""
        self.reset_metrics("val")

    def on_test_epoch_start(self) -> None:
        """Fresh metric state."""
        self.reset_metrics("test")

    def on_validation_epoch_end(self) -> None:
        """Log the validation metrics."""
        self.log_metrics("val")

    def on_test_epoch_end(self) -> None:
        """Log the test metrics."""
        self.log_metrics("test")

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        """Log the global L2 norm of the gradients, before any clipping."""
        from rnnzoo.gradients import global_grad_norm

        parameters = [p for p in self.parameters() if p.grad is not None]
        if parameters:  # a tensor: Lightning calls .item() only when it writes the logs, not every step
            self.log("grad_norm", global_grad_norm(parameters))

    # What the model learned from its data besides weights, saved with it.

    def data_state(self) -> dict[str, Any]:
        """Hook: the JSON-able things the model took from its data (the tokenizer; subclasses add labels)."""
        return {"tokenizer": None if self.tokenizer is None else self.tokenizer.to_dict()}

    def load_data_state(self, state: dict[str, Any]) -> None:
        """Hook: restore what :meth:`data_state` returned."""
        if state.get("tokenizer") is not None:
            self.tokenizer = tokenizer_from_dict(state["tokenizer"])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the tokenizer (and labels), the task class and the format version with the weights."""
        checkpoint["rnnzoo"] = {
            "format": CHECKPOINT_FORMAT,
            "version": __version__,
            "task": f"{type(self).__module__}.{type(self).__qualname__}",
            **self.data_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the tokenizer (and labels); refuse checkpoints from a newer, unknown format."""
        stored = checkpoint.get("rnnzoo", {})
        if stored.get("format", CHECKPOINT_FORMAT) > CHECKPOINT_FORMAT:
            raise ValueError(
                f"this checkpoint has rnnzoo format {stored['format']} (written by rnnzoo {stored.get('version')}); "
                f"this rnnzoo ({__version__}) reads format {CHECKPOINT_FORMAT} or older: upgrade rnnzoo"
            )
        self.load_data_state(stored)

    # Pretrained artifacts (save_pretrained and push_to_hub come from ModelHubMixin).

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write ``model.safetensors``, ``tokenizer.json`` and ``config.json`` (called by ``save_pretrained``)."""
        from rnnzoo.hub.artifact import CARD, write_artifact

        (Path(save_directory) / CARD).unlink(missing_ok=True)  # the mixin keeps an existing card; ours must be fresh
        write_artifact(self, save_directory)

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The model card (``README.md``) of :meth:`save_pretrained`.

        Pass ``model_card_kwargs`` such as ``dataset``, ``recipe``, ``command``,
        ``metrics`` (name -> value) and ``data_license`` to ``save_pretrained``.
        """
        metrics = kwargs.pop("metrics", None) or {}
        rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in metrics.items())
        table = f"| metric | value |\n|---|---|\n{rows}" if metrics else "Not measured."
        defaults = {
            "name": kwargs.get("name", type(self).__name__),
            "task": type(self).__name__,
            "summary": f"cell {self.hparams.get('cell') or self.hparams.get('encoder_cell')}, "
            f"hidden size {self.hparams.get('hidden_size')}",
            "num_params": f"{sum(p.numel() for p in self.parameters()):,}",
            "metrics_table": table,
            "source": kwargs.get("name", "path/to/this/folder"),
        }
        return super().generate_model_card(*args, **{**defaults, **kwargs})

    @classmethod
    def from_pretrained(
        cls, source: str | os.PathLike, *, revision: str | None = None, map_location: str = "cpu", **_: Any
    ) -> RNNTask:
        """Load a pretrained task: a bundled zoo name, an artifact folder or a HuggingFace hub repo id.

        Every file is checked against its recorded sha256. Called on :class:`RNNTask`
        it returns whatever task the artifact holds; on a subclass, it checks the kind.
        """
        from rnnzoo.hub.artifact import read_artifact, resolve

        return read_artifact(resolve(source, revision), expected=cls, map_location=map_location)


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
