"""Many-to-one: read a whole sequence, decide at the end (sentiment, topic, intent).

Tokens are embedded, read by any registered backbone (usually bidirectional),
pooled over their real steps only (:class:`~rnnzoo.pooling.SequencePooling`),
and a linear head scores the classes. Padding never changes a prediction: the
backbone gets each sequence's length and the pooling masks what is beyond it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from rnnzoo.data.batching import pad_sequences
from rnnzoo.pooling import PoolingMode, SequencePooling
from rnnzoo.tasks.base import RNNTask

Batch = tuple[Tensor, Tensor, Tensor]
"""``(tokens [B, T], lengths [B], labels [B])``."""


class Classifier(RNNTask):
    """Embedding -> recurrent backbone -> pooling over real steps -> linear head.

    Logs ``train_loss``, ``train_padding_efficiency`` (real / padded tokens),
    ``grad_norm``, and for validation and test ``*_loss``, ``*_acc`` and ``*_f1``
    (macro-F1). The class labels come from the data module at ``setup()`` and
    are stored in checkpoints, so :meth:`classify` names them.

    Args:
        vocab_size: number of tokens (linked from the data module by the CLI).
        num_classes: number of classes; checked against the data at ``setup()``.
        cell: a registered cell name (``lstm``, ``gru``, ``reference_lstm`` ...).
        hidden_size: hidden features of each direction of the backbone.
        num_layers: stacked recurrent layers.
        bidirectional: read each text both ways.
        dropout: on the embeddings, between layers and before the head.
        embedding_size: defaults to ``hidden_size``.
        pooling: ``last``, ``mean``, ``max`` or ``attention`` (over real steps).
        class_weights: per-class loss weights, ``balanced`` (inverse training
            frequency, computed at fit time), or None.
        cell_options: extra options of the cell.
        optimizer: see :class:`~rnnzoo.tasks.RNNTask`.
        scheduler: see :class:`~rnnzoo.tasks.RNNTask`.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        cell: str = "lstm",
        hidden_size: int = 256,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.3,
        embedding_size: int | None = None,
        pooling: PoolingMode = "max",
        class_weights: list[float] | Literal["balanced"] | None = None,
        cell_options: dict[str, Any] | None = None,
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        if vocab_size <= 0:
            raise ValueError(f"vocab_size must be a positive integer, got {vocab_size}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if isinstance(class_weights, list) and len(class_weights) != num_classes:
            raise ValueError(f"class_weights has {len(class_weights)} entries for {num_classes} classes")
        if class_weights is not None and not isinstance(class_weights, list) and class_weights != "balanced":
            raise ValueError(f"class_weights must be a list of floats, 'balanced' or None, got {class_weights!r}")
        embedding_size = embedding_size or hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.backbone = self.build_backbone(
            cell,
            embedding_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            **(cell_options or {}),
        )
        self.pooling = SequencePooling(pooling, self.backbone.output_size, bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.backbone.output_size, num_classes)
        weights = torch.tensor(class_weights, dtype=torch.float) if isinstance(class_weights, list) else None
        self.register_buffer("class_weight", weights if weights is not None else torch.ones(num_classes))
        self.labels: list[int | str] | None = None
        self.label_names: list[str] | None = None
        self.metrics = nn.ModuleDict(
            {
                stage: MetricCollection(
                    {
                        "acc": MulticlassAccuracy(num_classes, average="micro"),
                        "f1": MulticlassF1Score(num_classes, average="macro"),
                    },
                    prefix=f"{stage}_",
                )
                for stage in ("val", "test")
            }
        )
        self.losses = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``tokens [B, T]`` with real ``lengths [B]`` (None: no padding) -> logits ``[B, num_classes]``."""
        if lengths is None:
            lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long)
        outputs, _ = self.backbone(self.dropout(self.embedding(tokens)), lengths)
        return self.head(self.dropout(self.pooling(outputs, lengths)))

    # Training and evaluation.

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Cross-entropy, weighted per class."""
        return F.cross_entropy(logits.float(), labels, weight=self.class_weight)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """Cross-entropy of one batch; also logs how much of it is padding."""
        tokens, lengths, labels = batch
        loss = self.loss(self(tokens, lengths), labels)
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_padding_efficiency", lengths.sum() / tokens.numel(), on_step=False, on_epoch=True)
        return loss

    def _evaluate(self, batch: Batch, stage: str) -> None:
        tokens, lengths, labels = batch
        logits = self(tokens, lengths)
        self.losses[stage].update(self.loss(logits, labels), weight=labels.numel())
        self.metrics[stage].update(logits, labels)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Accumulate loss, accuracy and macro-F1."""
        self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        """Accumulate loss, accuracy and macro-F1."""
        self._evaluate(batch, "test")

    def reset_metrics(self, stage: str) -> None:
        """Clear the metric state of ``stage``."""
        self.losses[stage].reset()
        self.metrics[stage].reset()

    def log_metrics(self, stage: str) -> None:
        """Log ``{stage}_loss``, ``{stage}_acc`` and ``{stage}_f1``, then clear them."""
        self.log(f"{stage}_loss", self.losses[stage].compute(), prog_bar=True)
        self.log_dict(self.metrics[stage].compute(), prog_bar=True)
        self.reset_metrics(stage)

    def predict_step(self, batch: Batch, batch_idx: int) -> list[dict[str, Any]]:
        """One ``{"label", "probabilities"}`` dict per text (see :meth:`classify`)."""
        tokens, lengths, _ = batch
        return self._describe(self(tokens, lengths).float().softmax(-1))

    # Labels and tokenizer, from the data module at setup and from checkpoints after.

    def setup(self, stage: str) -> None:
        """Take the tokenizer and labels from the data module; check they fit the model."""
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None or not hasattr(datamodule, "labels"):
            return
        self.adopt_labels(datamodule, "num_classes", "classes")
        if self.hparams.class_weights == "balanced" and stage == "fit":
            counts = torch.tensor(datamodule.class_counts, dtype=torch.float).clamp(min=1)
            self.class_weight.copy_(counts.sum() / (len(counts) * counts))

    def check_tokenizer(self) -> None:
        """The tokenizer must have exactly ``vocab_size`` entries."""
        if self.tokenizer is not None and len(self.tokenizer) != self.hparams.vocab_size:
            raise ValueError(
                f"the tokenizer has {len(self.tokenizer)} tokens but the model was built for "
                f"vocab_size={self.hparams.vocab_size}; build both from the same training split"
            )

    def data_state(self) -> dict[str, Any]:
        """The tokenizer and the labels, saved with the model."""
        return {**super().data_state(), "labels": self.labels, "label_names": self.label_names}

    def load_data_state(self, state: dict[str, Any]) -> None:
        """Restore the tokenizer and the labels."""
        super().load_data_state(state)
        self.labels, self.label_names = state.get("labels"), state.get("label_names")

    # Inference.

    def _describe(self, probabilities: Tensor) -> list[dict[str, Any]]:
        names = self.label_names or [str(index) for index in range(self.hparams.num_classes)]
        labels = self.labels or list(range(self.hparams.num_classes))
        return [
            {"label": labels[int(row.argmax())], "probabilities": dict(zip(names, row.tolist(), strict=True))}
            for row in probabilities.cpu()
        ]

    @torch.no_grad()
    def classify(self, texts: str | Sequence[str], max_length: int | None = None) -> list[dict[str, Any]]:
        """Classify raw texts with the stored tokenizer.

        Args:
            texts: one text or several.
            max_length: cut each text to this many tokens (as in training), or None.

        Returns:
            One dict per text: ``label`` (the label value, e.g. ``"positive"`` or ``1``)
            and ``probabilities`` (label name -> probability).

        Raises:
            ValueError: for an empty text, which holds nothing to classify.
        """
        if self.tokenizer is None:
            raise RuntimeError("this model has no tokenizer: load it from a checkpoint, or fit it first")
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            return []
        ids = self.tokenizer.encode_batch(texts, max_length)
        empty = [position for position, row in enumerate(ids) if not row]
        if empty:
            raise ValueError(f"text(s) {empty} are empty after tokenization: there is nothing to classify")
        tokens, lengths = pad_sequences([torch.tensor(row, dtype=torch.long) for row in ids])
        was_training = self.training
        self.eval()
        try:
            probabilities = self(tokens.to(self.device), lengths).float().softmax(-1)
        finally:
            self.train(was_training)
        return self._describe(probabilities)
