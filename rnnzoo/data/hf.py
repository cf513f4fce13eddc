"""Loading HuggingFace datasets by hub id or local folder, with errors that say what to fix; pretrained tokenizers."""

from __future__ import annotations

import difflib
import glob
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict, get_dataset_config_names, load_dataset
from datasets.exceptions import DatasetGenerationError

from rnnzoo.data.streaming import read_stream
from rnnzoo.tokenizers import Tokenizer

log = logging.getLogger(__name__)

DEFAULT_VAL_SPLIT = "validation"
"""The validation split's default name: when a dataset lacks it, no split was named and one is carved."""
DEFAULT_VAL_FRACTION = 0.1
"""The share of train carved for validation when no split was named and no ``val_fraction`` given."""


BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}
"""The ``datasets`` builder that reads local files, by file extension."""

DataFiles = str | list[str] | dict[str, str | list[str]]
"""Local data files: a path or glob, a list of them, or a dict of split name -> path(s)."""


def load_splits(
    dataset: str | None,
    name: str | None = None,
    revision: str | None = None,
    data_files: DataFiles | None = None,
    builder: str | None = None,
    streaming: bool = False,
) -> DatasetDict | IterableDatasetDict:
    """``datasets.load_dataset``: a hub id online, a local folder offline, or local ``data_files``.

    Args:
        dataset: hub id or local folder; None when ``data_files`` are given alone (then
            relative to the working directory, else to ``dataset``).
        name: the hub dataset's configuration name (ignored, with a warning, for local data).
        revision: a hub revision (ignored, with a warning, for local data).
        data_files: a path or glob, a list of them, or a dict of split -> path(s); one
            path/glob/list becomes the ``train`` split.
        builder: ``csv``, ``json``, ``parquet`` or ``text`` for ``data_files`` alone; None infers
            it from the extension.
        streaming: read each split as an ``IterableDataset``, row by row (nothing is downloaded or
            converted first).

    Raises:
        FileNotFoundError: when ``dataset`` looks like a path and nothing is there, or a glob matches nothing.
        ValueError: for neither ``dataset`` nor ``data_files``, an unknown extension, or files the builder cannot read.
        ConnectionError: when the hub cannot be reached for a hub id (e.g. offline).
    """
    if dataset is None and data_files is None:
        raise ValueError("give the data module a dataset (hub id or local folder) or data_files (path, glob or dict)")
    files = data_files
    if dataset is None:  # files on their own, read by a builder; beside a dataset they are its to resolve
        files = resolve_data_files(data_files)
        builder = builder or infer_builder(files)
    local = dataset is None or _looks_local(dataset)
    if local and dataset is not None and not os.path.exists(os.path.expanduser(dataset)):
        raise FileNotFoundError(
            f"dataset folder {dataset!r} does not exist; give an existing local folder or a hub id "
            "such as 'karpathy/tiny_shakespeare'"
        )
    declared = local_config_names(dataset) if local and name is not None and dataset is not None else []
    if local and name is not None and name not in declared:  # gesture_phase's ltc_windows, videos are declared
        # Recipes carry hub options (UD's name: en_ewt); a local copy of the same data has no use for them.
        log.warning(
            "ignoring the hub-only option name=%r for local data %r (it declares no such config)", name, dataset
        )
        name = None
    if local and revision is not None:
        log.warning("ignoring the hub-only option revision=%r for local data %r", revision, dataset)
        revision = None
    source = builder if dataset is None else os.path.expanduser(dataset)
    described = dataset if dataset is not None else str(data_files)
    try:
        splits = load_dataset(source, name=name, revision=revision, data_files=files, streaming=streaming)
    except (ConnectionError, FileNotFoundError, ValueError, DatasetGenerationError) as error:
        cause = f" ({error.__cause__})" if error.__cause__ else ""
        kind = ValueError if isinstance(error, DatasetGenerationError) else type(error)
        fix = (
            f"Check that the files are {builder} (or set builder to csv, json, parquet or text)."
            if dataset is None
            else "Check the hub id or point it at a local folder; offline, hub ids only work when cached."
        )
        raise kind(
            f"could not load dataset {described!r} (name={name!r}, revision={revision!r}): {error}{cause}. {fix}"
        ) from error
    if not isinstance(splits, DatasetDict | IterableDatasetDict):
        raise TypeError(f"dataset {described!r} did not load as named splits (got {type(splits).__name__})")
    return splits


def local_config_names(folder: str) -> list[str]:
    """The configurations a local dataset folder declares (``configs:`` in its README.md's YAML header), or []."""
    try:
        return list(get_dataset_config_names(os.path.expanduser(folder)))
    except (FileNotFoundError, ValueError, DatasetGenerationError):
        return []


def _looks_local(dataset: str) -> bool:
    # A hub id is "name" or "owner/name"; anything else is meant as a folder.
    return dataset.startswith((".", "/", "~")) or dataset.count("/") > 1 or os.path.isdir(dataset)


def resolve_data_files(data_files: DataFiles) -> dict[str, list[str]]:
    """``data_files`` as split -> existing file paths, every glob expanded (a lone path or list is ``train``).

    Raises:
        FileNotFoundError: for a path or glob that matches no file.
    """
    by_split = data_files if isinstance(data_files, Mapping) else {"train": data_files}
    resolved = {}
    for split, patterns in by_split.items():
        paths = []
        for pattern in [patterns] if isinstance(patterns, str) else patterns:
            matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
            if not matches:
                raise FileNotFoundError(
                    f"data_files {pattern!r} (split {split!r}) matches no file; "
                    f"check the path or glob (relative paths start at {os.getcwd()!r})"
                )
            paths += matches
        resolved[split] = paths
    return resolved


