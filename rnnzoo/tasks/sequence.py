"""Many-to-one over continuous inputs: read every frame, predict from the last step.

The long-range benchmarks (the adding problem, pixel-by-pixel MNIST) are this task: a
backbone reads ``[B, T, frame_size]`` frames and a linear head reads its last output,
as a regression (mean squared error) or a classification (cross-entropy, accuracy).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from rnnzoo.batches import FrameBatch
from rnnzoo.errors import preview
from rnnzoo.tasks.base import RNNTask


class SequencePredictor(RNNTask):
    """Frames -> recurrent backbone -> linear head on the last step.

    Logs ``train_loss`` and ``grad_norm``; for validation and test ``*_loss`` (MSE or
    cross-entropy) and, for classification, ``*_acc``. Pair it with
    :class:`~rnnzoo.GradientRecorder` to see the gradient reaching each step.

    Args:
        frame_size: features per step (linked from the data module by the CLI).
        num_outputs: 1 for a scalar regression, the number of classes otherwise.
        objective: ``regression`` or ``classification``.
        cell: a registered cell name.
        hidden_size: hidden features of the backbone.
        num_layers: stacked recurrent layers.
        dropout: between layers.
        cell_options: extra options of the cell (e.g. ``{max_length: 784}`` for ``indrnn``).
        optimizer: see :class:`~rnnzoo.tasks.RNNTask`.
        scheduler: see :class:`~rnnzoo.tasks.RNNTask`.
    """

    def __init__(
        self,
        frame_size: int,
        num_outputs: int = 1,
        objective: Literal["regression", "classification"] = "regression",
        cell: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        cell_options: dict[str, Any] | None = None,
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        if objective not in ("regression", "classification"):
            raise ValueError(f"objective must be 'regression' or 'classification', got {objective!r}")
        if objective == "classification" and num_outputs < 2:
            raise ValueError(f"classification needs num_outputs >= 2 classes, got {num_outputs}")
        options = {"num_layers": num_layers, "dropout": dropout, **(cell_options or {})}
        self.backbone = self.build_backbone(cell, frame_size, hidden_size, **options)
        self.head = nn.Linear(self.backbone.output_size, num_outputs)
        if objective == "classification":
            self.metrics = self.stage_metrics(acc=MulticlassAccuracy(num_outputs))

    def setup(self, stage: str) -> None:
        """As :meth:`RNNTask.setup`; a classifier also checks the data module's classes fit ``num_outputs``."""
        super().setup(stage)
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if self.hparams.objective == "classification":
            for split, rows in getattr(datamodule, "encoded", {}).items():
                if isinstance(rows, TensorDataset):
                    self.check_classes(rows.tensors[1], split)

    def check_classes(self, targets: Tensor, split: str) -> None:
        """Refuse class indices outside ``[0, num_outputs)`` (the loss would fail inside, naming nothing).

        Raises:
            ValueError: naming the split, the labels out of range and the rows holding them.
        """
        classes = self.hparams.num_outputs
        outside = ((targets < 0) | (targets >= classes)).nonzero().flatten().tolist()
        if outside:
            raise ValueError(
                f"split {split!r} has labels {preview(sorted(set(targets[outside].tolist())))} outside "
                f"[0, {classes}) (num_outputs: {classes}) in {len(outside)} row(s), by position {preview(outside)}: "
                f"set num_outputs to the number of classes, or fix those labels"
            )

    def forward(self, frames: Tensor) -> Tensor:
        """``frames [B, T, frame_size]`` -> predictions ``[B, num_outputs]`` from the last step."""
        if frames.dim() != 3 or frames.shape[-1] != self.hparams.frame_size:
            raise ValueError(
                f"expected frames [batch, steps, {self.hparams.frame_size}], got {list(frames.shape)}: "
                "the data's frame size must match the model's frame_size"
            )
        outputs, _ = self.backbone(frames)
        return self.head(outputs[:, -1])

    def loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """MSE for regression, cross-entropy for classification."""
        if self.hparams.objective == "classification":
            return F.cross_entropy(predictions.float(), targets)
        return F.mse_loss(predictions.float().squeeze(-1), targets.float())

    def training_loss(self, batch: FrameBatch) -> Tensor:
        """Loss of one batch."""
        frames, targets = batch
        return self.loss(self(frames), targets)

    def evaluate(self, batch: FrameBatch, stage: str) -> None:
        """Accumulate the loss (and accuracy)."""
        frames, targets = batch
        predictions = self(frames)
        self.metrics[stage]["loss"].update(self.loss(predictions, targets), weight=targets.shape[0])
        if self.hparams.objective == "classification":
            self.metrics[stage]["acc"].update(predictions, targets)

    def encode_inputs(self, inputs: list[Any], **options: Any) -> FrameBatch:
        """Frame sequences ``[T, frame_size]``, all of one length -> a :class:`~rnnzoo.batches.FrameBatch`.

        Raises:
            ValueError: for sequences of different lengths or shapes.
        """
        rows = [torch.as_tensor(row, dtype=torch.float) for row in inputs]
        if len({tuple(row.shape) for row in rows}) != 1 or rows[0].dim() != 2:
            shapes = sorted({tuple(row.shape) for row in rows})
            raise ValueError(
                f"give frame sequences [steps, frame_size] of one shape (this model reads every step); got {shapes}"
            )
        return FrameBatch(torch.stack(rows), torch.zeros(len(rows)))

    def input_list(self, inputs: Any) -> list[Any]:
        """One ``[T, F]`` tensor is one input; a ``[B, T, F]`` tensor or a list holds several."""
        return [inputs] if isinstance(inputs, Tensor) and inputs.dim() == 2 else list(inputs)

    def predict_batch(self, batch: FrameBatch, **options: Any) -> list[dict[str, Any]]:
        """``{"prediction": value or list}`` per sequence; ``{"label", "probabilities"}`` for classification."""
        predictions = self(batch.frames).float().cpu()
        if self.hparams.objective == "classification":
            probabilities = predictions.softmax(-1)
            return [{"label": int(row.argmax()), "probabilities": row.tolist()} for row in probabilities]
        return [{"prediction": row.item() if row.numel() == 1 else row.tolist()} for row in predictions]
