"""What every data module shares: splits loaded once, checked columns, labels derived once, batches by length.

Each split is encoded once and batched by length. A data module does no I/O in
``__init__``: the dataset is read on first use of :attr:`HFDataModule.splits` (by
``setup()``, or by a property such as ``vocab_size`` that the CLI reads to size the model).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import tokenizers
import torch
from datasets import ClassLabel, Dataset, DatasetDict, IterableDataset, IterableDatasetDict
from datasets.distributed import split_dataset_by_node
from lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from rnnzoo._version import __version__
from rnnzoo.data.batching import length_batched_loader
from rnnzoo.data.hf import check_columns, column_values, get_split, load_splits, with_validation
from rnnzoo.data.streaming import StreamedBatches, StreamLoader
from rnnzoo.data.token_cache import cache_key, write_atomically
from rnnzoo.data_state import DataState
from rnnzoo.embeddings import extend_vocabulary, load_vectors
from rnnzoo.errors import clip, preview
from rnnzoo.tokenizers import Tokenizer, tokenizer_from_dict

log = logging.getLogger(__name__)

Label = int | str
HIDDEN_LABELS = (-1, None)
"""Label values that mean "not given" (e.g. GLUE test splits use -1)."""

STAGES = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
"""The splits (by role) each Lightning stage reads."""


def derive_labels(
    values: Iterable[Any], feature: Any, column: str, label_names: Sequence[str] | None = None
) -> tuple[list[Label], list[str]]:
    """The labels a model predicts, by index, and their readable names, from the training split's values.

    * A ``ClassLabel`` feature gives its indices and names (``label_names``, if given, must equal them).
    * Otherwise the distinct values are used (-1 and None mean "not given" and are skipped);
      they must be ints or strings. With ``label_names``, ints are indices into it and
      strings are ordered by it; without, the values are sorted (ints first) and named by ``str``.

    Per-step tags are passed flattened (every tag of every row), with the feature of one step.

    Args:
        values: the label of every row (or every tag of every row).
        feature: the column's ``datasets`` feature (of one step, for per-step tags), or None.
        column: the column's name, for messages.
        label_names: the names by index (int labels) or the label set in index order (strings), or None.

    Raises:
        ValueError: for labels that are neither ints nor strings, or ``label_names`` that
            contradict a ``ClassLabel`` feature or mix with both kinds.
    """
    names = None if label_names is None else list(label_names)
    if isinstance(feature, ClassLabel):
        if names is not None and names != list(feature.names):
            raise ValueError(
                f"label_names {preview(names)} differ from the dataset's own names {preview(feature.names)} for "
                f"column {column!r}; "
                "drop label_names (ClassLabel columns carry their names)"
            )
        return list(range(feature.num_classes)), list(feature.names)
    present = {value for value in values if value not in HIDDEN_LABELS}
    if any(not isinstance(value, int | str) for value in present):
        kinds = sorted({type(value).__name__ for value in present})
        raise ValueError(f"column {column!r} must hold ints or strings (one label per row or per step), not {kinds}")
    if names is None:
        labels = sorted(present, key=lambda value: (isinstance(value, str), value))
        return labels, [str(value) for value in labels]
    if all(isinstance(value, int) for value in present):
        return list(range(len(names))), names
    if all(isinstance(value, str) for value in present):
        return list(names), names
    raise ValueError(f"column {column!r} mixes int and string labels: label_names cannot name both")


def check_vocabulary_extension(
    extend: str | None, max_new_words: int | None, reads: str, pretrained_tokenizer: str | None = None
) -> None:
    """One clear error for ``extend_vocabulary`` / ``max_new_words`` options that cannot work together.

    Args:
        extend: the ``extend_vocabulary`` vectors file, or None.
        max_new_words: the ``max_new_words`` option.
        reads: what the data module's model reads: ``word``, ``bpe``, ``char`` or ``frames``.
        pretrained_tokenizer: the ``pretrained_tokenizer`` option, if the module has one.

    Raises:
        ValueError: for a negative ``max_new_words``, or an extension of a tokenizer that is not
            word-level or that comes from a pretrained model.
    """
    if max_new_words is not None and max_new_words < 0:
        raise ValueError(f"max_new_words must be at least 0 or None (all the file's words), got {max_new_words}")
    if extend is None:
        return
    if reads != "word":
        what = {"bpe": "BPE pieces", "char": "characters", "frames": "frames (frames_column)"}.get(reads, reads)
        raise ValueError(
            f"extend_vocabulary adds the words of a vectors file to a word vocabulary, but this data reads {what}: "
            "use tokenizer: word, or drop extend_vocabulary"
        )
    if pretrained_tokenizer is not None:
        raise ValueError(
            "extend_vocabulary cannot change a pretrained tokenizer (its model's embedding rows follow its ids): "
            "drop extend_vocabulary or pretrained_tokenizer"
        )


def row_tensors(values: Tensor, counts: Sequence[int], widths: Sequence[int] | None = None) -> list[Tensor]:
    """The rows of a flat int64 ``values`` tensor: ``counts[i]`` values each, or ``[counts[i], widths[i]]`` ones."""
    if widths is None:
        return list(values.split(list(counts)))
    parts = values.split([count * width for count, width in zip(counts, widths, strict=True)])
    return [part.view(count, width) for part, count, width in zip(parts, counts, widths, strict=True)]


def flat_tensors(rows: Sequence[Sequence[Any]]) -> list[Tensor]:
    """One int64 tensor per row (of ids, or of equal-length lists of ids), made in one conversion of all the ids.

    One ``torch.tensor`` call a row is some ten times slower for many short rows.
    """
    counts = [len(row) for row in rows]
    if not any(counts) or not isinstance(next(row for row in rows if row)[0], list):
        return row_tensors(torch.tensor([token for row in rows for token in row], dtype=torch.long), counts)
    widths = [len(row[0]) if row else 0 for row in rows]
    flat = [token for row in rows for inner in row for token in inner]
    return row_tensors(torch.tensor(flat, dtype=torch.long), counts, widths)


def arrow_tensors(array: pa.Array | pa.ChunkedArray) -> list[Tensor]:
    """:func:`flat_tensors` of an Arrow list column, read from its buffers (no Python list of the values)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    counts = np.diff(np.asarray(array.offsets)).tolist()
    inner = array.flatten()
    if not pa.types.is_list(inner.type):
        return row_tensors(torch.from_numpy(np.asarray(inner).astype(np.int64)), counts)
    word_lengths = np.diff(np.asarray(inner.offsets))
    starts = np.cumsum([0, *counts[:-1]]).astype(np.int64)
    widths = [int(word_lengths[start]) if count else 0 for start, count in zip(starts, counts, strict=True)]
    return row_tensors(torch.from_numpy(np.asarray(inner.flatten()).astype(np.int64)), counts, widths)


