"""``streaming: true``: splits read as HF ``IterableDataset``s, batches made on the fly, resumable exactly.

Oracles: the in-memory path of the same module (one lane of a language model; the evaluation
batches of the row modules, which both cut in stream order and sort by length within a pool),
the rows themselves (a pass reads every row once; DDP ranks partition them), and a loader
restarted from a saved state (it reads what the uninterrupted one read next).
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import TINY_TEXT, write_jsonl

from rnnzoo import ClassificationDataModule, LanguageModelDataModule, TaggingDataModule, TranslationDataModule
from rnnzoo.data.streaming import LIGHTNING_PREFETCH, StreamLoader

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away"]


def text_corpus(folder: Path, rows: int = 300, seed: int = 0) -> Path:
    """Train/validation/test text files of random sentences, some of them empty."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12))) for _ in range(rows)]
    for split, part in (("train", lines), ("validation", lines[:40]), ("test", lines[40:80])):
        (folder / f"{split}.txt").write_text("\n".join(part), encoding="utf-8")
    return folder


def reviews(folder: Path, rows: int = 200) -> Path:
    """Labelled texts (string labels) of random lengths, one empty."""
    rng = random.Random(1)

    def split(count: int) -> list[dict]:
        labels = [rng.choice(["pos", "neg"]) for _ in range(count)]
        texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 15))) + f" {label}" for label in labels]
        return [{"text": text, "label": label} for text, label in zip(texts, labels, strict=True)]

    train = split(rows)
    train[5]["text"] = ""
    return write_jsonl(folder, {"train": train, "validation": split(60), "test": split(60)})


def same_batches(one: list, other: list) -> bool:
    return len(one) == len(other) and all(
        all(torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b for a, b in zip(x, y, strict=True))
        for x, y in zip(one, other, strict=True)
    )


def language_data(folder: Path, **options) -> LanguageModelDataModule:
    data = LanguageModelDataModule(dataset=str(folder), **options)
    data.setup("fit")
    return data


@pytest.mark.parametrize("options", [{}, {"tokenizer": "word", "eos_token": "<eos>"}, {"tokenizer": "bpe"}])
def test_one_lane_streams_the_in_memory_chunks(tmp_path, options):
    folder = text_corpus(tmp_path / "corpus")
    memory = language_data(folder, batch_size=1, eval_batch_size=1, tbptt_steps=16, **options)
    stream = language_data(folder, batch_size=1, eval_batch_size=1, tbptt_steps=16, streaming=True, **options)
    assert stream.tokenizer.to_dict() == memory.tokenizer.to_dict()
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        expected, streamed = list(getattr(memory, loader)()), list(getattr(stream, loader)())
        assert len(expected) > 10
        assert same_batches(expected, streamed)


def test_lanes_are_continuous_texts_of_runs_of_whole_rows(tmp_path):
    lines = TINY_TEXT.split("\n") * 4
    folder = tmp_path / "play"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        (folder / f"{split}.txt").write_text("\n".join(lines), encoding="utf-8")
    data = language_data(folder, batch_size=3, tbptt_steps=8, streaming=True)
    loader = data.train_dataloader()
    loader.dataset.run_length = 40  # runs of a few rows, so that every lane reads several
    chunks = list(loader)
    breaks = [
        k for k, (a, b) in enumerate(itertools.pairwise(chunks)) if not torch.equal(a.targets[:, -1], b.inputs[:, 0])
    ]
    assert len(breaks) <= 1  # lane b goes on where it stopped (but for one new layout near the end, if any)
    chunks = chunks[: breaks[0] + 1] if breaks else chunks
    decode = data.tokenizer.decode
    lanes = [
        decode(torch.cat([chunks[0].inputs[lane, :1], *(chunk.targets[lane] for chunk in chunks)])) for lane in range(3)
    ]
    assert all(len(lane) > 200 for lane in lanes)
    text = "\n".join(lines)
    for lane in lanes:
        runs = lane.split("\n")
        # Every lane reads rows in the file's order, in runs of consecutive rows (each run a passage of the play).
        assert all(row in lines for row in runs[:-1])
        passage = "\n".join(runs[:3])
        assert passage in text


@pytest.mark.parametrize("options", [{}, {"tokenizer": "word", "eos_token": "<eos>", "random_tbptt_length": True}])
def test_a_restarted_language_model_stream_reads_on_exactly(tmp_path, options):
    folder = text_corpus(tmp_path / "corpus")
    data = language_data(folder, batch_size=4, tbptt_steps=12, streaming=True, **options)
    passes = data.train_dataloader()
    whole, next_pass = list(passes), list(passes)
    for trained in (1, 9, len(whole) - 2):
        loader = data.train_dataloader()
        batches = iter(loader)
        for _ in range(trained + LIGHTNING_PREFETCH):  # Lightning reads one batch ahead of the model
            next(batches)
        state = loader.state_dict()
        again = language_data(folder, batch_size=4, tbptt_steps=12, streaming=True, **options).train_dataloader()
        again.load_state_dict(state)
        assert same_batches(list(again), whole[trained:])
        assert same_batches(list(again), next_pass)  # and the next pass is the uninterrupted run's next one


