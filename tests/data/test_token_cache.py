"""The language model's token cache: memory-mapped token files give the in-memory batches exactly, once tokenized."""

from __future__ import annotations

import logging

import datasets
import numpy as np
import pytest
import torch
from conftest import TINY_TEXT, write_jsonl

from rnnzoo import LanguageModelDataModule
from rnnzoo.data import ContiguousChunks, token_cache
from rnnzoo.data.token_cache import read_token_file, token_dtype, write_token_file
from rnnzoo.tokenizers import CharTokenizer, TextTokenizer

LINES = TINY_TEXT.split("\n")


@pytest.fixture
def ragged_corpus(tmp_path, monkeypatch):
    """Rows with None and empty ones (at the start, at the end, whole blocks of them), read in tiny blocks."""
    # One or two rows a block: the newlines between blocks, and blocks of None or empty rows only, are exercised.
    monkeypatch.setattr(token_cache, "BLOCK_CHARACTERS", 16)
    train = [None, "", *LINES[:20], None, None, None, "", "", "", *LINES[20:], "", None]
    splits = {
        "train": [{"text": row} for row in train],
        "validation": [{"text": row} for row in [*LINES[:9], None, "", *LINES[9:15]]],
    }
    return write_jsonl(tmp_path / "ragged", splits)


def data_modules(
    folder, cache_dir, num_proc=None, **options
) -> tuple[LanguageModelDataModule, LanguageModelDataModule]:
    """The same data in memory and through the token cache (tokenized by ``num_proc`` processes)."""
    options = {"batch_size": 4, "eval_batch_size": 2, "tbptt_steps": 16, **options}
    in_memory = LanguageModelDataModule(str(folder), **options)
    cached = LanguageModelDataModule(
        str(folder), token_cache=True, cache_dir=str(cache_dir), num_proc=num_proc, **options
    )
    return in_memory, cached


def assert_same_chunks(expected, got) -> None:
    for want, have in zip(expected, got, strict=True):
        for name in ("inputs", "targets"):
            assert getattr(have, name).dtype == torch.long
            assert torch.equal(getattr(have, name), getattr(want, name))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"random_tbptt_length": True},
        {"tokenizer": "word", "eos_token": "<eos>"},
        {"tokenizer": "word"},
        {"tokenizer": "bpe", "eos_token": "<eos>", "max_vocab_size": 300},
        {"num_proc": 2},
        {"tokenizer": "word", "eos_token": "<eos>", "num_proc": 2},
    ],
    ids=["char", "char-random-lengths", "word-eos", "word", "bpe-eos", "char-2-processes", "word-eos-2-processes"],
)
def test_cached_chunks_equal_the_in_memory_ones(tmp_path, ragged_corpus, options):
    in_memory, cached = data_modules(ragged_corpus, tmp_path / "cache", **options)
    in_memory.setup("fit")
    cached.setup("fit")
    assert cached.tokenizer == in_memory.tokenizer
    for split in ("train", "validation"):
        assert cached.streams[split].dtype == torch.uint16
        assert torch.equal(cached.streams[split].long(), in_memory.streams[split])
    assert_same_chunks(in_memory.train_dataloader(), cached.train_dataloader())
    assert_same_chunks(in_memory.val_dataloader(), cached.val_dataloader())
    # Under DDP each process reads its rows of the one layout, from the memory map as from memory.
    for rank in (0, 1):
        steps = {"batch_size": 4, "steps": 16, "rank": rank, "world_size": 2}
        assert_same_chunks(
            ContiguousChunks(in_memory.streams["train"], **steps), ContiguousChunks(cached.streams["train"], **steps)
        )


def test_text_blocks_are_the_text_in_pieces(tmp_path, ragged_corpus):
    data = LanguageModelDataModule(str(ragged_corpus))
    blocks = list(data.text_blocks("train"))
    assert len(blocks) > 10
    assert "".join(blocks) == data.text("train")
    assert list(data.streamed_rows("train")) == data.rows_of("train")


