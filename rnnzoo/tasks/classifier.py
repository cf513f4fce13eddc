"""Many-to-one: read a whole sequence, decide at the end (sentiment, topic, intent).

Tokens are embedded, read by any registered backbone (usually bidirectional),
pooled over their real steps only (:class:`~rnnzoo.nn.SequencePooling`),
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
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from rnnzoo.batches import ClassificationBatch, pad_sequences
from rnnzoo.nn.pooling import PoolingMode, SequencePooling
from rnnzoo.tasks.base import RNNTask


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
        embeddings: a GloVe / word2vec / fastText text file whose vectors fill the embedding
            at the first fit (word-level tokenizers only; see :meth:`~rnnzoo.tasks.RNNTask.load_pretrained_vectors`).
        freeze_embeddings: keep the pretrained table fixed in training.
        vectors_size: the vectors' width when it differs from ``embedding_size``: a trainable
            projection maps them to ``embedding_size``.
        trained_embedding_size: with ``embeddings``, also a trained embedding of this width
            (zeros at first) concatenated to the vectors, as Kim 2014's static and trained
            channels: the backbone reads ``embedding_size + trained_embedding_size`` features.
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
        embeddings: str | None = None,
        freeze_embeddings: bool = False,
        vectors_size: int | None = None,
        trained_embedding_size: int = 0,
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
        self.embedding = self.build_embedding(vocab_size, embedding_size)
        self.backbone = self.build_backbone(
            cell,
            self.embedding.output_size,
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
        self.metrics = self.stage_metrics(
            acc=MulticlassAccuracy(num_classes, average="micro"), f1=MulticlassF1Score(num_classes, average="macro")
        )

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

    def training_loss(self, batch: ClassificationBatch) -> Tensor:
        """Cross-entropy of one batch; also logs how much of it is padding."""
        tokens, lengths, labels = batch
        self.log("train_padding_efficiency", lengths.sum() / tokens.numel(), on_step=False, on_epoch=True)
        return self.loss(self(tokens, lengths), labels)

    def evaluate(self, batch: ClassificationBatch, stage: str) -> None:
        """Accumulate loss, accuracy and macro-F1."""
        tokens, lengths, labels = batch
        logits = self(tokens, lengths)
        metrics = self.metrics[stage]
        metrics["loss"].update(self.loss(logits, labels), weight=labels.numel())
        metrics["acc"].update(logits, labels)
        metrics["f1"].update(logits, labels)

    # Labels and tokenizer, from the data module at setup and from checkpoints after.

    def setup(self, stage: str) -> None:
        """Take the tokenizer and labels from the data module; with balanced class weights, count the classes."""
        super().setup(stage)
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if self.hparams.class_weights == "balanced" and stage == "fit" and hasattr(datamodule, "class_counts"):
            counts = torch.tensor(datamodule.class_counts, dtype=torch.float).clamp(min=1)
            self.class_weight.copy_(counts.sum() / (len(counts) * counts))

    def check_data_state(self) -> None:
        """The tokenizer must have ``vocab_size`` entries, the labels ``num_classes``."""
        self.check_size("vocab_size", self.tokenizer, "tokenizer has {} tokens")
        self.check_size("num_classes", self.labels, "data has {} classes")

    # Inference.

    def encode_inputs(self, inputs: list[str], *, max_length: int | None = None, **options: Any) -> ClassificationBatch:
        """Texts -> a :class:`~rnnzoo.batches.ClassificationBatch`, cut to ``max_length`` tokens.

        ``max_length`` defaults to the data's (as in training).

        Raises:
            ValueError: for a text that is empty after tokenization.
        """
        max_length = max_length or self.data_state.options.get("max_length")
        ids = self.require_tokenizer().encode_batch(list(inputs), max_length)
        empty = [position for position, row in enumerate(ids) if not row]
        if empty:
            raise ValueError(f"text(s) {empty} are empty after tokenization: there is nothing to classify")
        tokens, lengths = pad_sequences([torch.tensor(row, dtype=torch.long) for row in ids])
        return ClassificationBatch(tokens, lengths, torch.full((len(ids),), -1))

    def predict_batch(self, batch: ClassificationBatch, **options: Any) -> list[dict[str, Any]]:
        """One ``{"label", "probabilities"}`` dict per text: the label value, and label name -> probability."""
        tokens, lengths, _ = batch
        probabilities = self(tokens, lengths).float().softmax(-1).cpu()
        names = self.label_names or [str(index) for index in range(self.hparams.num_classes)]
        labels = self.labels or list(range(self.hparams.num_classes))
        return [
            {"label": labels[int(row.argmax())], "probabilities": dict(zip(names, row.tolist(), strict=True))}
            for row in probabilities
        ]

    def classify(self, texts: str | Sequence[str], max_length: int | None = None) -> list[dict[str, Any]]:
        """Classify raw texts: an alias of :meth:`predict`.

        Args:
            texts: one text or several.
            max_length: cut each text to this many tokens (default: as in training).

        Returns:
            One dict per text: ``label`` (the label value, e.g. ``"positive"`` or ``1``)
            and ``probabilities`` (label name -> probability).

        Raises:
            ValueError: for an empty text, which holds nothing to classify.
        """
        return self.predict(texts, max_length=max_length)