def classification(folder: Path, **options) -> ClassificationDataModule:
    options = {"batch_size": 4, "eval_batch_size": 8, "pool_batches": 3, **options}
    data = ClassificationDataModule(dataset=str(folder), **options)
    data.setup("fit")
    return data


def rows_of(batches: list) -> list[tuple]:
    """Every (ids, target) of the batches, unpadded, sorted: the multiset of examples read."""
    rows = []
    for batch in batches:
        for ids, length, target in zip(batch.tokens, batch.lengths, batch.labels, strict=True):
            rows.append((tuple(ids[:length].tolist()), int(target)))
    return sorted(rows)


def test_streamed_classification_reads_every_row_once_bucketed_and_shuffled(tmp_path):
    folder = reviews(tmp_path / "reviews")
    memory, stream = classification(folder), classification(folder, streaming=True, shuffle_buffer=50)
    assert stream.labels == memory.labels and stream.tokenizer.to_dict() == memory.tokenizer.to_dict()
    loader = stream.train_dataloader()
    first, second = list(loader), list(loader)
    assert rows_of(first) == rows_of(second) == rows_of(list(memory.train_dataloader()))  # the empty text dropped
    assert same_batches(first, list(classification(folder, streaming=True, shuffle_buffer=50).train_dataloader()))
    assert not same_batches(first, second)  # another order every pass
    for start in range(0, len(first), 3):  # each pool of 3 batches was sorted by length, then cut
        pool = sorted(first[start : start + 3], key=lambda batch: batch.lengths.min().item())
        for shorter, longer in itertools.pairwise(pool):
            assert shorter.lengths.max() <= longer.lengths.min()


@pytest.mark.parametrize("loader", ["val_dataloader", "test_dataloader"])
def test_streamed_evaluation_batches_equal_the_in_memory_ones(tmp_path, loader):
    folder = reviews(tmp_path / "reviews")
    memory, stream = classification(folder), classification(folder, streaming=True)
    assert same_batches(list(getattr(stream, loader)()), list(getattr(memory, loader)()))


def test_streamed_predictions_keep_the_split_order(tmp_path):
    folder = reviews(tmp_path / "reviews")
    memory, stream = classification(folder), classification(folder, streaming=True)
    assert same_batches(list(stream.predict_dataloader()), list(memory.predict_dataloader()))


def test_a_restarted_row_stream_reads_on_exactly(tmp_path):
    folder = reviews(tmp_path / "reviews")
    data = classification(folder, streaming=True, shuffle_buffer=30)
    whole = list(data.train_dataloader())
    for trained in (0, 2, 3, 4, 7, len(whole) - 1):  # inside a pool, at its start and end, in another pool
        loader = data.train_dataloader()
        batches = iter(loader)
        for _ in range(trained + LIGHTNING_PREFETCH):
            next(batches, None)
        state = loader.state_dict()
        again = classification(folder, streaming=True, shuffle_buffer=30).train_dataloader()
        again.load_state_dict(state)
        assert same_batches(list(again), whole[trained:])


def test_a_state_saved_at_the_end_of_a_pass_starts_the_next(tmp_path):
    folder = reviews(tmp_path / "reviews")
    data = classification(folder, streaming=True)
    loader = data.train_dataloader()
    list(loader)
    state = loader.state_dict()
    assert state["ended"]
    again = classification(folder, streaming=True).train_dataloader()
    again.load_state_dict(state)
    assert rows_of(list(again)) == rows_of(list(data.train_dataloader()))


def test_ddp_ranks_read_disjoint_parts_of_the_stream(tmp_path):
    folder = reviews(tmp_path / "reviews")
    parts = []
    for rank in range(2):
        data = classification(folder, streaming=True)
        data.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        parts.append(rows_of(list(data.train_dataloader())))
    whole = rows_of(list(classification(folder, streaming=True).train_dataloader()))
    assert abs(len(parts[0]) - len(parts[1])) <= 1
    assert sorted(parts[0] + parts[1]) == whole


def test_streamed_tagging_and_translation_evaluate_as_in_memory(tmp_path):
    rng = random.Random(2)
    sentences = [[rng.choice(WORDS) for _ in range(rng.randint(1, 9))] for _ in range(120)]
    rows = [{"tokens": s, "tags": ["N" if w in ("cat", "dog", "mat") else "X" for w in s]} for s in sentences]
    tags = write_jsonl(tmp_path / "tags", {"train": rows[:80], "validation": rows[80:100], "test": rows[100:]})
    pairs = [{"de": " ".join(s), "en": " ".join(reversed(s))} for s in sentences]
    translation = write_jsonl(
        tmp_path / "pairs", {"train": pairs[:80], "validation": pairs[80:100], "test": pairs[100:]}
    )
    for module, folder in ((TaggingDataModule, tags), (TranslationDataModule, translation)):
        memory = module(dataset=str(folder), batch_size=4, eval_batch_size=4, pool_batches=2)
        stream = module(dataset=str(folder), batch_size=4, eval_batch_size=4, pool_batches=2, streaming=True)
        for data in (memory, stream):
            data.setup("fit")
        assert same_batches(list(stream.val_dataloader()), list(memory.val_dataloader()))
        assert sum(len(batch[0]) for batch in stream.train_dataloader()) == 80


