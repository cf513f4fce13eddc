"""Many-to-many, synced: one tag per input step (part of speech, named entities, per-frame labels).

The inputs are either words (a word embedding plus, optionally, features of each
word's characters from a small CNN or BiLSTM, so that unseen words still get a
representation) or continuous frames ``[B, T, F]`` (video, audio or sensor
features) through a linear projection. Any registered backbone (usually
bidirectional) reads them, a linear head scores the tags at every step, and an
optional linear-chain CRF (:class:`~rnnzoo.crf.LinearChainCRF`) scores whole tag
paths. Padding never changes a prediction: the backbone, the character encoder,
the loss, the CRF and the metrics all get the real lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from rnnzoo.batches import TaggingBatch
from rnnzoo.crf import LinearChainCRF, TagScheme
from rnnzoo.data.batching import pad_sequences
from rnnzoo.entities import EntityF1, detect_scheme
from rnnzoo.masking import lengths_to_mask
from rnnzoo.pooling import SequencePooling
from rnnzoo.tasks.base import RNNTask
from rnnzoo.tokenizers import CharTokenizer, tokenizer_from_dict

CharEncoderKind = Literal["cnn", "rnn", "none"]


class CharEncoder(nn.Module):
    """Characters of every word ``[B, T, L]`` (id 0 = padding) -> one vector per word ``[B, T, output_size]``.

    ``cnn``: a convolution over character embeddings, max-pooled over each word's
    real characters (Ma and Hovy 2016). ``rnn``: a bidirectional LSTM from the
    cell registry whose final states, read at each word's ends, are concatenated
    (Lample et al. 2016).

    Args:
        kind: ``cnn`` or ``rnn``.
        vocab_size: characters in the vocabulary (id 0 is padding).
        embedding_size: features of each character embedding.
        hidden_size: CNN filters, or LSTM features per direction.
        kernel_size: CNN width in characters.
    """

    def __init__(
        self, kind: Literal["cnn", "rnn"], vocab_size: int, embedding_size: int, hidden_size: int, kernel_size: int = 3
    ) -> None:
        super().__init__()
        if kind not in ("cnn", "rnn"):
            raise ValueError(f"char_encoder must be 'cnn', 'rnn' or 'none', got {kind!r}")
        self.kind = kind
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=0)
        if kind == "cnn":
            self.conv = nn.Conv1d(embedding_size, hidden_size, kernel_size, padding=kernel_size // 2)
            self.output_size = hidden_size
        else:
            self.rnn = RNNTask.build_backbone("lstm", embedding_size, hidden_size, bidirectional=True)
            self.pooling = SequencePooling("last", self.rnn.output_size, bidirectional=True)
            self.output_size = self.rnn.output_size

    def forward(self, chars: Tensor, word_mask: Tensor) -> Tensor:
        """``chars [B, T, L]`` and the real-word mask ``[B, T]`` -> ``[B, T, output_size]`` (0 at padded words)."""
        batch, steps, width = chars.shape
        words = chars[word_mask]  # [N, L]: the real words only
        char_lengths = (words != 0).sum(1).clamp(min=1)
        embedded = self.embedding(words)
        if self.kind == "cnn":
            features = self.conv(embedded.transpose(1, 2)).transpose(1, 2)  # [N, L, H]
            real = lengths_to_mask(char_lengths, width).unsqueeze(2)
            encoded = features.masked_fill(~real, float("-inf")).max(dim=1).values
        else:
            outputs, _ = self.rnn(embedded, char_lengths)
            encoded = self.pooling(outputs, char_lengths)
        result = encoded.new_zeros(batch, steps, self.output_size)
        result[word_mask] = encoded
        return result


class Tagger(RNNTask):
    """Inputs -> recurrent backbone -> per-step linear head -> optional CRF: one tag per step.

    Give ``vocab_size`` (word inputs; ``char_vocab_size`` too unless
    ``char_encoder="none"``) or ``frame_size`` (continuous inputs); the CLI links
    all three from :class:`~rnnzoo.data.TaggingDataModule`.

    Logs ``train_loss``, ``grad_norm``, and for validation and test ``*_loss``,
    ``*_acc`` (token accuracy over real steps) and, when the tag names form a BIO
    or BIOES set, ``*_precision``, ``*_recall`` and ``*_f1`` over entities (as
    seqeval computes them). Tag names and vocabularies come from the data module
    at ``setup()`` and are stored in checkpoints, so :meth:`tag` needs no data.

    Args:
        num_tags: number of tags; checked against the data at ``setup()``.
        vocab_size: word vocabulary size, for word inputs.
        char_vocab_size: character vocabulary size, for the character encoder.
        frame_size: features of each frame, for continuous inputs.
        cell: a registered cell name (``lstm``, ``gru``, ``reference_lstm`` ...).
        hidden_size: hidden features of each direction of the backbone.
        num_layers: stacked recurrent layers.
        bidirectional: read each sequence both ways.
        dropout: on the input features, between layers and before the head.
        embedding_size: word embedding size, or the projection size of frames.
        char_encoder: ``cnn``, ``rnn`` or ``none``.
        char_embedding_size: character embedding size.
        char_hidden_size: CNN filters, or char-LSTM features per direction.
        word_dropout: in training, the share of words replaced by ``<unk>`` (so
            that ``<unk>`` is learned).
        crf: add a linear-chain CRF over the head's scores (trained by its
            log-likelihood, decoded by Viterbi); else per-step softmax.
        tag_scheme: ``BIO`` or ``BIOES`` forbids the CRF the transitions the scheme
            rules out (checked against the tag names at ``setup()``: a tag set
            outside the scheme is an error); None leaves every transition open.
        cell_options: extra options of the cell.
        optimizer: see :class:`~rnnzoo.tasks.RNNTask`.
        scheduler: see :class:`~rnnzoo.tasks.RNNTask`.
    """

    def __init__(
        self,
        num_tags: int,
        vocab_size: int | None = None,
        char_vocab_size: int | None = None,
        frame_size: int | None = None,
        cell: str = "lstm",
        hidden_size: int = 256,
        num_layers: int = 2,
        bidirectional: bool = True,
        dropout: float = 0.33,
        embedding_size: int = 100,
        char_encoder: CharEncoderKind = "cnn",
        char_embedding_size: int = 32,
        char_hidden_size: int = 64,
        word_dropout: float = 0.0,
        crf: bool = False,
        tag_scheme: TagScheme | None = None,
        cell_options: dict[str, Any] | None = None,
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        if num_tags < 2:
            raise ValueError(f"num_tags must be at least 2, got {num_tags}")
        if (vocab_size is None) == (frame_size is None):
            raise ValueError(
                "give exactly one of vocab_size (word inputs) and frame_size (frame inputs), "
                f"got vocab_size={vocab_size} and frame_size={frame_size}"
            )
        if char_encoder not in ("cnn", "rnn", "none"):
            raise ValueError(f"char_encoder must be 'cnn', 'rnn' or 'none', got {char_encoder!r}")
        if tag_scheme is not None and tag_scheme not in ("BIO", "BIOES"):
            raise ValueError(f"tag_scheme must be 'BIO', 'BIOES' or None, got {tag_scheme!r}")
        if tag_scheme is not None and not crf:
            raise ValueError("tag_scheme constrains the CRF's transitions: set crf: true, or tag_scheme: null")
        if not 0.0 <= word_dropout < 1.0:
            raise ValueError(f"word_dropout must lie in [0, 1), got {word_dropout}")
        self.words = vocab_size is not None
        input_size = embedding_size
        self.char_encoder: CharEncoder | None = None
        if self.words:
            self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=0)
            if char_encoder != "none":
                if char_vocab_size is None:
                    raise ValueError(f"char_encoder={char_encoder!r} needs char_vocab_size (or char_encoder: none)")
                self.char_encoder = CharEncoder(char_encoder, char_vocab_size, char_embedding_size, char_hidden_size)
                input_size += self.char_encoder.output_size
        else:
            self.projection = nn.Linear(frame_size, embedding_size)
        self.backbone = self.build_backbone(
            cell,
            input_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            **(cell_options or {}),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.backbone.output_size, num_tags)
        self.crf = LinearChainCRF(num_tags) if crf else None
        self.labels: list[int | str] | None = None
        self.label_names: list[str] | None = None
        self.char_tokenizer: CharTokenizer | None = None
        self.max_word_length: int | None = None
        self.accuracy = nn.ModuleDict(
            {stage: MulticlassAccuracy(num_tags, average="micro") for stage in ("val", "test")}
        )
        self.entities = nn.ModuleDict({stage: EntityF1() for stage in ("val", "test")})
        self.losses = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})

    # The model.

    def forward(self, inputs: Tensor, lengths: Tensor | None = None, chars: Tensor | None = None) -> Tensor:
        """Per-step tag scores ``[B, T, num_tags]``.

        Args:
            inputs: word ids ``[B, T]`` or frames ``[B, T, frame_size]``.
            lengths: real lengths ``[B]``, None when nothing is padded.
            chars: character ids ``[B, T, L]`` (0 = padding) for the character encoder.

        Raises:
            ValueError: for inputs of the wrong kind or frame size, or missing characters.
        """
        batch, steps = inputs.shape[:2]
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long)
        if self.words:
            if inputs.dim() != 2 or inputs.is_floating_point():
                raise ValueError(f"this tagger reads word ids [batch, steps], got {inputs.dtype} {list(inputs.shape)}")
            if self.training and self.hparams.word_dropout > 0:
                drop = torch.rand(inputs.shape, device=inputs.device) < self.hparams.word_dropout
                inputs = inputs.masked_fill(drop & (inputs != 0), 1)  # 1 is <unk>
            features = self.embedding(inputs)
            if self.char_encoder is not None:
                if chars is None:
                    raise ValueError("this tagger reads the characters of each word too: pass chars [B, T, L]")
                mask = lengths_to_mask(lengths.to(inputs.device), steps)
                features = torch.cat([features, self.char_encoder(chars, mask).to(features.dtype)], dim=-1)
        else:
            size = self.hparams.frame_size
            if inputs.dim() != 3 or inputs.shape[-1] != size:
                raise ValueError(
                    f"frame features must be [batch, steps, {size}] (the model's frame_size), got {list(inputs.shape)}"
                )
            features = self.projection(inputs.float())
        outputs, _ = self.backbone(self.dropout(features), lengths)
        return self.head(self.dropout(outputs))

    def decode(self, scores: Tensor, lengths: Tensor) -> Tensor:
        """The predicted tag indices ``[B, T]``: Viterbi with a CRF, per-step argmax without."""
        if self.crf is not None:
            return self.crf.decode(scores, lengths)
        return scores.argmax(-1)

    def loss(self, scores: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """Mean per-token loss over the real steps: CRF negative log-likelihood, or cross-entropy."""
        if self.crf is not None:
            return self.crf(scores, tags, lengths)
        return F.cross_entropy(scores.float().flatten(0, 1), tags.flatten(), ignore_index=-100)

    # Training and evaluation.

    def _run(self, batch: TaggingBatch) -> Tensor:
        return self(batch.inputs, batch.lengths, batch.chars)

    def training_step(self, batch: TaggingBatch, batch_idx: int) -> Tensor:
        """The loss of one batch."""
        loss = self.loss(self._run(batch), batch.tags, batch.lengths)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch.lengths))
        return loss

    def _evaluate(self, batch: TaggingBatch, stage: str) -> None:
        scores, tags, lengths = self._run(batch), batch.tags, batch.lengths
        self.losses[stage].update(self.loss(scores, tags, lengths), weight=lengths.sum())
        predicted = self.decode(scores, lengths)
        mask = lengths_to_mask(lengths.to(tags.device), tags.shape[1])
        self.accuracy[stage].update(predicted[mask], tags[mask])
        if self.entity_scheme is not None:
            names = self.label_names
            spans = [int(length) for length in lengths]
            gold = [[names[i] for i in row[:n].tolist()] for row, n in zip(tags, spans, strict=True)]
            guess = [[names[i] for i in row[:n].tolist()] for row, n in zip(predicted, spans, strict=True)]
            self.entities[stage].update(guess, gold)

    @property
    def entity_scheme(self) -> str | None:
        """``BIO`` or ``BIOES`` when the tag names form such a set (entity metrics are logged), else None."""
        return None if self.label_names is None else detect_scheme(self.label_names)

    def validation_step(self, batch: TaggingBatch, batch_idx: int) -> None:
        """Accumulate loss, token accuracy and entity counts."""
        self._evaluate(batch, "val")

    def test_step(self, batch: TaggingBatch, batch_idx: int) -> None:
        """Accumulate loss, token accuracy and entity counts."""
        self._evaluate(batch, "test")

    def reset_metrics(self, stage: str) -> None:
        """Clear the metric state of ``stage``."""
        for metrics in (self.losses, self.accuracy, self.entities):
            metrics[stage].reset()

    def log_metrics(self, stage: str) -> None:
        """Log ``{stage}_loss``, ``{stage}_acc`` and, for entity tag sets, precision, recall and F1."""
        self.log(f"{stage}_loss", self.losses[stage].compute(), prog_bar=True)
        self.log(f"{stage}_acc", self.accuracy[stage].compute(), prog_bar=True)
        if self.entity_scheme is not None:
            scores = self.entities[stage].compute()
            self.log_dict({f"{stage}_{name}": value for name, value in scores.items()}, prog_bar=True)
        self.reset_metrics(stage)

    def predict_step(self, batch: TaggingBatch, batch_idx: int) -> list[list[str]]:
        """The tag names of every row of the batch."""
        predicted = self.decode(self._run(batch), batch.lengths)
        return self._name(predicted, batch.lengths)

    # Tags and vocabularies, from the data module at setup and from checkpoints after.

    def setup(self, stage: str) -> None:
        """Take the word and character vocabularies and the tags from the data module; check they fit."""
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None or not hasattr(datamodule, "labels"):
            return
        self.adopt_labels(datamodule, "num_tags", "tags")
        chars = getattr(datamodule, "char_tokenizer", None)
        if self.char_tokenizer is None:
            self.char_tokenizer = chars
            self.max_word_length = getattr(datamodule.hparams, "max_word_length", None)
        elif chars is not None and chars != self.char_tokenizer:
            raise ValueError(
                "the data module's character vocabulary differs from the model's; build both from the same split"
            )
        if self.crf is not None and self.hparams.tag_scheme is not None:
            self.crf.constrain(self.label_names, self.hparams.tag_scheme)

    def check_tokenizer(self) -> None:
        """The word vocabulary must have exactly ``vocab_size`` entries."""
        if self.tokenizer is not None and len(self.tokenizer) != self.hparams.vocab_size:
            raise ValueError(
                f"the word vocabulary has {len(self.tokenizer)} entries but the model was built for "
                f"vocab_size={self.hparams.vocab_size}; build both from the same training split"
            )

    def data_state(self) -> dict[str, Any]:
        """The word and character vocabularies, the tags and the word-length cut, saved with the model."""
        chars = None if self.char_tokenizer is None else self.char_tokenizer.to_dict()
        return {
            **super().data_state(),
            "labels": self.labels,
            "label_names": self.label_names,
            "char_tokenizer": chars,
            "max_word_length": self.max_word_length,
        }

    def load_data_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`data_state` saved."""
        super().load_data_state(state)
        self.labels, self.label_names = state.get("labels"), state.get("label_names")
        chars = state.get("char_tokenizer")
        self.char_tokenizer = None if chars is None else tokenizer_from_dict(chars)
        self.max_word_length = state.get("max_word_length")

    # Inference.

    def _name(self, predicted: Tensor, lengths: Tensor) -> list[list[str]]:
        names = self.label_names or [str(index) for index in range(self.hparams.num_tags)]
        return [[names[i] for i in row[: int(n)].tolist()] for row, n in zip(predicted.cpu(), lengths, strict=True)]

    @torch.no_grad()
    def _predict(self, inputs: Tensor, lengths: Tensor, chars: Tensor | None) -> list[list[str]]:
        was_training = self.training
        self.eval()
        try:
            chars = None if chars is None else chars.to(self.device)
            scores = self(inputs.to(self.device), lengths, chars)
            return self._name(self.decode(scores, lengths), lengths)
        finally:
            self.train(was_training)

    def tag(self, sentences: str | Sequence[str] | Sequence[Sequence[str]]) -> list[dict[str, list]]:
        """Tag sentences with the stored vocabularies.

        Args:
            sentences: one sentence as a string (split on whitespace), several
                such strings, or several already-split sentences (lists of words).

        Returns:
            One ``{"tokens": [...], "tags": [...]}`` dict per sentence, with the
            tags by name (``"NOUN"``, ``"B-person"``: the ClassLabel names or
            ``label_names`` for int tags).

        Raises:
            ValueError: for an empty sentence, or a model that reads frames.
        """
        if not self.words:
            raise ValueError("this tagger reads frame features: use tag_frames()")
        if self.tokenizer is None or (self.char_encoder is not None and self.char_tokenizer is None):
            raise RuntimeError("this model has no vocabularies: load it from a checkpoint, or fit it first")
        sentences = [sentences] if isinstance(sentences, str) else list(sentences)
        if not sentences:
            return []
        words = [sentence.split() if isinstance(sentence, str) else list(sentence) for sentence in sentences]
        empty = [position for position, row in enumerate(words) if not row]
        if empty:
            raise ValueError(f"sentence(s) {empty} hold no words: there is nothing to tag")
        inputs, lengths = pad_sequences([self.tokenizer.encode_words(row) for row in words])
        chars = None
        if self.char_encoder is not None:
            rows = [self.char_tokenizer.encode_words(row, self.max_word_length) for row in words]
            chars = torch.zeros(len(rows), inputs.shape[1], max(row.shape[1] for row in rows), dtype=torch.long)
            for index, row in enumerate(rows):
                chars[index, : row.shape[0], : row.shape[1]] = row
        tags = self._predict(inputs, lengths, chars)
        return [{"tokens": row, "tags": row_tags} for row, row_tags in zip(words, tags, strict=True)]

    def tag_frames(self, frames: Tensor | Sequence[Tensor]) -> list[list[str]]:
        """Tag sequences of frame features: one ``[T, F]`` tensor, or a list of them (lengths may differ).

        Returns:
            One list of tag names per sequence.

        Raises:
            ValueError: for a tagger of words, or frames of the wrong size.
        """
        if self.words:
            raise ValueError("this tagger reads words: use tag()")
        rows = [frames] if isinstance(frames, Tensor) and frames.dim() == 2 else list(frames)
        if not rows:
            return []
        if any(row.dim() != 2 or len(row) == 0 for row in rows):
            raise ValueError("each frame sequence must be a non-empty [steps, frame_size] tensor")
        inputs, lengths = pad_sequences([torch.as_tensor(row, dtype=torch.float) for row in rows])
        return self._predict(inputs, lengths, None)
