"""Loading HuggingFace datasets by hub id or local folder, with errors that say what to fix; pretrained tokenizers."""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from datasets import Dataset, DatasetDict, load_dataset
from datasets.exceptions import DatasetGenerationError

from rnnzoo.tokenizers import Tokenizer

log = logging.getLogger(__name__)

DEFAULT_VAL_SPLIT = "validation"
"""The validation split's default name: when a dataset lacks it, no split was named and one is carved."""
DEFAULT_VAL_FRACTION = 0.1
"""The share of train carved for validation when no split was named and no ``val_fraction`` given."""


def load_splits(dataset: str, name: str | None = None, revision: str | None = None) -> DatasetDict:
    """``datasets.load_dataset(dataset, name, revision)``: a hub id online or a local folder offline.

    Raises:
        FileNotFoundError: when ``dataset`` looks like a path and nothing is there.
        ConnectionError: when the hub cannot be reached for a hub id (e.g. offline).
    """
    # A hub id is "name" or "owner/name"; anything else is meant as a folder.
    looks_local = dataset.startswith((".", "/", "~")) or dataset.count("/") > 1
    if looks_local and not os.path.exists(os.path.expanduser(dataset)):
        raise FileNotFoundError(
            f"dataset folder {dataset!r} does not exist; give an existing local folder or a hub id "
            "such as 'karpathy/tiny_shakespeare'"
        )
    try:
        splits = load_dataset(os.path.expanduser(dataset), name=name, revision=revision)
    except (ConnectionError, FileNotFoundError, ValueError, DatasetGenerationError) as error:
        cause = f" ({error.__cause__})" if error.__cause__ else ""
        kind = ValueError if isinstance(error, DatasetGenerationError) else type(error)
        raise kind(
            f"could not load dataset {dataset!r} (name={name!r}, revision={revision!r}): {error}{cause}. "
            "Check the hub id or point it at a local folder; offline, hub ids only work when cached."
        ) from error
    if not isinstance(splits, DatasetDict):
        raise TypeError(f"dataset {dataset!r} did not load as named splits (got {type(splits).__name__})")
    return splits


def get_split(
    splits: DatasetDict, split: str, dataset: str, column: str | None = None, option: str = "text_column"
) -> Dataset:
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
    if len(rows) == 0:
        raise ValueError(f"split {split!r} of dataset {dataset!r} is empty")
    return rows


def check_columns(
    rows: Dataset,
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
    for option, names in columns.items():
        for name in names:
            if name not in rows.column_names:
                hint = (hints or {}).get(option, "")
                raise KeyError(
                    f"split {split!r} of dataset {dataset!r} has no column {name!r}; "
                    f"its columns are {rows.column_names}. Set {option} to one of them{hint}."
                )


def column_values(rows: Dataset, column: str) -> list[Any]:
    """One column of a split as a Python list, converted in one go (row-by-row access is slow)."""
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