def test_a_second_run_reads_the_cache_without_tokenizing(tmp_path, ragged_corpus, monkeypatch):
    cache = tmp_path / "cache"
    for options in ({}, {"tokenizer": "word", "eos_token": "<eos>"}):
        first = LanguageModelDataModule(str(ragged_corpus), token_cache=True, cache_dir=str(cache), **options)
        first.setup("fit")
        files = {path: path.stat().st_mtime_ns for path in cache.iterdir()}
        with monkeypatch.context() as patch:
            for owner, name in [
                (CharTokenizer, "from_texts"),
                (CharTokenizer, "encode_array"),
                (TextTokenizer, "train_word_level"),
                (TextTokenizer, "encode_batch"),
            ]:
                patch.setattr(owner, name, pytest.fail)
            second = LanguageModelDataModule(str(ragged_corpus), token_cache=True, cache_dir=str(cache), **options)
            second.setup("fit")
        assert second.tokenizer == first.tokenizer
        for split in ("train", "validation"):
            assert torch.equal(second.streams[split], first.streams[split])
        assert {path: path.stat().st_mtime_ns for path in cache.iterdir()} == files  # nothing written again


def test_changed_data_or_options_make_new_files(tmp_path, tiny_corpus):
    cache = tmp_path / "cache"
    LanguageModelDataModule(str(tiny_corpus), token_cache=True, cache_dir=str(cache)).setup("validate")
    assert len(list(cache.glob("*.tokens.npy"))) == len(list(cache.glob("*.tokenizer.json"))) == 1
    (tiny_corpus / "validation.txt").write_text("Speak, speak.\nAll:", encoding="utf-8")
    LanguageModelDataModule(str(tiny_corpus), token_cache=True, cache_dir=str(cache)).setup("validate")
    assert len(list(cache.glob("*.tokens.npy"))) == 2  # the validation split's fingerprint changed
    options = {"tokenizer": "word", "eos_token": "<eos>"}
    LanguageModelDataModule(str(tiny_corpus), token_cache=True, cache_dir=str(cache), **options).setup("validate")
    assert len(list(cache.glob("*.tokens.npy"))) == 3  # another tokenizer


def test_a_damaged_cache_is_rebuilt(tmp_path, tiny_corpus, caplog):
    cache = tmp_path / "cache"
    reference = LanguageModelDataModule(str(tiny_corpus), token_cache=True, cache_dir=str(cache))
    reference.setup("validate")
    expected = reference.streams["validation"].clone()
    (path,) = cache.glob("*.tokens.npy")
    size = path.stat().st_size
    damages = {
        "truncated": lambda: path.write_bytes(path.read_bytes()[:-7]),
        "longer": lambda: path.write_bytes(path.read_bytes() + b"\0\0"),
        "another dtype": lambda: np.save(path, np.arange(10, dtype=np.uint32)),
        "not an array": lambda: path.write_bytes(b"not a numpy file"),
        "empty": lambda: path.write_bytes(b""),
    }
    for damage in damages.values():
        damage()
        caplog.clear()
        data = LanguageModelDataModule(str(tiny_corpus), token_cache=True, cache_dir=str(cache))
        with caplog.at_level(logging.WARNING, logger="rnnzoo.data.token_cache"):
            data.setup("validate")
        assert "rebuilding it" in caplog.text
        assert torch.equal(data.streams["validation"], expected)
        assert path.stat().st_size == size
    (tokenizer_file,) = cache.glob("*.tokenizer.json")
    tokenizer_file.write_text("{", encoding="utf-8")
    data = LanguageModelDataModule(str(tiny_corpus), token_cache=True, cache_dir=str(cache))
    with caplog.at_level(logging.WARNING, logger="rnnzoo.data.base"):
        assert data.tokenizer == reference.tokenizer
    assert "training the tokenizer again" in caplog.text
    assert not list(cache.glob(".*.tmp"))


def test_token_files_are_uint16_up_to_65536_entries_then_uint32(tmp_path):
    assert token_dtype(1) == token_dtype(2**16) == np.uint16
    assert token_dtype(2**16 + 1) == token_dtype(2**32) == np.uint32
    with pytest.raises(ValueError, match="does not fit 32-bit"):
        token_dtype(2**32 + 1)
    path = tmp_path / "tokens.npy"
    tokens = write_token_file(path, [np.array([0, 70_000]), np.array([5])], np.dtype(np.uint32))
    assert tokens.tolist() == [0, 70_000, 5] and tokens.dtype == np.uint32
    assert np.load(path).tolist() == [0, 70_000, 5]  # a plain .npy file
    assert read_token_file(path, np.dtype(np.uint16)) is None  # the header says otherwise


