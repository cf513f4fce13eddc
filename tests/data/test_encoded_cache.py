"""The trained tokenizers and encoded splits kept in the datasets cache: a second run reads them, bit for bit.

Oracles: the first run's encoded rows (the second run must equal them while training and encoding
nothing), ``cache: false`` (which computes everything), one process against two, and the Python
lists the Arrow columns were made from.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pytest
import torch
from conftest import write_jsonl

from rnnzoo import ClassificationDataModule, TaggingDataModule, TranslationDataModule
from rnnzoo.data import classification, tagging, translation
from rnnzoo.data.base import arrow_tensors, flat_tensors
from rnnzoo.tokenizers import TextTokenizer, WordVocabulary

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "Away", "née"]


def sentences(count: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(WORDS) for _ in range(rng.randint(0, 9))] for _ in range(count)]


def write_data(folder: Path, task: str) -> Path:
    rows = sentences(150)
    if task == "classification":
        made = [{"text": " ".join(s), "label": len(s) % 2} for s in rows]
    elif task == "tagging":
        made = [{"tokens": s, "tags": ["N" if w in ("cat", "dog") else "X" for w in s]} for s in rows]
    else:
        made = [{"translation": {"de": " ".join(s), "en": " ".join(reversed(s))}} for s in rows]
    return write_jsonl(folder, {"train": made[:100], "validation": made[100:125], "test": made[125:]})


MODULES = {
    "classification": (ClassificationDataModule, {}),
    "tagging": (TaggingDataModule, {}),
    "translation": (TranslationDataModule, {"translation_column": "translation", "min_freq": 1}),
}


def encoded(task: str, folder: Path, **options) -> dict[str, list]:
    module, defaults = MODULES[task]
    data = module(dataset=str(folder), **defaults, **options)
    data.setup("fit")
    data.setup("test")
    return {
        "state": data.data_state().tokenizer.to_dict(),
        **{split: [tuple(row) for row in data.encoded[split]] for split in ("train", "validation", "test")},
    }


def assert_same(one: dict, other: dict) -> None:
    assert one["state"] == other["state"]
    for split in ("train", "validation", "test"):
        assert len(one[split]) == len(other[split]) > 0
        for first, second in zip(one[split], other[split], strict=True):
            for a, b in zip(first, second, strict=True):
                assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def forbid_training_and_encoding(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a second run trained or encoded instead of reading the cache")

    for owner, name in [
        (TextTokenizer, "train_word_level"),
        (TextTokenizer, "train_bpe"),
        (WordVocabulary, "from_sentences"),
        (tagging, "build_char_tokenizer"),
        (classification.TextEncoder, "__call__"),
        (tagging.WordsEncoder, "__call__"),
        (translation.PairEncoder, "__call__"),
    ]:
        monkeypatch.setattr(owner, name, refuse)


@pytest.mark.parametrize("task", sorted(MODULES))
def test_a_second_run_reads_the_tokenizer_and_the_encoded_splits(task, tmp_path, monkeypatch):
    folder = write_data(tmp_path / task, task)
    first = encoded(task, folder)
    uncached = encoded(task, folder, cache=False)
    assert_same(first, uncached)
    with monkeypatch.context() as patched:
        forbid_training_and_encoding(patched)
        assert_same(encoded(task, folder), first)
        with pytest.raises(AssertionError, match="instead of reading the cache"):
            encoded(task, folder, cache=False)  # the guard above does fire when nothing is cached


def test_changed_options_or_a_damaged_file_train_again(tmp_path, monkeypatch):
    folder = write_data(tmp_path / "reviews", "classification")
    first = encoded("classification", folder)
    trained = []
    original = TextTokenizer.train_word_level
    monkeypatch.setattr(TextTokenizer, "train_word_level", lambda *a, **k: trained.append(1) or original(*a, **k))
    assert encoded("classification", folder, max_vocab_size=8)["state"] != first["state"]
    assert len(trained) == 1  # another option, another tokenizer
    assert_same(encoded("classification", folder), first)
    assert len(trained) == 1  # the first options' file is still there
    cache = Path(ClassificationDataModule(dataset=str(folder)).rows("train").cache_files[0]["filename"]).parent
    damaged = sorted(cache.glob("rnnzoo-tokenizer-*.json"))
    assert len(damaged) == 2
    for path in damaged:
        path.write_text("{not json")
    assert_same(encoded("classification", folder), first)
    assert len(trained) == 2  # the damaged file was not read: trained anew


@pytest.mark.parametrize("task", ["classification", "tagging"])
def test_two_processes_encode_as_one(task, tmp_path):
    one = encoded(task, write_data(tmp_path / "one", task))
    two = encoded(task, write_data(tmp_path / "two", task), num_proc=2)
    assert_same(one, two)


@pytest.mark.parametrize(
    "rows",
    [
        [[3, 1], [], [7], [2, 2, 2]],
        [[[1, 2], [3, 0]], [], [[5]], [[4, 4, 4], [1, 0, 0], [2, 2, 0]]],
    ],
)
def test_arrow_columns_read_as_the_lists_they_hold(rows):
    from_lists, from_arrow = (
        flat_tensors(rows),
        arrow_tensors(pa.chunked_array([pa.array(rows[:2]), pa.array(rows[2:])])),
    )
    expected = [
        torch.tensor(row, dtype=torch.long).reshape(len(row), -1)
        if row and isinstance(row[0], list)
        else torch.tensor(row, dtype=torch.long)
        for row in rows
    ]
    for made in (from_lists, from_arrow):
        assert len(made) == len(rows)
        for tensor, want in zip(made, expected, strict=True):
            assert tensor.dtype == torch.long and tensor.numel() == want.numel()
            if want.numel():
                assert torch.equal(tensor, want)


def test_a_carved_validation_split_reads_its_own_rows_from_the_cache(tmp_path):
    rows = [{"text": " ".join(s) or "empty", "label": len(s) % 2} for s in sentences(120)]
    folder = write_jsonl(tmp_path / "train_only", {"train": rows})  # validation is carved: an indices mapping
    one, two = (ClassificationDataModule(dataset=str(folder), cache=cache) for cache in (True, False))
    for data in (one, two):
        data.setup("fit")
    for split in ("train", "validation"):
        assert len(one.encoded[split]) == len(two.encoded[split]) > 0
        assert all(torch.equal(a, b) for a, b in zip(one.encoded[split].ids, two.encoded[split].ids, strict=True))
        assert one.encoded[split].targets == two.encoded[split].targets
