"""Many-to-many, synced: one tag per input step (part of speech, named entities, per-frame labels).

The inputs are either words (a word embedding plus, optionally, features of each
word's characters from a small CNN or BiLSTM, so that unseen words still get a
representation) or continuous frames ``[B, T, F]`` (video, audio or sensor
features) through a linear projection. Any registered backbone (usually
bidirectional) reads them, a linear head scores the tags at every step, and an
optional linear-chain CRF (:class:`~rnnzoo.nn.LinearChainCRF`) scores whole tag
paths. Padding never changes a prediction: the backbone, the character encoder,
the loss, the CRF and the metrics all get the real lengths.

Frames are read raw: the data module's normalisation (the training split's per-feature
mean and standard deviation) is stored with the model and applied by :meth:`Tagger.predict`,
:meth:`Tagger.tag_frames` and :meth:`Tagger.tag_stream`. Long sequences (whole videos) train
with truncated BPTT (:class:`~rnnzoo.data.tagging.ChunkedRows`, :mod:`rnnzoo.tasks.tbptt`),
and a unidirectional tagger labels a live stream frame by frame (:meth:`Tagger.tag_stream`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy

from rnnzoo.batches import TaggingBatch, pad_chars, pad_sequences
from rnnzoo.cells import State
from rnnzoo.data_state import DataState
from rnnzoo.entities import EntityF1, detect_scheme
from rnnzoo.frames import MEAN_OPTION, STD_OPTION, normalize_with
from rnnzoo.nn.char_encoder import CharEncoder
from rnnzoo.nn.crf import LinearChainCRF, TagScheme
from rnnzoo.nn.masking import lengths_to_mask
from rnnzoo.tasks.base import RNNTask
from rnnzoo.tasks.tbptt import TruncatedBPTT

log = logging.getLogger(__name__)

CharEncoderKind = Literal["cnn", "rnn", "none"]


class Tagger(TruncatedBPTT, RNNTask):
    """Inputs -> recurrent backbone -> per-step linear head -> optional CRF: one tag per step.

    Give ``vocab_size`` (word inputs; ``char_vocab_size`` too unless
    ``char_encoder="none"``) or ``frame_size`` (continuous inputs); the CLI links
    all three from :class:`~rnnzoo.data.TaggingDataModule`.

    Logs ``train_loss``, ``grad_norm``, and for validation and test ``*_loss``,
    ``*_acc`` (token accuracy over real steps) and, when the tag names form a BIO
    or BIOES set, ``*_precision``, ``*_recall`` and ``*_f1`` over entities (as
    seqeval computes them). Tag names and vocabularies come from the data module
    at ``setup()`` and are stored in checkpoints, so :meth:`tag` needs no data.

    Batches of truncated-BPTT chunks (a :class:`~rnnzoo.batches.TaggingBatch` with
    ``continues``) are read from the state the previous chunk ended with, detached, where a
    row continues, and from h_0 = 0 where a sequence starts. A bidirectional backbone cannot
    carry a state (its reverse direction starts at each chunk's end), so it reads every chunk
    on its own, from h_0 = 0.

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
        embeddings: a GloVe / word2vec / fastText text file whose vectors fill the word embedding
            at the first fit (see :meth:`~rnnzoo.tasks.RNNTask.load_pretrained_vectors`).
        freeze_embeddings: keep the pretrained word table fixed in training.
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
        self._check_options()
        self.words = vocab_size is not None
        input_size = embedding_size
        self.char_encoder: CharEncoder | None = None
        if self.words:
            self.embedding = self.build_embedding(vocab_size, embedding_size, padding_idx=0)
            input_size = self.embedding.output_size
            if char_encoder != "none":
                if char_vocab_size is None:
                    raise ValueError(f"char_encoder={char_encoder!r} needs char_vocab_size (or char_encoder: none)")
                lstm = {"cell": "lstm", "input_size": char_embedding_size, "hidden_size": char_hidden_size}
                rnn = self.build_backbone(**lstm, bidirectional=True) if char_encoder == "rnn" else None
                self.char_encoder = CharEncoder(char_vocab_size, char_embedding_size, char_hidden_size, rnn=rnn)
                input_size += self.char_encoder.output_size
        else:
            self.projection = nn.Linear(frame_size, embedding_size)
        options = {"num_layers": num_layers, "dropout": dropout, "bidirectional": bidirectional}
        self.backbone = self.build_backbone(cell, input_size, hidden_size, **options, **(cell_options or {}))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.backbone.output_size, num_tags)
        self.crf = LinearChainCRF(num_tags) if crf else None
        self.metrics = self.stage_metrics(acc=MulticlassAccuracy(num_tags, average="micro"), entities=EntityF1())

    def _check_options(self) -> None:
        """One clear error for an option that cannot work."""
        hp = self.hparams
        num_tags, vocab_size, frame_size, char_encoder = hp.num_tags, hp.vocab_size, hp.frame_size, hp.char_encoder
        tag_scheme, crf, word_dropout, embeddings = hp.tag_scheme, hp.crf, hp.word_dropout, hp.embeddings
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
        if embeddings is not None and vocab_size is None:
            raise ValueError("embeddings are word vectors: a tagger of frames has no words to give them to")

    # The model.

    def forward(self, inputs: Tensor, lengths: Tensor | None = None, chars: Tensor | None = None) -> Tensor:
        """Per-step tag scores ``[B, T, num_tags]``.

        Args:
            inputs: word ids ``[B, T]`` or frames ``[B, T, frame_size]`` (normalised as the data module does).
            lengths: real lengths ``[B]``, None when nothing is padded.
            chars: character ids ``[B, T, L]`` (0 = padding) for the character encoder.

        Raises:
            ValueError: for inputs of the wrong kind or frame size, or missing characters.
        """
        return self.scores_and_state(inputs, lengths, chars)[0]

    def scores_and_state(
        self, inputs: Tensor, lengths: Tensor | None = None, chars: Tensor | None = None, state: State | None = None
    ) -> tuple[Tensor, State]:
        """Per-step tag scores ``[B, T, num_tags]`` and the backbone's final state, read from ``state`` (None: h_0 = 0).

        See :meth:`forward` for the arguments; the final state of each row is the one at its last real step.
        """
        if lengths is None:
            lengths = torch.full((inputs.shape[0],), inputs.shape[1], dtype=torch.long)
        outputs, final = self.backbone(self.dropout(self.features(inputs, lengths, chars)), lengths, state)
        return self.head(self.dropout(outputs)), final

    def features(self, inputs: Tensor, lengths: Tensor, chars: Tensor | None = None) -> Tensor:
        """What the backbone reads ``[B, T, input_size]``: word and character features, or projected frames."""
        if not self.words:
            size = self.hparams.frame_size
            if inputs.dim() != 3 or inputs.shape[-1] != size:
                raise ValueError(
                    f"frame features must be [batch, steps, {size}] (the model's frame_size), got {list(inputs.shape)}"
                )
            return self.projection(inputs.float())
        if inputs.dim() != 2 or inputs.is_floating_point():
            raise ValueError(f"this tagger reads word ids [batch, steps], got {inputs.dtype} {list(inputs.shape)}")
        if self.training and self.hparams.word_dropout > 0:
            drop = torch.rand(inputs.shape, device=inputs.device) < self.hparams.word_dropout
            inputs = inputs.masked_fill(drop & (inputs != 0), 1)  # 1 is <unk>
        features = self.embedding(inputs)
        if self.char_encoder is not None:
            if chars is None:
                raise ValueError("this tagger reads the characters of each word too: pass chars [B, T, L]")
            mask = lengths_to_mask(lengths.to(inputs.device), inputs.shape[1])
            features = torch.cat([features, self.char_encoder(chars, mask).to(features.dtype)], dim=-1)
        return features

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

    @property
    def carries_state(self) -> bool:
        """Whether the backbone can carry its state across chunks and frames: only a unidirectional one can."""
        return not self.backbone.bidirectional

    def _scores(self, batch: TaggingBatch, stage: str) -> Tensor:
        """The scores of a batch; a truncated-BPTT chunk reads from (and carries on) ``stage``'s state."""
        if batch.continues is None or not self.carries_state:
            return self(batch.inputs, batch.lengths, batch.chars)
        state = self.carried_state(stage, len(batch.lengths), batch.continues)
        scores, final = self.scores_and_state(batch.inputs, batch.lengths, batch.chars, state)
        self.carry(stage, final)
        return scores

    def training_loss(self, batch: TaggingBatch) -> Tensor:
        """The loss of one batch."""
        return self.loss(self._scores(batch, "train"), batch.tags, batch.lengths)

    def evaluate(self, batch: TaggingBatch, stage: str) -> None:
        """Accumulate loss, token accuracy and (for BIO/BIOES tag sets) entity counts."""
        scores, tags, lengths = self._scores(batch, stage), batch.tags, batch.lengths
        metrics = self.metrics[stage]
        metrics["loss"].update(self.loss(scores, tags, lengths), weight=lengths.sum())
        predicted = self.decode(scores, lengths)
        mask = lengths_to_mask(lengths.to(tags.device), tags.shape[1])
        metrics["acc"].update(predicted[mask], tags[mask])
        if self.entity_scheme is not None:
            metrics["entities"].update(self.tag_names(predicted, lengths), self.tag_names(tags, lengths))

    @property
    def entity_scheme(self) -> str | None:
        """``BIO`` or ``BIOES`` when the tag names form such a set (entity metrics are logged), else None."""
        return None if self.label_names is None else detect_scheme(self.label_names)

    # Tags and vocabularies, from the data module at setup and from checkpoints after.

    def setup(self, stage: str) -> None:
        """Take the vocabularies and the tags from the data module, check them, constrain the CRF to the scheme."""
        super().setup(stage)
        if self.crf is not None and self.hparams.tag_scheme is not None and self.label_names is not None:
            self.crf.constrain(self.label_names, self.hparams.tag_scheme)
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        chunked = getattr(datamodule, "hparams", {}).get("tbptt_steps") is not None
        if stage == "fit" and chunked and not self.carries_state:
            log.warning(
                "a bidirectional backbone cannot carry its state between truncated-BPTT chunks: "
                "each chunk is read on its own, from h_0 = 0 (use bidirectional: false to carry it)"
            )

    def adopt_data_state(self, state: DataState) -> None:
        """As :meth:`RNNTask.adopt_data_state`; a trained frame tagger also refuses frames normalised otherwise.

        Raises:
            ValueError: when the model already holds a data state (it was trained) and the data
                module normalises frames with other statistics, or normalises them and the model
                does not (or the other way round).
        """
        if not self.words and self.data_state.labels is not None:
            mine, theirs = self.data_state.options, state.options
            if not all(_same_floats(mine.get(name), theirs.get(name)) for name in (MEAN_OPTION, STD_OPTION)):
                raise ValueError(
                    "the data module normalises frames otherwise than this model was trained with (its normalize "
                    "option or its training split differ): the model would read features it was not trained on. "
                    "Use the data module's settings of training"
                )
        super().adopt_data_state(state)

    def check_data_state(self) -> None:
        """The vocabularies must have ``vocab_size`` and ``char_vocab_size`` entries, the tags ``num_tags``."""
        state = self.data_state
        self.check_size("vocab_size", state.tokenizer, "vocabulary has {} words")
        chars = state.char_tokenizer
        self.check_size("char_vocab_size", chars, "data has {} characters")
        self.check_size("num_tags", state.labels, "data has {} tags")

    # Inference.

    def tag_names(self, predicted: Tensor, lengths: Tensor) -> list[list[str]]:
        """Tag indices ``[B, T]`` -> the names of each row's real steps."""
        names = self.label_names or [str(index) for index in range(self.hparams.num_tags)]
        return [[names[i] for i in row[: int(n)].tolist()] for row, n in zip(predicted.cpu(), lengths, strict=True)]

    def input_list(self, inputs: Any) -> list[Any]:
        """One sentence (a string) or one ``[T, F]`` frame tensor is one input; otherwise a list of them."""
        single = isinstance(inputs, str) or (isinstance(inputs, Tensor) and inputs.dim() == 2)
        return [inputs] if single else list(inputs)

    def encode_inputs(self, inputs: list[Any], **options: Any) -> TaggingBatch:
        """Sentences (strings split on whitespace, or lists of words) or raw frame sequences ``[T, F]`` -> a batch.

        Frame sequences are tensors or nested lists (JSON), normalised as in training.

        Raises:
            ValueError: for an empty sentence or sequence, or inputs of the wrong kind.
        """
        if not self.words:
            rows = [_frame_tensor(row) for row in inputs]
            size = self.hparams.frame_size
            if any(row is None or row.dim() != 2 or len(row) == 0 for row in rows):
                raise ValueError("this tagger reads frames: each input must be a non-empty [steps, frame_size] tensor")
            wrong = sorted({row.shape[-1] for row in rows} - {size})
            if wrong:
                raise ValueError(f"frames must hold {size} features (the model's frame_size), got {wrong}")
            frames, lengths = pad_sequences([normalize_with(self.data_state.options, row) for row in rows])
            return TaggingBatch(frames, lengths, torch.full(frames.shape[:2], -100))
        if any(isinstance(row, Tensor) for row in inputs):
            raise ValueError("this tagger reads words: give sentences as strings or lists of words, not tensors")
        words = [row.split() if isinstance(row, str) else list(row) for row in inputs]
        empty = [position for position, row in enumerate(words) if not row]
        if empty:
            raise ValueError(f"sentence(s) {empty} hold no words: there is nothing to tag")
        ids, lengths = pad_sequences([self.require_tokenizer().encode_words(row) for row in words])
        chars = None
        if self.char_encoder is not None:
            if self.data_state.char_tokenizer is None:
                raise RuntimeError("this model has no character vocabulary: load it from a checkpoint, or fit it")
            cut = self.data_state.options.get("max_word_length")
            chars = pad_chars([self.data_state.char_tokenizer.encode_words(row, cut) for row in words], ids.shape[1])
        return TaggingBatch(ids, lengths, torch.full(ids.shape, -100), chars, words)

    def predict_batch(self, batch: TaggingBatch, **options: Any) -> list[dict[str, Any]]:
        """One ``{"tokens", "tags"}`` dict per sentence (``{"tags"}`` for frames and unnamed words), tags by name."""
        tags = self.tag_names(self.decode(self._scores(batch, "predict"), batch.lengths), batch.lengths)
        if batch.words is None:
            return [{"tags": row} for row in tags]
        return [{"tokens": words, "tags": row} for words, row in zip(batch.words, tags, strict=True)]

    def tag(self, sentences: str | Sequence[str] | Sequence[Sequence[str]]) -> list[dict[str, list]]:
        """Tag sentences: an alias of :meth:`predict`.

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
            raise ValueError("this tagger reads frame features: use tag_frames() or predict()")
        return self.predict(sentences)

    def tag_frames(self, frames: Tensor | Sequence[Tensor]) -> list[list[str]]:
        """Tag sequences of raw frame features (one ``[T, F]`` tensor, or a list of them): the tag names of each.

        Frames are normalised as in training (the statistics are stored with the model).

        Raises:
            ValueError: for a tagger of words, or frames of the wrong size.
        """
        if self.words:
            raise ValueError("this tagger reads words: use tag() or predict()")
        rows = self.input_list(frames)
        return [output["tags"] for output in self.predict([torch.as_tensor(row) for row in rows])]

    def tag_stream(self, frame: Tensor | Sequence[float], state: State | None = None) -> tuple[str, State]:
        """Tag one frame of a live stream, reading on from the state of the frames before it.

        Feed a stream's raw frames in order, each with the state the previous call returned
        (None for the first frame): the tags equal those :meth:`tag_frames` gives the whole
        sequence. Frames are normalised as in training.

        Args:
            frame: one raw frame, ``frame_size`` features.
            state: what the previous call returned; None starts a new stream (h_0 = 0).

        Returns:
            The frame's tag name and the state to pass with the next frame.

        Raises:
            ValueError: for a tagger of words, a bidirectional backbone or a CRF (both need
                the whole sequence), or a frame of the wrong size.
        """
        self._check_streamable()
        frame = torch.as_tensor(frame)
        if frame.dim() != 1 or frame.shape[0] != self.hparams.frame_size:
            raise ValueError(f"a frame must hold {self.hparams.frame_size} features, got shape {list(frame.shape)}")
        with self.inference():
            frame = normalize_with(self.data_state.options, frame.to(self.device)).unsqueeze(0)
            output, state = self.backbone.step(self.dropout(self.projection(frame)), state)
            predicted = self.head(self.dropout(output)).argmax(-1, keepdim=True)
        return self.tag_names(predicted, torch.ones(1, dtype=torch.long))[0][0], state

    def _check_streamable(self) -> None:
        if self.words:
            raise ValueError("tag_stream reads frames, and this tagger reads words: use tag()")
        if not self.carries_state:
            raise ValueError(
                "tag_stream needs a unidirectional backbone: a bidirectional one reads each sequence backwards "
                "from its end. Tag the whole sequence with tag_frames(), or train with bidirectional: false"
            )
        if self.crf is not None:
            raise ValueError(
                "tag_stream cannot decode a CRF frame by frame (Viterbi needs the whole sequence): use tag_frames()"
            )


def _frame_tensor(row: Any) -> Tensor | None:
    """A frame sequence as a tensor (a tensor, or nested lists of numbers), or None when it is not one."""
    if isinstance(row, Tensor):
        return row
    if isinstance(row, str):
        return None
    try:
        return torch.as_tensor(row, dtype=torch.float)
    except (TypeError, ValueError, RuntimeError):
        return None


def _same_floats(mine: Sequence[float] | None, theirs: Sequence[float] | None) -> bool:
    """Whether two optional lists of statistics agree (both None, or equal up to float rounding)."""
    if mine is None or theirs is None:
        return mine is None and theirs is None
    return len(mine) == len(theirs) and all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(mine, theirs, strict=True))