def check_finite(
    frames: Tensor | Sequence[Tensor], split: str, positions: Sequence[int] | None = None, what: str = "frame features"
) -> None:
    """Refuse NaN or infinite inputs (a ``[N, ...]`` tensor or one tensor per row): one trains a NaN model.

    Args:
        frames: the inputs of every row.
        split: the split's name, for the message.
        positions: each row's position in the split (when rows were dropped), for the message.
        what: what the inputs are, for the message.

    Raises:
        ValueError: naming the split and the rows that hold them.
    """
    if isinstance(frames, Tensor):
        bad = (~torch.isfinite(frames.flatten(1) if frames.dim() > 1 else frames)).reshape(len(frames), -1).any(1)
        rows = bad.nonzero().flatten().tolist()
    else:
        rows = [position for position, row in enumerate(frames) if not bool(torch.isfinite(row).all())]
    if rows:
        rows = rows if positions is None else [positions[row] for row in rows]
        raise ValueError(
            f"split {split!r} has NaN or infinite {what} in {len(rows)} row(s), by position {preview(rows)}: "
            "one of them makes every weight NaN; drop or impute them first"
        )


def check_texts(values: Sequence[Any], split: str, column: str, option: str) -> list[str]:
    """The texts of a column (None read as empty), refusing values that are not text (numbers, lists).

    Raises:
        ValueError: naming the split, the column, the option that chose it and the rows.
    """
    rows = [position for position, value in enumerate(values) if value is not None and not isinstance(value, str)]
    if rows:
        found = values[rows[0]]
        raise ValueError(
            f"column {column!r} ({option}) of split {split!r} holds {type(found).__name__} values, not text, in "
            f"{len(rows)} row(s), by position {preview(rows)} (the first is {clip(repr(found), 60)}): set {option} "
            "to the column of texts"
        )
    return [value or "" for value in values]


