"""Tagging data (one label per step): tokenized sentences or frame features, with a tag sequence per row."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Literal

import torch
from datasets import Dataset
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from rnnzoo.batches import TaggingBatch, collate_tagging
from rnnzoo.data.base import (
    EncodedRows,
    Encoder,
    LabelledDataModule,
    check_finite,
    check_vocabulary_extension,
)
from rnnzoo.data.hf import DataFiles, column_values
from rnnzoo.data.token_cache import tokenizer_digest
from rnnzoo.data_state import DataState
from rnnzoo.frames import MEAN_OPTION, STD_OPTION, frame_statistics, normalize_frames
from rnnzoo.tokenizers import CharTokenizer, WordVocabulary

log = logging.getLogger(__name__)

CHAR_PAD = "\x00"
"""Character id 0 of a tagging char vocabulary: the padding of short words (never read by the char encoders)."""
CHAR_UNK = "\ufffd"
"""The character that stands for any character never seen in training."""


def build_char_tokenizer(sentences: Sequence[Sequence[str]]) -> CharTokenizer:
    """The characters of the training words (case kept), with :data:`CHAR_PAD` at id 0 and :data:`CHAR_UNK`."""
    chars = {char for sentence in sentences for word in sentence for char in word} - {CHAR_PAD, CHAR_UNK}
    return CharTokenizer([CHAR_PAD, *sorted(chars)], unk_token=CHAR_UNK)


class ChunkedRows(IterableDataset):
    """Rows cut into consecutive chunks of ``steps``, read as ``batch_size`` parallel lanes (truncated BPTT).

    Every row is dealt to one lane, and each lane reads its rows one after another, chunk by
    chunk: batch ``k`` holds the ``k``-th chunk of every lane that still has one, so row ``b`` of
    batch ``k + 1`` continues row ``b`` of batch ``k`` (``continues[b]`` is True) unless a new
    row starts there (False: the model reads it from h_0 = 0). Lanes are ordered by their number
    of chunks, most first, so the lanes still going are always the first rows of a batch and a
    carried state is cut to them. Each item is a whole :class:`~rnnzoo.batches.TaggingBatch`.

    Rows are dealt longest first, each to the lane with the fewest chunks so far, which fixes
    the number of batches; with ``shuffle``, rows of equal chunk counts are dealt in a new
    random order every epoch.

    Args:
        rows: the encoded rows (``inputs``, ``chars``, ``tags`` fields, and ``lengths``).
        batch_size: parallel lanes ``B`` (fewer when there are fewer rows).
        steps: chunk length, the truncated-BPTT length.
        shuffle: deal the rows in a random order every epoch (training).
    """

    def __init__(self, rows: EncodedRows, batch_size: int, steps: int, shuffle: bool = True) -> None:
        super().__init__()
        if batch_size <= 0 or steps <= 0:
            raise ValueError(f"batch_size and steps must be positive integers, got {batch_size} and {steps}")
        self.rows, self.batch_size, self.steps, self.shuffle = rows, batch_size, steps, shuffle
        self.chunks = [-(-length // steps) for length in rows.lengths]

    def lanes(self, shuffle: bool | None = None) -> list[list[int]]:
        """The row indices of every lane, in reading order; lanes with the most chunks first.

        Args:
            shuffle: deal rows of equal chunk counts in a random order (None: the dataset's ``shuffle``).
        """
        shuffle = self.shuffle if shuffle is None else shuffle
        order = torch.randperm(len(self.chunks)).tolist() if shuffle else list(range(len(self.chunks)))
        order.sort(key=lambda row: -self.chunks[row])  # stable: equal counts keep the random order
        lanes: list[list[int]] = [[] for _ in range(min(self.batch_size, len(order)))]
        loads = [0] * len(lanes)
        for row in order:
            lane = loads.index(min(loads))
            lanes[lane].append(row)
            loads[lane] += self.chunks[row]
        ranked = sorted(range(len(lanes)), key=lambda lane: -loads[lane])
        return [lanes[lane] for lane in ranked]

    def __len__(self) -> int:
        """Number of batches: the chunks of the longest lane (the same every epoch)."""
        return max(sum(self.chunks[row] for row in lane) for lane in self.lanes(shuffle=False))

    def __iter__(self) -> Iterator[TaggingBatch]:
        """Yield the batches in reading order."""
        plans = [
            [(row, start) for row in lane for start in range(0, self.rows.lengths[row], self.steps)]
            for lane in self.lanes()
        ]
        for index in range(max(len(plan) for plan in plans)):
            pieces = [plan[index] for plan in plans if index < len(plan)]
            items = [self._item(row, start) for row, start in pieces]
            continues = torch.tensor([start > 0 for _, start in pieces])
            yield collate_tagging(items)._replace(continues=continues)

    def _item(self, row: int, start: int) -> tuple[Tensor, Tensor | None, Tensor]:
        cut = slice(start, start + self.steps)
        chars = self.rows.chars[row]
        return self.rows.inputs[row][cut], None if chars is None else chars[cut], self.rows.tags[row][cut]


class WordsEncoder(Encoder):
    """The word ids and the character ids of each word of a column of tokenized rows.

    ``{"ids": [ids of the row's words], "chars": [[ids of a word's characters] per word]}``, the
    characters cut to ``max_word_length`` (an empty word reads as one unknown character).

    Args:
        words: the word vocabulary.
        chars: the character vocabulary.
        column: the column of word lists.
        max_word_length: characters kept per word (None: all).
    """

    def __init__(self, words: WordVocabulary, chars: CharTokenizer, column: str, max_word_length: int | None) -> None:
        self.words, self.chars, self.column, self.max_word_length = words, chars, column, max_word_length
        self.columns = (column,)

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """``{"ids": ..., "chars": ...}`` of every row, each row's characters padded with 0 to its longest word."""
        rows = batch[self.column]
        chars = [padded(self.chars.word_ids(row, self.max_word_length)) for row in rows]
        return {"ids": [self.words.word_ids(row) for row in rows], "chars": chars}

    def key(self) -> dict[str, Any]:
        """Both vocabularies' digests, the column and ``max_word_length``."""
        words, chars = tokenizer_digest(self.words), tokenizer_digest(self.chars)
        return {"words": words, "chars": chars, "column": self.column, "max_word_length": self.max_word_length}