def infer_builder(files: Mapping[str, Sequence[str]]) -> str:
    """The builder (``csv``, ``json``, ``parquet``, ``text``) that every file's extension names.

    Raises:
        ValueError: for an unknown extension or files of several kinds.
    """
    extensions = {os.path.splitext(path.removesuffix(".gz"))[1].lower() for paths in files.values() for path in paths}
    unknown = sorted(extensions - BUILDERS.keys())
    if unknown:
        raise ValueError(
            f"cannot tell how to read data_files with extension(s) {unknown}; "
            f"set builder to csv, json, parquet or text (known extensions: {sorted(BUILDERS)})"
        )
    builders = {BUILDERS[extension] for extension in extensions}
    if len(builders) > 1:
        raise ValueError(f"data_files mix {sorted(builders)} files; give one kind, or set builder")
    return builders.pop()


def get_split(
    splits: DatasetDict | IterableDatasetDict,
    split: str,
    dataset: str,
    column: str | None = None,
    option: str = "text_column",
) -> Dataset | IterableDataset:
    """One split, checked to exist, to have rows and (optionally) to hold ``column``.

    Args:
        splits: the dataset's splits.
        split: the split wanted.
        dataset: the dataset's id or folder, for messages.
        column: a column the split must hold, or None.
        option: the data-module option that names ``column`` (what the message tells the user to set).

    Raises:
        KeyError: for a missing split or column, listing what exists.
        ValueError: for an empty split.
    """
    if split not in splits:
        raise KeyError(
            f"dataset {dataset!r} has no split {split!r}; its splits are {sorted(splits)}. "
            "Set the data module's split names to one of them."
        )
    rows = splits[split]
    if column is not None:
        check_columns(rows, split, dataset, {option: [column]})
    name = f"split {split!r} of dataset {dataset!r}"
    if (next(read_stream(rows, name), None) is None) if isinstance(rows, IterableDataset) else len(rows) == 0:
        raise ValueError(f"split {split!r} of dataset {dataset!r} is empty")
    return rows


def check_columns(
    rows: Dataset | IterableDataset,
    split: str,
    dataset: str,
    columns: Mapping[str, Sequence[str]],
    hints: Mapping[str, str] | None = None,
) -> None:
    """Check that ``rows`` holds every column: one message format, naming the option to fix.

    Args:
        rows: one split.
        split: its name, for messages.
        dataset: the dataset's id or folder, for messages.
        columns: the column names each option gives (``{"label_column": ["label"]}``).
        hints: an extra clause per option, appended to its message.

    Raises:
        KeyError: for the first missing column, listing the split's columns.
    """
    present = column_names(rows)
    for option, names in columns.items():
        for name in names:
            if name not in present:
                hint = (hints or {}).get(option, "")
                raise KeyError(
                    f"split {split!r} of dataset {dataset!r} has no column {name!r}; "
                    f"its columns are {present}. Set {option} to one of them{hint}."
                )


def column_names(rows: Dataset | IterableDataset) -> list[str]:
    """The columns of a split; of a stream whose features are not declared (CSV, text), its first row's."""
    if rows.column_names is not None:
        return list(rows.column_names)
    return list(next(read_stream(rows), None) or {})


def column_values(rows: Dataset | IterableDataset, column: str) -> list[Any]:
    """One column of a split as a Python list, converted in one go (row-by-row access is slow).

    A stream is read whole, that column only.
    """
    if isinstance(rows, IterableDataset):
        return [row[column] for row in read_stream(rows.select_columns([column]))]
    return rows.select_columns([column]).to_dict()[column]


def pretrained_tokenizer(source: str) -> Tokenizer:
    """The tokenizer of a pretrained model (bundled name, artifact folder or hub repo id), sha256 checked."""
    from rnnzoo.hub.artifact import read_tokenizer, resolve

    return read_tokenizer(resolve(source))


def with_validation(
    splits: DatasetDict, dataset: str, train_split: str, val_split: str, fraction: float | None, seed: int
) -> DatasetDict:
    """``splits``, or when it has no ``val_split``, one carved from ``train_split`` with a fixed seed (logged).

    Carves only when asked: when no split was named (``val_split`` is the default
    ``"validation"``, carving :data:`DEFAULT_VAL_FRACTION`) or a ``fraction`` is given. A named
    split that is absent is otherwise an error, so a misspelled name never takes a part of train.

    Raises:
        KeyError: for an absent ``val_split`` that was named and not asked to be carved.
    """
    if val_split in splits:
        return splits
    if fraction is None and val_split != DEFAULT_VAL_SPLIT:
        close = difflib.get_close_matches(val_split, list(splits), n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise KeyError(
            f"dataset {dataset!r} has no split {val_split!r} (val_split); its splits are {sorted(splits)}. {hint}"
            f"Name one of them, or set val_fraction (e.g. 0.1) to carve {val_split!r} out of {train_split!r}."
        )
    fraction = DEFAULT_VAL_FRACTION if fraction is None else fraction
    parts = splits[train_split].train_test_split(test_size=fraction, seed=seed)
    log.warning(
        "dataset %r has no split %r: carved %d rows (%.0f%%) of %r for it with seed %d",
        dataset,
        val_split,
        len(parts["test"]),
        100 * fraction,
        train_split,
        seed,
    )
    return DatasetDict({**splits, train_split: parts["train"], val_split: parts["test"]})