class EncodedRows(TorchDataset):
    """The encoded rows of one split: equal-length fields read together, and each row's length.

    Every field is also an attribute (``rows.tags``, ``rows.sources``); an item is the
    tuple of the fields of one row, in the order given, which the batch's collate function reads.

    Args:
        fields: the values of every row, by field name.
        lengths: the length of each row (what bucketing sorts by), or None.
    """

    def __init__(self, fields: dict[str, Sequence[Any]], lengths: Sequence[int] | None = None) -> None:
        self.fields = tuple(fields)
        for name, values in fields.items():
            setattr(self, name, values)
        self.lengths = lengths

    def __len__(self) -> int:
        """Number of rows."""
        return len(getattr(self, self.fields[0]))

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        """The fields of row ``index``."""
        return tuple(getattr(self, name)[index] for name in self.fields)


class Encoder:
    """A batch of raw rows -> encoded columns, for ``Dataset.map`` (picklable, for ``num_proc`` processes).

    A subclass sets :attr:`columns` (the raw columns it reads) and implements ``__call__`` and
    :meth:`key`, which names everything its output depends on (the tokenizer's digest, options).
    """

    columns: tuple[str, ...] = ()
    version: ClassVar[int] = 1
    """Part of every cache file's name: raise it when what the encoder outputs, or how, changes."""

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """The encoded columns of ``batch`` (one value per row each)."""
        raise NotImplementedError

    def key(self) -> dict[str, Any]:
        """What the output depends on, JSON-able (part of the cache file's name)."""
        raise NotImplementedError