def padded(words: list[list[int]]) -> list[list[int]]:
    """The character ids of a row's words, padded with id 0 to its longest word."""
    width = max((len(word) for word in words), default=0)
    return [word + [0] * (width - len(word)) for word in words]


class TaggingDataModule(LabelledDataModule):
    """Rows of tokens (or frames) with one tag per step, from a hub id or a local folder, bucketed by length.

    * **Inputs**: a ``tokens_column`` of words (lists of strings), read through a
      word vocabulary and a character vocabulary, both built from the training
      split and saved with the model; or, with ``frames_column`` set, a column of
      continuous frame features (one list of ``F`` floats per step), z-normalised per feature
      with the training split's mean and standard deviation (``normalize``), which go into the
      model's data state so that it reads raw frames the same way at inference.
    * **Tags**: a ``tags_column`` of ``ClassLabel`` ints (names read from the
      dataset's features), of plain ints named by ``label_names`` (tag ``i`` is
      ``label_names[i]``), or of strings (mapped by name: the ``label_names``
      order when given, else the training split's tags sorted). Every row must
      have one tag per step.
    * **Validation** is carved from the training split (``val_fraction``, ``seed``)
      when the dataset has no ``val_split``.
    * **Length bucketing** as in classification
      (:class:`~rnnzoo.data.batching.BucketBatchSampler`).
    * **Truncated BPTT** for long rows (whole videos): with ``tbptt_steps``, training reads each
      row as consecutive chunks of that many steps in ``batch_size`` parallel lanes
      (:class:`ChunkedRows`); the batches say which rows continue the previous chunk, and a
      unidirectional tagger carries its state there, detached. Validation and test read whole
      rows, as inference does.

    Args:
        dataset: hub id (``universal-dependencies/universal_dependencies``) or local folder.
        name: the dataset's configuration name (``en_ewt``); leave None for a local folder.
        revision: a hub revision (``refs/convert/parquet``); leave None for a local folder.
        data_files: local files instead of (or inside) ``dataset``: a path, a glob, a list of them
            (the ``train`` split) or a dict of split -> path(s).
        builder: how to read ``data_files`` (``csv``, ``json``, ``parquet``, ``text``); None infers it
            from the extension.
        tokens_column: the column of words.
        tags_column: the column of tags.
        frames_column: the column of frame features; set it for continuous inputs.
        label_names: the tag names by index for int tags, or the tag set (in index order) for string tags.
        train_split: split the vocabularies and model are trained on.
        val_split: split for validation (carved from train when the dataset lacks it).
        test_split: split for testing.
        val_fraction: share of the training split carved off for validation when the dataset lacks
            ``val_split``; None carves 10 % only for the default ``validation`` (a named split that
            is absent is then an error: a misspelling never takes a part of train).
        seed: seed of that carving.
        lowercase: fold case for the word vocabulary (the characters keep it).
        min_freq: words seen fewer times in training become ``<unk>``.
        max_vocab_size: most frequent words kept, None for all.
        max_word_length: characters read per word (the rest is cut), None for all.
        extend_vocabulary: a GloVe / word2vec / fastText text file whose words are added to the word
            vocabulary, so that words unseen in training keep their pretrained vector (give the tagger the
            same file as ``embeddings``).
        max_new_words: add at most this many of the file's words (its first, the frequent ones), None for all.
        batch_size: rows per training batch (parallel lanes with ``tbptt_steps``).
        eval_batch_size: rows per validation/test batch.
        bucketing: group rows of similar length into batches.
        pool_batches: batches per sorted pool when bucketing.
        num_workers: DataLoader worker processes.
        cache: keep the trained vocabularies and the encoded splits beside the dataset's own ``datasets``
            cache files (``Dataset.map``), so that a later run with the same data and options reads them
            instead of building and encoding again; False computes them every run.
        num_proc: processes that encode a split (``Dataset.map``'s ``num_proc``); None: one.
        normalize: z-normalise frame features with the training split's per-feature mean and
            standard deviation (frames only).
        tbptt_steps: cut training rows into chunks of this many steps, read in order with the
            state carried between them (see above); None trains on whole rows.
        streaming: read every split as a stream (see :class:`~rnnzoo.data.base.HFDataModule`): rows are
            encoded a pool at a time as training reads them; the vocabularies, tags and frame statistics still
            come from the training split, read from the stream. Needs a validation split of its own.
        shuffle_buffer: with ``streaming``, the rows of the training shuffle buffer.
    """

    collate_fn = staticmethod(collate_tagging)
    label_option = "tags_column"
    per_step_labels = True
    whole_split_options: ClassVar[dict[str, str]] = {
        **LabelledDataModule.whole_split_options,
        "tbptt_steps": "lays whole training rows out in parallel lanes: drop it (train on whole rows)",
    }

    def __init__(
        self,
        dataset: str | None = None,
        name: str | None = None,
        revision: str | None = None,
        data_files: DataFiles | None = None,
        builder: Literal["csv", "json", "parquet", "text"] | None = None,
        tokens_column: str = "tokens",
        tags_column: str = "tags",
        frames_column: str | None = None,
        label_names: list[str] | None = None,
        train_split: str = "train",
        val_split: str = "validation",
        test_split: str = "test",
        val_fraction: float | None = None,
        seed: int = 0,
        lowercase: bool = True,
        min_freq: int = 1,
        max_vocab_size: int | None = None,
        max_word_length: int | None = 20,
        extend_vocabulary: str | None = None,
        max_new_words: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 128,
        bucketing: bool = True,
        pool_batches: int = 100,
        num_workers: int = 0,
        cache: bool = True,
        num_proc: int | None = None,
        normalize: bool = True,
        tbptt_steps: int | None = None,
        streaming: bool = False,
        shuffle_buffer: int = 10_000,
    ) -> None:
        super().__init__()
        for option, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value <= 0:
                raise ValueError(f"{option} must be a positive integer, got {value}")
        if val_fraction is not None and not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        if tbptt_steps is not None and tbptt_steps <= 0:
            raise ValueError(f"tbptt_steps must be a positive number of steps per chunk (or None), got {tbptt_steps}")
        if label_names is not None and len(set(label_names)) != len(label_names):
            raise ValueError(f"label_names holds a name twice: {label_names}")
        check_vocabulary_extension(extend_vocabulary, max_new_words, "word" if frames_column is None else "frames")
        self.save_hyperparameters()
        self.check_streaming()
        self._tokenizer: WordVocabulary | None = None
        self._char_tokenizer: CharTokenizer | None = None
        self._frame_statistics: tuple[list[float], list[float]] | None = None

    @property
    def input_option(self) -> str:
        """The option naming the column the model reads: ``frames_column`` when set, else ``tokens_column``."""
        return "tokens_column" if self.hparams.frames_column is None else "frames_column"

    @property
    def input_column(self) -> str:
        """The column the model reads: ``frames_column`` when set, else ``tokens_column``."""
        return self.hparams[self.input_option]

    def columns(self) -> tuple[str, ...]:
        """Every split holds the input and the tags column."""
        return (self.input_option, "tags_column")

    # Tags (see LabelledDataModule), word and character vocabularies: all from the training split.

    @property
    def num_tags(self) -> int:
        """Number of tags."""
        return len(self.labels)

    def _train_sentences(self) -> list[list[str]]:
        return self.values(self.hparams.train_split, "tokens_column")

    @property
    def tokenizer(self) -> WordVocabulary | None:
        """The word vocabulary (None for frame inputs), built from the training split on first use."""
        hp = self.hparams
        if hp.frames_column is None and self._tokenizer is None:
            options = {name: hp[name] for name in ("tokens_column", "lowercase", "min_freq", "max_vocab_size")}
            trained = self.cached_tokenizer("word-vocabulary", self._train_vocabulary, **options)
            self._tokenizer = self.extended_vocabulary(trained)
            log.info("word vocabulary of %d entries from %r", len(self._tokenizer), hp.train_split)
        return self._tokenizer

    @property
    def char_tokenizer(self) -> CharTokenizer | None:
        """The character vocabulary (None for frame inputs), built from the training split on first use."""
        if self.hparams.frames_column is None and self._char_tokenizer is None:
            column = self.hparams.tokens_column
            train = self._train_char_vocabulary
            self._char_tokenizer = self.cached_tokenizer("char-vocabulary", train, tokens_column=column)
        return self._char_tokenizer

    def _train_char_vocabulary(self) -> CharTokenizer:
        return build_char_tokenizer(self._train_sentences())

    def _train_vocabulary(self) -> WordVocabulary:
        hp = self.hparams
        return WordVocabulary.from_sentences(self._train_sentences(), hp.lowercase, hp.min_freq, hp.max_vocab_size)

    @property
    def char_vocab_size(self) -> int | None:
        """Character vocabulary size (linked into the model by the CLI); None for frame inputs."""
        return None if self.char_tokenizer is None else len(self.char_tokenizer)

    @property
    def frame_size(self) -> int | None:
        """Features per frame, read from the first training row (linked into the model); None for tokens."""
        if self.hparams.frames_column is None:
            return None
        first = next(iter(self.rows(self.hparams.train_split, "frames_column")))[self.hparams.frames_column]
        if not first or not isinstance(first[0], list | tuple):
            raise ValueError(f"frames column {self.hparams.frames_column!r} must hold lists of float vectors")
        return len(first[0])

    @property
    def frame_statistics(self) -> tuple[list[float], list[float]] | None:
        """Per-feature mean and standard deviation of the training frames (computed once); None when not normalising."""
        hp = self.hparams
        if hp.frames_column is None or not hp.normalize:
            return None
        if self._frame_statistics is None:
            values = self.values(hp.train_split, "frames_column")
            positions = [position for position, row in enumerate(values) if row]
            rows = self._frames(hp.train_split, [values[i] for i in positions], positions)
            self._frame_statistics = frame_statistics(rows)
        return self._frame_statistics

    def data_state(self) -> DataState:
        """Vocabularies (None for frames), tags, ``max_word_length``, vocabulary extension, frame statistics."""
        options: dict[str, Any] = {"max_word_length": self.hparams.max_word_length, **self.vocabulary_extension()}
        if self.frame_statistics is not None:
            options[MEAN_OPTION], options[STD_OPTION] = self.frame_statistics
        return DataState(self.tokenizer, self.char_tokenizer, self.labels, self.label_names, options)

    # Encoding.

    def tag_index(self, split: str, rows: Sequence[Sequence[Any]]) -> list[Tensor]:
        """Tag indices of every row, with one clear error for an unknown tag."""
        flat = torch.tensor(self.label_indices(split, [tag for row in rows for tag in row], "tag"), dtype=torch.long)
        return list(flat.split([len(row) for row in rows]))

    def _steps(self, split: str, inputs: list[Any], tag_rows: list[Any], whole: bool = True) -> list[int]:
        """The positions of the non-empty rows, each checked to have one tag per step."""
        kind = "frames" if self.hparams.frames_column else "tokens"
        for position, (row, tags) in enumerate(zip(inputs, tag_rows, strict=True)):
            if len(row) != len(tags):
                raise ValueError(
                    f"row {position} of split {split!r} has {len(row)} {kind} but {len(tags)} tags: "
                    "every step needs exactly one tag"
                )
        keep = [position for position, row in enumerate(inputs) if len(row) > 0]
        if len(keep) < len(inputs):
            log.warning("split %r: dropped %d empty row(s)", split, len(inputs) - len(keep))
        if not keep and whole:
            raise ValueError(f"every row of split {split!r} is empty (column {self.input_column!r})")
        return keep

    def _frames(self, split: str, rows: list[Any], positions: list[int]) -> list[Tensor]:
        """Frame rows as raw ``[T, F]`` tensors, each frame checked to hold ``frame_size`` features."""
        size = self.frame_size
        for position, row in zip(positions, rows, strict=True):
            sizes = {len(frame) if isinstance(frame, list | tuple) else None for frame in row}
            if sizes != {size}:
                raise ValueError(
                    f"row {position} of split {split!r} has frames of {sorted(sizes, key=str)} features; "
                    f"every frame must hold {size} features, as in the training split"
                )
        frames = [torch.tensor(row, dtype=torch.float) for row in rows]
        check_finite(frames, split, positions)
        return frames

    def encode(self, split: str, rows: Dataset | None = None) -> EncodedRows:
        """Inputs, character ids (None for frames) and tag indices of ``split`` (or of ``rows``, a part of it).

        Empty rows are dropped.
        """
        hp = self.hparams
        whole = rows is None
        rows = self.rows(split) if rows is None else rows
        inputs, tag_rows = column_values(rows, self.input_column), column_values(rows, hp.tags_column)
        keep = self._steps(split, inputs, tag_rows, whole)
        if not keep:  # a pool of a stream whose rows are all empty
            return EncodedRows({"inputs": [], "chars": [], "tags": []}, [])
        inputs, tags = [inputs[i] for i in keep], self.tag_index(split, [tag_rows[i] for i in keep])
        if hp.frames_column is not None:
            encoded, chars = self._normalized(self._frames(split, inputs, keep)), [None] * len(inputs)
        else:
            encoder = WordsEncoder(self.tokenizer, self.char_tokenizer, hp.tokens_column, hp.max_word_length)
            columns = self.encoded_columns(split, rows, encoder)
            encoded, chars = [columns["ids"][i] for i in keep], [columns["chars"][i] for i in keep]
        fields = {"inputs": encoded, "chars": chars, "tags": tags}
        return EncodedRows(fields, [len(row) for row in encoded])

    def _normalized(self, rows: list[Tensor]) -> list[Tensor]:
        """``rows`` normalised with :attr:`frame_statistics` (unchanged when not normalising)."""
        if self.frame_statistics is None:
            return rows
        mean, std = self.frame_statistics
        return list(normalize_frames(torch.cat(rows), mean, std).split([len(row) for row in rows]))

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches; with ``tbptt_steps``, consecutive chunks of every row (:class:`ChunkedRows`)."""
        hp = self.hparams
        if hp.tbptt_steps is None:
            return super().train_dataloader()
        chunks = ChunkedRows(self.encoded_split(hp.train_split), hp.batch_size, hp.tbptt_steps, shuffle=True)
        # Items are whole batches already, in an order that matters: no sampler, no workers.
        return DataLoader(chunks, batch_size=None)
