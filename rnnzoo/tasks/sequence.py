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
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

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
        self.losses = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})
        if objective == "classification":
            self.accuracy = nn.ModuleDict({stage: MulticlassAccuracy(num_outputs) for stage in ("val", "test")})

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

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Loss of one batch."""
        loss = self.loss(self(batch[0]), batch[1])
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        frames, targets = batch
        predictions = self(frames)
        self.losses[stage].update(self.loss(predictions, targets), weight=targets.shape[0])
        if self.hparams.objective == "classification":
            self.accuracy[stage].update(predictions, targets)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Accumulate the loss (and accuracy)."""
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Accumulate the loss (and accuracy)."""
        self._evaluate(batch, "test")

    def reset_metrics(self, stage: str) -> None:
        """Clear the metric state of ``stage``."""
        self.losses[stage].reset()
        if self.hparams.objective == "classification":
            self.accuracy[stage].reset()

    def log_metrics(self, stage: str) -> None:
        """Log ``{stage}_loss`` and, for classification, ``{stage}_acc``."""
        self.log(f"{stage}_loss", self.losses[stage].compute(), prog_bar=True)
        if self.hparams.objective == "classification":
            self.log(f"{stage}_acc", self.accuracy[stage].compute(), prog_bar=True)
        self.reset_metrics(stage)

    @torch.no_grad()
    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Predictions ``[B, num_outputs]`` (class probabilities for classification)."""
        predictions = self(batch[0])
        return predictions.softmax(-1) if self.hparams.objective == "classification" else predictions