def test_a_vocabulary_of_more_than_65536_words_is_cached_as_uint32(tmp_path):
    words = [f"w{index}" for index in range(70_000)]
    rows = [" ".join(words[start : start + 500]) for start in range(0, len(words), 500)]
    folder = write_jsonl(tmp_path / "many_words", {"train": [{"text": row} for row in rows]})
    options = {"tokenizer": "word", "eos_token": "<eos>", "batch_size": 4, "tbptt_steps": 64, "val_split": "train"}
    in_memory, cached = data_modules(folder, tmp_path / "cache", **options)
    in_memory.setup("fit")
    cached.setup("fit")
    assert cached.vocab_size > 2**16
    assert cached.streams["train"].dtype == torch.uint32
    assert_same_chunks(in_memory.train_dataloader(), cached.train_dataloader())


def test_resuming_over_the_memory_map_continues_exactly(tmp_path, tiny_corpus):
    cache = tmp_path / "cache"
    options = {"batch_size": 2, "tbptt_steps": 12, "random_tbptt_length": True, "token_cache": True}
    first = LanguageModelDataModule(str(tiny_corpus), cache_dir=str(cache), **options)
    first.setup("fit")
    uninterrupted = first.train_dataloader()
    list(uninterrupted)  # pass 0
    expected = list(uninterrupted)  # pass 1
    interrupted = first.train_dataloader()
    list(interrupted)
    batches = iter(interrupted)
    seen = [next(batches) for _ in range(5)]
    state = interrupted.state_dict()
    second = LanguageModelDataModule(str(tiny_corpus), cache_dir=str(cache), **options)  # a new process, say
    second.setup("fit")
    resumed = second.train_dataloader()
    resumed.load_state_dict(state)
    assert_same_chunks(expected, seen + list(resumed))


def test_the_default_cache_lives_beside_the_datasets_cache(tmp_path, tiny_corpus, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf")
    data = LanguageModelDataModule(str(tiny_corpus), token_cache=True)
    data.setup("validate")
    assert data.cache_folder == tmp_path / "hf" / "rnnzoo_tokens"
    assert len(list(data.cache_folder.glob("*.tokens.npy"))) == 1


def test_token_cache_errors_say_what_to_fix(tmp_path, tiny_corpus):
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="cache_dir is for the token cache: set token_cache to true"):
        LanguageModelDataModule(str(tiny_corpus), cache_dir=str(cache))
    with pytest.raises(ValueError, match="num_proc must be a positive"):
        LanguageModelDataModule(str(tiny_corpus), token_cache=True, num_proc=0)
    blank = write_jsonl(tmp_path / "blank", {"train": [{"text": " "}, {"text": None}, {"text": "\n"}]})
    for options, message in [
        ({}, "split 'train' of dataset .* has no text in column 'text'"),
        ({"tokenizer": "word"}, "no word of split 'train' is seen 1 times or more"),
    ]:
        with pytest.raises(ValueError, match=message):
            LanguageModelDataModule(str(blank), token_cache=True, cache_dir=str(cache), **options).vocab_size
    unseen = write_jsonl(
        tmp_path / "unseen", {"train": [{"text": "abc abc"}], "validation": [{"text": "ab"}, {"text": "cz"}]}
    )
    data = LanguageModelDataModule(str(unseen), batch_size=1, eval_batch_size=1, token_cache=True, cache_dir=str(cache))
    with pytest.raises(ValueError, match=r"split 'validation': 2 character\(s\) never seen.*'\\n', 'z'.*unk_token"):
        data.setup("fit")
    no_words = write_jsonl(
        tmp_path / "no_words", {"train": [{"text": "ab"}], "validation": [{"text": ""}, {"text": None}]}
    )
    data = LanguageModelDataModule(str(no_words), token_cache=True, cache_dir=str(cache), tokenizer="word")
    with pytest.raises(ValueError, match="split 'validation' of dataset .* has no text"):
        data.setup("fit")
    assert not list(cache.glob(".*.tmp"))  # nothing half-written is left


def test_prepare_data_tokenizes_the_splits_once_for_every_process(tmp_path, tiny_corpus):
    LanguageModelDataModule(str(tiny_corpus)).prepare_data()  # in memory: nothing to prepare
    cache = tmp_path / "cache"
    LanguageModelDataModule(str(tiny_corpus), token_cache=True, cache_dir=str(cache)).prepare_data()
    assert len(list(cache.glob("*.tokens.npy"))) == 3
    files = {path: path.stat().st_mtime_ns for path in cache.iterdir()}
    rank = LanguageModelDataModule(str(tiny_corpus), token_cache=True, cache_dir=str(cache))
    rank.setup("fit")
    rank.setup("test")
    assert {path: path.stat().st_mtime_ns for path in cache.iterdir()} == files