class HFDataModule(LightningDataModule):
    """Base of the data modules: HF splits loaded once, checked columns, encoded splits batched by length.

    * :attr:`splits` loads ``dataset`` (with ``name`` and ``revision``) on first use; when the
      module has a ``val_fraction`` option and the dataset no ``val_split``, one is carved from
      ``train_split`` with ``seed`` when asked (:func:`~rnnzoo.data.hf.with_validation`).
    * :meth:`rows` reads a split checked to hold the columns named by the given options,
      with one error naming the option to set.
    * :meth:`encoded_split` encodes a split once (:meth:`encode`); the loaders batch it with
      :attr:`collate_fn`, by length when ``bucketing``.
    * With a ``streaming`` option set, every split is a ``datasets.IterableDataset`` read row by
      row: the loaders encode it a pool of rows at a time (:class:`~rnnzoo.data.streaming.StreamedBatches`),
      and under DDP each process reads its own part (``split_dataset_by_node``). Options that need the
      whole split at once (:attr:`whole_split_options`) are refused with it.

    A subclass sets :attr:`collate_fn`, implements :meth:`encode` (an :class:`EncodedRows`, with
    ``lengths`` when it buckets) and :meth:`columns`, and names in its hyper-parameters
    ``dataset``, ``train_split``, ``val_split``, ``test_split`` and ``batch_size``, and optionally
    ``name``, ``revision``, ``data_files``, ``builder``, ``val_fraction`` with ``seed``,
    ``eval_batch_size``, ``bucketing``, ``pool_batches``, ``num_workers``, and ``streaming`` with
    ``shuffle_buffer``.
    """

    collate_fn: ClassVar[Callable[[list[Any]], Any]]
    column_hints: ClassVar[dict[str, str]] = {}
    """An extra clause for the missing-column message of an option."""
    whole_split_options: ClassVar[dict[str, str]] = {
        "val_fraction": "carves validation rows at random out of the whole training split: name a validation split",
        "num_workers": "a stream is read in order in the main process, its position saved for resume: set it to 0",
    }
    """Options that cannot work with ``streaming`` (set to anything but None, False or 0), and why."""

    def __init__(self) -> None:
        super().__init__()
        self._splits: DatasetDict | IterableDatasetDict | None = None
        self.encoded: dict[str, Any] = {}
        self._extension: dict[str, Any] | None = None
        self._checked_streams: set[tuple[str, ...]] = set()

    # The raw splits and their columns.

    def raw_splits(self) -> DatasetDict | IterableDatasetDict:
        """Hook: the dataset's splits as stored (a generated dataset overrides it)."""
        hp = self.hparams
        return load_splits(
            hp.dataset, hp.get("name"), hp.get("revision"), hp.get("data_files"), hp.get("builder"), self.streaming
        )

    @property
    def streaming(self) -> bool:
        """Whether the splits are read as streams (the ``streaming`` option)."""
        return bool(self.hparams.get("streaming", False))

    def check_streaming(self) -> None:
        """One clear error for ``streaming`` with an option that needs the whole split (call it in ``__init__``).

        Raises:
            ValueError: naming the option and why.
        """
        if not self.streaming:
            return
        buffer = self.hparams.get("shuffle_buffer", 1)
        if buffer <= 0:
            raise ValueError(f"shuffle_buffer must be a positive number of rows, got {buffer}")
        for option, why in type(self).whole_split_options.items():
            if self.hparams.get(option) not in (None, False, 0):
                raise ValueError(f"streaming: true cannot work with {option}={self.hparams[option]!r}, which {why}")

    @property
    def source(self) -> str:
        """The data's name in messages: the dataset id or folder, else the data files."""
        hp = self.hparams
        return hp.dataset if hp.dataset is not None else str(hp.get("data_files"))

    def columns(self) -> tuple[str, ...]:
        """Hook: the options whose columns every split must hold (``"text_column"``, ``"label_column"``)."""
        return ()

    @property
    def splits(self) -> DatasetDict:
        """The dataset's splits (loaded once), plus a carved validation split when it had none."""
        if self._splits is None:
            hp = self.hparams
            splits = self.raw_splits()
            if self.streaming and "val_fraction" in hp and hp.val_split not in splits:
                raise KeyError(
                    f"dataset {self.source!r} has no split {hp.val_split!r} (val_split), and streaming: true cannot "
                    f"carve one out of {hp.train_split!r}; its splits are {sorted(splits)}. Name one of them, or "
                    "drop streaming."
                )
            if "val_fraction" in hp and not self.streaming:
                self._checked(splits, hp.train_split, self.columns())  # a clear error before carving
                splits = with_validation(splits, self.source, hp.train_split, hp.val_split, hp.val_fraction, hp.seed)
            self._splits = splits
        return self._splits

    def rows(self, split: str, *options: str) -> Dataset | IterableDataset:
        """One split, checked to exist, to have rows and to hold the columns ``options`` name.

        Args:
            split: the split's name.
            options: the options naming the columns to check (their values are a column
                name, a list of them, or None); by default those of :meth:`columns`.

        Raises:
            KeyError: for a missing split or column, naming the option to set.
            ValueError: for an empty split.
        """
        return self._checked(self.splits, split, options or self.columns())

    def _checked(
        self, splits: DatasetDict | IterableDatasetDict, split: str, options: Sequence[str]
    ) -> Dataset | IterableDataset:
        hp = self.hparams
        names = {option: _column_names(hp[option]) for option in options}
        key = (split, *sorted(options))
        if key not in self._checked_streams:  # a stream is checked once: each check reads its first row
            rows = get_split(splits, split, self.source)
            check_columns(rows, split, self.source, names, type(self).column_hints)
            if isinstance(rows, IterableDataset):
                self._checked_streams.add(key)
            return rows
        return splits[split]

    def values(self, split: str, option: str) -> list[Any]:
        """The column ``option`` names, of ``split`` (checked), as a list."""
        return column_values(self.rows(split, option), self.hparams[option])

    # The datasets cache: what a second run with the same data and options reads instead of computing.

    def cache_folder_of(self, rows: Dataset | IterableDataset) -> Path | None:
        """The folder of a split's datasets cache files; None with ``cache`` off, or for a stream or data in memory."""
        if not self.hparams.get("cache", False) or isinstance(rows, IterableDataset) or not rows.cache_files:
            return None
        return Path(rows.cache_files[0]["filename"]).parent

    def cached_tokenizer(
        self, name: str, train: Callable[[], Tokenizer], folder: Path | None = None, **options: Any
    ) -> Tokenizer:
        """The tokenizer ``train`` makes from the training split, kept in a file for later runs.

        The file is named by a digest of what the result depends on: the training split's ``datasets``
        fingerprint, ``options`` and the versions of rnnzoo and ``tokenizers``. It lies in ``folder``,
        by default beside the training split's cache files; without one (``cache`` off, data in memory,
        a stream) ``train`` runs every time. A file that does not read is trained again and replaced.
        """
        rows = self.rows(self.hparams.train_split)
        folder = folder or self.cache_folder_of(rows)
        if folder is None:
            return train()
        versions = [__version__, tokenizers.__version__]  # a new release may train otherwise
        key = cache_key(kind=name, dataset=rows._fingerprint, options=options, versions=versions)
        path = folder / f"rnnzoo-{name}-{key[:32]}.tokenizer.json"
        if path.is_file():
            try:
                tokenizer = tokenizer_from_dict(json.loads(path.read_text(encoding="utf-8")))
                log.info("read the %s from %s", name, path)
                return tokenizer
            except (ValueError, KeyError, TypeError) as error:  # a damaged file: train again
                log.warning("%s file %s does not read (%s): training the %s again", name, path, error, name)
        tokenizer = train()
        description = json.dumps(tokenizer.to_dict(), ensure_ascii=False).encode("utf-8")
        write_atomically(path, lambda file: file.write(description))
        return tokenizer

    def encoded_columns(self, split: str, rows: Dataset, encoder: Encoder) -> dict[str, list[Tensor]]:
        """The columns ``encoder`` makes of ``rows`` (a whole split, or a pool of a stream): one tensor per row each.

        A whole split held in the datasets cache is encoded by ``Dataset.map`` (in ``num_proc``
        processes, with a progress bar) into a cache file named by the split's fingerprint and the
        encoder's :meth:`~Encoder.key`, which a later run with the same data and tokenizer reads
        instead; ``cache: false``, data in memory and pools are encoded directly.
        """
        rows = rows.select_columns(list(encoder.columns))
        if self.cache_folder_of(rows) is None:
            return {name: flat_tensors(values) for name, values in encoder(rows.to_dict()).items()}
        what = {"encoder": type(encoder).__name__, "format": encoder.version, **encoder.key()}
        fingerprint = cache_key(kind="encoded", dataset=rows._fingerprint, encoder=what, version=__version__)
        encoded = rows.map(
            encoder,
            batched=True,
            batch_size=1000,
            remove_columns=list(encoder.columns),
            new_fingerprint=fingerprint[:32],
            num_proc=self.hparams.get("num_proc"),
            desc=f"encoding {split!r}",
        )
        table = encoded.with_format("arrow")[:]  # the rows in order, through any indices mapping
        return {name: arrow_tensors(table.column(name)) for name in encoded.column_names}

    # What the model reads, known before setup().

    @property
    def tokenizer(self) -> Tokenizer | None:
        """Hook: the tokenizer the model reads with (built from the training split), or None."""
        return None

    @property
    def vocab_size(self) -> int | None:
        """Vocabulary size, known before ``setup()`` (the CLI links it into the model); None without a tokenizer."""
        return None if self.tokenizer is None else len(self.tokenizer)

    def data_state(self) -> DataState:
        """What a model trained on this data must keep (built from the training split): here the tokenizer."""
        return DataState(tokenizer=self.tokenizer)

    def extended_vocabulary(self, tokenizer: Tokenizer) -> Tokenizer:
        """``tokenizer`` with the words of the ``extend_vocabulary`` vectors file added, or as it is without one.

        At most ``max_new_words`` words are added, the file's first (GloVe and fastText list the frequent
        words first), after the training words, whose ids do not change; words unseen in training then
        read as their own id, which the model's ``embeddings`` give a pretrained vector. What was added is
        recorded in :meth:`vocabulary_extension`, which goes into the data state's options.

        Raises:
            ValueError: for a tokenizer that is not word-level (BPE pieces and characters are not words).
        """
        path = self.hparams.get("extend_vocabulary")
        if path is None:
            return tokenizer
        extended = extend_vocabulary(tokenizer, load_vectors(path), self.hparams.get("max_new_words"))
        self._extension = {"file": Path(path).name, "new_words": len(extended) - len(tokenizer)}
        log.info("added %d words of %s to the %d-word vocabulary", len(extended) - len(tokenizer), path, len(tokenizer))
        return extended

    def vocabulary_extension(self) -> dict[str, Any]:
        """``{"vocabulary_extension": {"file", "new_words"}}`` with ``extend_vocabulary``, else ``{}``."""
        if self.hparams.get("extend_vocabulary") is None or self.tokenizer is None:  # the tokenizer extends itself
            return {}
        return {"vocabulary_extension": dict(self._extension or {})}

    # Encoding and batching.

    def split_name(self, role: str) -> str:
        """The split that plays ``role`` (``train``, ``val`` or ``test``): the ``{role}_split`` option."""
        return self.hparams[f"{role}_split"]

    def encode(self, split: str, rows: Dataset | None = None) -> TorchDataset:
        """Hook: the encoded rows of ``split``, or of ``rows``, a part of it (a pool of a stream).

        Rows it cannot use are dropped; with ``rows`` given, that may leave none.
        """
        raise NotImplementedError

    def encode_for_predict(self, split: str, rows: Dataset | None = None) -> TorchDataset:
        """Hook: the encoded rows ``predict`` reads, in their order (by default :meth:`encode`'s)."""
        return self.encode(split, rows)

    def encoded_split(self, split: str) -> TorchDataset:
        """The encoded rows of ``split``, computed once."""
        if split not in self.encoded:
            self.encoded[split] = self.encode(split)
        return self.encoded[split]

    def predict_split(self) -> TorchDataset:
        """Hook: what ``predict`` reads, in its order (the test split)."""
        return self.encoded_split(self.split_name("test"))

    def setup(self, stage: str) -> None:
        """Encode the splits the stage needs (a stream is encoded as it is read)."""
        if self.streaming:
            self.data_state()  # the tokenizer and labels, from the training split, before the first batch
            return
        if stage == "predict":
            self.predict_split()
            return
        for role in STAGES[stage]:
            self.encoded_split(self.split_name(role))

    def stream_of(self, split: str) -> IterableDataset:
        """``split`` as a stream, checked; under DDP, this process's part of it."""
        stream = self.rows(split)
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            stream = split_dataset_by_node(stream, rank=trainer.global_rank, world_size=trainer.world_size)
        return stream

    def streamed_loader(
        self, split: str, train: bool, encode: Callable[[Dataset], Any], bucketing: bool | None = None
    ) -> StreamLoader:
        """The loader of a streamed split: :class:`~rnnzoo.data.streaming.StreamedBatches` of ``encode``'s rows."""
        hp = self.hparams
        stream = self.stream_of(split)

        def empty() -> ValueError:
            return ValueError(f"split {split!r} of {self.source!r} has no row the model can read (all were dropped)")

        batches = StreamedBatches(
            stream,
            encode,
            type(self).collate_fn,
            hp.batch_size if train else hp.get("eval_batch_size", hp.batch_size),
            train,
            hp.get("bucketing", False) if bucketing is None else bucketing,
            hp.get("pool_batches", 100),
            hp.get("shuffle_buffer", 10_000),
            torch.initial_seed(),
            stream.features,
            empty,
            f"split {split!r} of {self.source!r}",
        )
        return StreamLoader(batches)

    def _loader(self, split: str, train: bool) -> DataLoader:
        hp = self.hparams
        if self.streaming:
            return self.streamed_loader(split, train, lambda rows: self.encode(split, rows))
        rows = self.encoded_split(split)
        return length_batched_loader(
            rows,
            getattr(rows, "lengths", None),
            hp.batch_size if train else hp.get("eval_batch_size", hp.batch_size),
            train,
            type(self).collate_fn,
            hp.get("bucketing", False),
            hp.get("pool_batches", 100),
            hp.get("num_workers", 0),
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (bucketed by length when ``bucketing``)."""
        return self._loader(self.split_name("train"), train=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches (in length order when ``bucketing``)."""
        return self._loader(self.split_name("val"), train=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches (in length order when ``bucketing``)."""
        return self._loader(self.split_name("test"), train=False)

    def predict_dataloader(self) -> DataLoader:
        """:meth:`predict_split` in its own order."""
        hp = self.hparams
        if self.streaming:
            split = self.split_name("test")
            return self.streamed_loader(split, False, lambda rows: self.encode_for_predict(split, rows), False)
        return DataLoader(
            self.predict_split(),
            batch_size=hp.get("eval_batch_size", hp.batch_size),
            collate_fn=type(self).collate_fn,
            num_workers=hp.get("num_workers", 0),
        )


class LabelledDataModule(HFDataModule):
    """A data module whose rows carry labels (one per row, or one per step): derived once from the training split.

    The column is the one :attr:`label_option` names; a ``label_names`` option, when the
    module has one, names int labels or orders string labels (see :func:`derive_labels`).
    """

    label_option: ClassVar[str] = "label_column"
    per_step_labels: ClassVar[bool] = False
    """True when each row holds a list of labels (tags), one per step."""

    def __init__(self) -> None:
        super().__init__()
        self._label_set: tuple[list[Label], list[str]] | None = None

    def _derive_labels(self) -> tuple[list[Label], list[str]]:
        if self._label_set is None:
            hp = self.hparams
            column = hp[self.label_option]
            train = self.rows(hp.train_split, self.label_option)
            values, feature = column_values(train, column), train.features[column]
            if self.per_step_labels:
                values, feature = [value for row in values for value in row], getattr(feature, "feature", None)
            self._label_set = derive_labels(values, feature, column, hp.get("label_names"))
            self.check_label_values(values)
            log.info("%d labels in column %r: %s", len(self._label_set[0]), column, preview(self._label_set[1]))
        return self._label_set

    def check_label_values(self, values: list[Any]) -> None:
        """Hook: check the training split's label values (flattened for tags) once they are derived."""

    @property
    def labels(self) -> list[Label]:
        """The label values the model predicts, by index (ClassLabel indices, or the distinct values)."""
        return self._derive_labels()[0]

    @property
    def label_names(self) -> list[str]:
        """Readable names of :attr:`labels`."""
        return self._derive_labels()[1]

    def label_indices(self, split: str, values: Sequence[Any], what: str = "label") -> list[int]:
        """The indices of label ``values`` of ``split``, with one clear error for labels the model does not know.

        Raises:
            ValueError: naming the unknown labels (and where the known ones come from).
        """
        index = {value: position for position, value in enumerate(self.labels)}
        unknown = {value for value in values if value not in index}
        if unknown:
            hp = self.hparams
            source = "label_names" if hp.get("label_names") is not None else f"the training split {hp.train_split!r}"
            raise ValueError(
                f"split {split!r} has {what}(s) {preview(sorted(unknown, key=str))} that {source} does not name; "
                f"known {what}s: {preview(self.label_names)}"
            )
        return [index[value] for value in values]


def _column_names(value: str | Sequence[str] | None) -> list[str]:
    """The column names an option's value gives: one name, a list of them, or none."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
