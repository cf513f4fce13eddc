"""Tagging data (one label per step): tokenized sentences or frame features, with a tag sequence per row."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from datasets import ClassLabel, Dataset, DatasetDict
from torch import Tensor

from rnnzoo.data.base import SplitDataModule
from rnnzoo.data.batching import pad_sequences
from rnnzoo.data.hf import get_split, load_splits, with_validation
from rnnzoo.tokenizers import CharTokenizer, WordVocabulary

log = logging.getLogger(__name__)

Tag = int | str
CHAR_PAD = "\x00"
"""Character id 0 of a tagging char vocabulary: the padding of short words (never read by the char encoders)."""
CHAR_UNK = "\ufffd"
"""The character that stands for any character never seen in training."""

TaggingBatch = dict[str, Tensor]
"""``inputs`` (``[B, T]`` word ids or ``[B, T, F]`` frames), ``lengths [B]``, ``tags [B, T]`` (-100 at
padding and for unlabelled rows) and, for words, ``chars [B, T, L]`` (0 at padding)."""


def column(rows: Dataset, name: str) -> list[Any]:
    """One column of a split as a Python list, converted in one go (row-by-row access is slow)."""
    return rows.select_columns([name]).to_dict()[name]


def build_char_tokenizer(sentences: Sequence[Sequence[str]]) -> CharTokenizer:
    """The characters of the training words (case kept), with :data:`CHAR_PAD` at id 0 and :data:`CHAR_UNK`."""
    chars = {char for sentence in sentences for word in sentence for char in word} - {CHAR_PAD, CHAR_UNK}
    return CharTokenizer([CHAR_PAD, *sorted(chars)], unk_token=CHAR_UNK)


def encode_chars(words: Sequence[str], chars: CharTokenizer, max_word_length: int | None) -> Tensor:
    """``[len(words), L]`` character ids of each word (cut to ``max_word_length``), padded with 0."""
    ids, unk = chars.ids, chars.ids[chars.unk_token]
    rows = [[ids.get(char, unk) for char in word[:max_word_length]] or [unk] for word in words]
    width = max(len(row) for row in rows)
    return torch.tensor([row + [0] * (width - len(row)) for row in rows], dtype=torch.long)


class TaggedRows(torch.utils.data.Dataset):
    """The encoded rows of one split: inputs, optional character ids and tag indices."""

    def __init__(self, inputs: list[Tensor], tags: list[Tensor], chars: list[Tensor] | None = None) -> None:
        self.inputs, self.tags, self.chars = inputs, tags, chars
        self.lengths = [len(row) for row in inputs]

    def __len__(self) -> int:
        """Number of rows."""
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor | None, Tensor]:
        """``(inputs [T] or [T, F], chars [T, L] or None, tags [T])``."""
        return self.inputs[index], None if self.chars is None else self.chars[index], self.tags[index]


def collate_tagged(items: Sequence[tuple[Tensor, Tensor | None, Tensor]]) -> TaggingBatch:
    """Pad a list of rows into a :data:`TaggingBatch`."""
    inputs, lengths = pad_sequences([row for row, _, _ in items])
    batch = {"inputs": inputs, "lengths": lengths, "tags": pad_sequences([tags for _, _, tags in items], -100)[0]}
    if items[0][1] is not None:
        width = max(chars.shape[1] for _, chars, _ in items)
        padded = torch.zeros(len(items), inputs.shape[1], width, dtype=torch.long)
        for row, (_, chars, _) in enumerate(items):
            padded[row, : chars.shape[0], : chars.shape[1]] = chars
        batch["chars"] = padded
    return batch


class TaggingDataModule(SplitDataModule):
    """Rows of tokens (or frames) with one tag per step, from a hub id or a local folder, bucketed by length.

    * **Inputs**: a ``tokens_column`` of words (lists of strings), read through a
      word vocabulary and a character vocabulary, both built from the training
      split and saved with the model; or, with ``frames_column`` set, a column of
      continuous frame features (one list of ``F`` floats per step).
    * **Tags**: a ``tags_column`` of ``ClassLabel`` ints (names read from the
      dataset's features), of plain ints named by ``label_names`` (tag ``i`` is
      ``label_names[i]``), or of strings (mapped by name: the ``label_names``
      order when given, else the training split's tags sorted). Every row must
      have one tag per step.
    * **Validation** is carved from the training split (``val_fraction``, ``seed``)
      when the dataset has no ``val_split``.
    * **Length bucketing** as in classification
      (:class:`~rnnzoo.data.batching.BucketBatchSampler`).

    Args:
        dataset: hub id (``universal-dependencies/universal_dependencies``) or local folder.
        name: the dataset's configuration name (``en_ewt``); leave None for a local folder.
        revision: a hub revision (``refs/convert/parquet``); leave None for a local folder.
        tokens_column: the column of words.
        tags_column: the column of tags.
        frames_column: the column of frame features; set it for continuous inputs.
        label_names: the tag names by index for int tags, or the tag set (in index order) for string tags.
        train_split: split the vocabularies and model are trained on.
        val_split: split for validation (carved from train when the dataset lacks it).
        test_split: split for testing.
        val_fraction: share of the training split carved off for validation when needed.
        seed: seed of that carving.
        lowercase: fold case for the word vocabulary (the characters keep it).
        min_freq: words seen fewer times in training become ``<unk>``.
        max_vocab_size: most frequent words kept, None for all.
        max_word_length: characters read per word (the rest is cut), None for all.
        batch_size: rows per training batch.
        eval_batch_size: rows per validation/test batch.
        bucketing: group rows of similar length into batches.
        pool_batches: batches per sorted pool when bucketing.
        num_workers: DataLoader worker processes.
    """

    collate_fn = staticmethod(collate_tagged)

    def __init__(
        self,
        dataset: str,
        name: str | None = None,
        revision: str | None = None,
        tokens_column: str = "tokens",
        tags_column: str = "tags",
        frames_column: str | None = None,
        label_names: list[str] | None = None,
        train_split: str = "train",
        val_split: str = "validation",
        test_split: str = "test",
        val_fraction: float = 0.1,
        seed: int = 0,
        lowercase: bool = True,
        min_freq: int = 1,
        max_vocab_size: int | None = None,
        max_word_length: int | None = 20,
        batch_size: int = 32,
        eval_batch_size: int = 128,
        bucketing: bool = True,
        pool_batches: int = 100,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        for option, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value <= 0:
                raise ValueError(f"{option} must be a positive integer, got {value}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        if label_names is not None and len(set(label_names)) != len(label_names):
            raise ValueError(f"label_names holds a name twice: {label_names}")
        self.save_hyperparameters()
        self._splits: DatasetDict | None = None
        self._labels: list[Tag] | None = None
        self._label_names: list[str] | None = None
        self._tokenizer: WordVocabulary | None = None
        self._char_tokenizer: CharTokenizer | None = None
        self.encoded: dict[str, TaggedRows] = {}

    @property
    def input_column(self) -> str:
        """The column the model reads: ``frames_column`` when set, else ``tokens_column``."""
        return self.hparams.frames_column or self.hparams.tokens_column

    # The raw splits.

    @property
    def splits(self) -> DatasetDict:
        """The dataset's splits (loaded once), plus a carved validation split when it had none."""
        if self._splits is None:
            hp = self.hparams
            splits = load_splits(hp.dataset, hp.name, hp.revision)
            self.rows(hp.train_split, splits)  # a missing split or column: one clear error
            splits = with_validation(splits, hp.dataset, hp.train_split, hp.val_split, hp.val_fraction, hp.seed)
            self._splits = splits
        return self._splits

    def rows(self, split: str, splits: DatasetDict | None = None) -> Dataset:
        """One split, checked to hold the input and tag columns."""
        hp = self.hparams
        rows = get_split(self.splits if splits is None else splits, split, hp.dataset, self.input_column)
        if hp.tags_column not in rows.column_names:
            raise KeyError(
                f"split {split!r} of dataset {hp.dataset!r} has no tags column {hp.tags_column!r}; "
                f"its columns are {rows.column_names}. Set tags_column to one of them."
            )
        return rows

    # Tags, word and character vocabularies: all from the training split.

    @property
    def labels(self) -> list[Tag]:
        """The tag values the model predicts, by tag index."""
        if self._labels is None:
            hp = self.hparams
            train = self.rows(hp.train_split)
            feature = getattr(train.features[hp.tags_column], "feature", None)
            if isinstance(feature, ClassLabel):
                self._labels, self._label_names = list(range(feature.num_classes)), list(feature.names)
                if hp.label_names is not None and list(hp.label_names) != self._label_names:
                    raise ValueError(
                        f"label_names {hp.label_names} differ from the dataset's own tag names {feature.names}; "
                        "drop label_names (ClassLabel tags carry their names)"
                    )
            else:
                values = {tag for row in column(train, hp.tags_column) for tag in row}
                if values and all(isinstance(tag, int) for tag in values):
                    if hp.label_names is None:
                        self._labels = sorted(values)
                        self._label_names = [str(tag) for tag in self._labels]
                    else:
                        self._labels, self._label_names = list(range(len(hp.label_names))), list(hp.label_names)
                elif values and all(isinstance(tag, str) for tag in values):
                    self._labels = list(hp.label_names) if hp.label_names is not None else sorted(values)
                    self._label_names = list(self._labels)
                else:
                    kinds = sorted({type(tag).__name__ for tag in values})
                    raise ValueError(
                        f"tags column {hp.tags_column!r} must hold lists of ints or of strings, not {kinds}"
                    )
            log.info("%d tags: %s", len(self._labels), self._label_names)
        return self._labels

    @property
    def label_names(self) -> list[str]:
        """Readable names of :attr:`labels`."""
        self.labels  # noqa: B018 - reads the training split on first use
        return self._label_names

    @property
    def num_tags(self) -> int:
        """Number of tags."""
        return len(self.labels)

    def _train_sentences(self) -> list[list[str]]:
        return column(self.rows(self.hparams.train_split), self.hparams.tokens_column)

    @property
    def tokenizer(self) -> WordVocabulary | None:
        """The word vocabulary (None for frame inputs), built from the training split on first use."""
        hp = self.hparams
        if hp.frames_column is None and self._tokenizer is None:
            self._tokenizer = WordVocabulary.from_sentences(
                self._train_sentences(), hp.lowercase, hp.min_freq, hp.max_vocab_size
            )
            log.info("word vocabulary of %d entries from %r", len(self._tokenizer), hp.train_split)
        return self._tokenizer

    @property
    def char_tokenizer(self) -> CharTokenizer | None:
        """The character vocabulary (None for frame inputs), built from the training split on first use."""
        if self.hparams.frames_column is None and self._char_tokenizer is None:
            self._char_tokenizer = build_char_tokenizer(self._train_sentences())
        return self._char_tokenizer

    @property
    def vocab_size(self) -> int | None:
        """Word vocabulary size (linked into the model by the CLI); None for frame inputs."""
        return None if self.tokenizer is None else len(self.tokenizer)

    @property
    def char_vocab_size(self) -> int | None:
        """Character vocabulary size (linked into the model by the CLI); None for frame inputs."""
        return None if self.char_tokenizer is None else len(self.char_tokenizer)

    @property
    def frame_size(self) -> int | None:
        """Features per frame, read from the first training row (linked into the model); None for tokens."""
        if self.hparams.frames_column is None:
            return None
        first = self.rows(self.hparams.train_split)[0][self.hparams.frames_column]
        if not first or not isinstance(first[0], list | tuple):
            raise ValueError(f"frames column {self.hparams.frames_column!r} must hold lists of float vectors")
        return len(first[0])

    # Encoding.

    def tag_index(self, split: str, rows: Sequence[Sequence[Any]]) -> list[Tensor]:
        """Tag indices of every row, with one clear error for an unknown tag."""
        hp = self.hparams
        index = {value: position for position, value in enumerate(self.labels)}
        unknown = {tag for row in rows for tag in row if tag not in index}
        if unknown:
            shown = sorted(unknown, key=str)[:20]
            where = "label_names" if hp.label_names is not None else f"the training split {hp.train_split!r}"
            raise ValueError(
                f"split {split!r} has tag(s) {shown} that {where} does not name; known tags: {self.label_names}"
            )
        return [torch.tensor([index[tag] for tag in row], dtype=torch.long) for row in rows]

    def encoded_split(self, split: str) -> TaggedRows:
        """Inputs, character ids and tag indices of ``split`` (computed once); empty rows are dropped."""
        if split not in self.encoded:
            hp = self.hparams
            rows = self.rows(split)
            inputs, tag_rows = column(rows, self.input_column), column(rows, hp.tags_column)
            for position, (row, tags) in enumerate(zip(inputs, tag_rows, strict=True)):
                if len(row) != len(tags):
                    raise ValueError(
                        f"row {position} of split {split!r} has {len(row)} "
                        f"{'frames' if hp.frames_column else 'tokens'} but {len(tags)} tags: "
                        "every step needs exactly one tag"
                    )
            keep = [position for position, row in enumerate(inputs) if len(row) > 0]
            if len(keep) < len(inputs):
                log.warning("split %r: dropped %d empty row(s)", split, len(inputs) - len(keep))
            if not keep:
                raise ValueError(f"every row of split {split!r} is empty (column {self.input_column!r})")
            inputs, tag_rows = [inputs[i] for i in keep], [tag_rows[i] for i in keep]
            tags = self.tag_index(split, tag_rows)
            if hp.frames_column is not None:
                size = self.frame_size
                for position, row in enumerate(inputs):
                    sizes = {len(frame) if isinstance(frame, list | tuple) else None for frame in row}
                    if sizes != {size}:
                        raise ValueError(
                            f"row {keep[position]} of split {split!r} has frames of {sorted(sizes, key=str)} features; "
                            f"every frame must hold {size} features, as in the training split"
                        )
                self.encoded[split] = TaggedRows([torch.tensor(row, dtype=torch.float) for row in inputs], tags)
            else:
                words = [self.tokenizer.encode_words(row) for row in inputs]
                chars = [encode_chars(row, self.char_tokenizer, hp.max_word_length) for row in inputs]
                self.encoded[split] = TaggedRows(words, tags, chars)
        return self.encoded[split]