def test_a_stream_loader_is_stateful_for_lightning(tmp_path):
    from lightning.fabric.utilities.types import _Stateful

    data = classification(reviews(tmp_path / "reviews"), streaming=True)
    assert isinstance(data.train_dataloader(), StreamLoader) and isinstance(data.train_dataloader(), _Stateful)


# Options that need the whole split, and other bad input: one clear error each.


@pytest.mark.parametrize(
    ("module", "options", "message"),
    [
        (ClassificationDataModule, {"val_fraction": 0.1}, "val_fraction"),
        (ClassificationDataModule, {"num_workers": 2}, "num_workers"),
        (TaggingDataModule, {"tbptt_steps": 8}, "tbptt_steps"),
        (LanguageModelDataModule, {"token_cache": True}, "token_cache"),
    ],
)
def test_options_that_need_the_whole_split_are_refused(module, options, message):
    with pytest.raises(ValueError, match=f"streaming: true cannot work with {message}"):
        module(dataset="somewhere", streaming=True, **options)


def test_an_empty_shuffle_buffer_is_refused_when_the_module_is_made():
    with pytest.raises(ValueError, match="shuffle_buffer must be a positive number of rows, got 0"):
        ClassificationDataModule(dataset="somewhere", streaming=True, shuffle_buffer=0)


def test_a_missing_validation_split_is_not_carved_from_a_stream(tmp_path):
    folder = write_jsonl(
        tmp_path / "train_only", {"train": [{"text": "good", "label": 1}, {"text": "bad", "label": 0}]}
    )
    data = ClassificationDataModule(dataset=str(folder), streaming=True)
    with pytest.raises(KeyError, match="streaming: true cannot carve one out of 'train'"):
        data.setup("fit")


def test_a_stream_without_the_text_column_names_the_columns_it_has(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("review,label\ngood,1\nbad,0\n")
    data = ClassificationDataModule(data_files={"train": str(path), "validation": str(path)}, streaming=True)
    with pytest.raises(KeyError, match=r"has no column .*text.*; its columns are .*review.*label"):
        data.setup("fit")


def test_an_empty_stream_is_an_error(tmp_path):
    (tmp_path / "train.txt").write_text("")
    (tmp_path / "validation.txt").write_text("some text")
    data = LanguageModelDataModule(dataset=str(tmp_path), streaming=True)
    with pytest.raises(ValueError, match="split 'train' of dataset .* is empty"):
        data.setup("fit")


def test_a_file_that_does_not_read_is_one_clear_error(tmp_path):
    good = '{"text": "fine", "label": 1}\n'
    (tmp_path / "train.jsonl").write_text(good * 3 + "{broken\n")
    (tmp_path / "validation.jsonl").write_text(good)
    data = ClassificationDataModule(dataset=str(tmp_path), streaming=True)
    with pytest.raises(ValueError, match="split 'train' of dataset .* does not read: JSON parse error"):
        data.setup("fit")


def test_a_split_shorter_than_a_run_per_lane_is_still_read_whole(tmp_path):
    lines = ["to be or not", "to be", "that is the question"]
    for split in ("train", "validation", "test"):
        (tmp_path / f"{split}.txt").write_text("\n".join(lines), encoding="utf-8")
    data = language_data(tmp_path, batch_size=3, eval_batch_size=3, tbptt_steps=4, streaming=True)
    chunks = list(data.val_dataloader())  # all three rows fit in one lane's first run
    read = sum(chunk.targets.numel() for chunk in chunks) + 3  # each lane's first input is no target
    assert len(chunks) >= 3 and len("\n".join(lines)) - read < 3
    text = "".join(
        data.tokenizer.decode(torch.cat([chunks[0].inputs[lane, :1], *(c.targets[lane] for c in chunks)]))
        for lane in range(3)
    )
    assert text in "\n".join(lines)


def test_a_ddp_checkpoint_resumes_only_with_as_many_processes(tmp_path):
    data = classification(reviews(tmp_path / "reviews"), streaming=True)
    loader = data.train_dataloader()
    state = loader.state_dict()
    with pytest.raises(ValueError, match="stream positions of 2 processes, this run has 1"):
        loader.load_state_dict({"ranks": [state, state]})
    loader.load_state_dict({"ranks": [state]})  # one process's checkpoint, one process
