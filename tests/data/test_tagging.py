"""Frame tagging data: normalisation from the training split, and long rows cut into carried TBPTT chunks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from conftest import write_jsonl

from rnnzoo import TaggingDataModule
from rnnzoo.batches import TaggingBatch
from rnnzoo.data.base import EncodedRows
from rnnzoo.data.tagging import ChunkedRows
from rnnzoo.frames import MEAN_OPTION, STD_OPTION


def frame_rows(lengths: list[int], seed: int, scale: float = 50.0, offset: float = 10.0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for length in lengths:
        frames = rng.normal(size=(length, 3)) * [scale, 1.0, 0.01] + [offset, -offset, 0.0]
        rows.append({"frames": frames.tolist(), "labels": rng.integers(0, 2, size=length).tolist()})
    return rows


@pytest.fixture
def frames_folder(tmp_path):
    splits = {
        "train": frame_rows([30, 50, 0, 21], 0),
        "validation": frame_rows([12], 1),
        "test": frame_rows([9, 40], 2),
    }
    return write_jsonl(tmp_path / "frames", splits)


def module(folder, **options) -> TaggingDataModule:
    return TaggingDataModule(str(folder), frames_column="frames", tags_column="labels", **options)


def test_frames_are_normalised_with_the_training_statistics(frames_folder):
    data = module(frames_folder)
    data.setup("fit")
    data.setup("test")
    splits = data.splits
    raw = {split: [np.array(row["frames"], np.float32) for row in splits[split] if row["frames"]] for split in splits}
    flat = np.concatenate(raw["train"]).astype(np.float64)  # the statistics of the float32 frames the model reads
    mean, std = flat.mean(0), flat.std(0)
    np.testing.assert_allclose(data.frame_statistics, [mean, std], rtol=1e-12)
    for split in ("train", "validation", "test"):
        for encoded, frames in zip(data.encoded[split].inputs, raw[split], strict=True):
            expected = (torch.tensor(frames) - torch.tensor(mean).float()) / torch.tensor(std).float()
            torch.testing.assert_close(encoded, expected, rtol=0, atol=0)
    train = torch.cat(data.encoded["train"].inputs)
    torch.testing.assert_close(train.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(train.std(0, correction=0), torch.ones(3), atol=1e-5, rtol=0)
    options = data.data_state().options
    assert (options[MEAN_OPTION], options[STD_OPTION]) == data.frame_statistics


def test_normalize_false_keeps_raw_frames_and_stores_no_statistics(frames_folder):
    data = module(frames_folder, normalize=False)
    data.setup("fit")
    first = data.splits["train"][0]["frames"]
    torch.testing.assert_close(data.encoded["train"].inputs[0], torch.tensor(first, dtype=torch.float))
    assert data.frame_statistics is None and MEAN_OPTION not in data.data_state().options


def encoded_rows(lengths: list[int]) -> EncodedRows:
    spans = list(itertools.pairwise(np.cumsum([0, *lengths]).tolist()))
    inputs = [torch.arange(a, b, dtype=torch.float).view(-1, 1) for a, b in spans]
    tags = [torch.arange(a, b) % 2 for a, b in spans]
    return EncodedRows({"inputs": inputs, "chars": [None] * len(lengths), "tags": tags}, lengths)


def read_lanes(batches: list[TaggingBatch]) -> list[list[list[float]]]:
    """Each lane's rows, rebuilt from the chunks: a row starts wherever ``continues`` is False."""
    lanes: list[list[list[float]]] = [[] for _ in range(len(batches[0].lengths))]
    for batch in batches:
        for lane, (row, length, continues) in enumerate(zip(batch.inputs, batch.lengths, batch.continues, strict=True)):
            if not continues:
                lanes[lane].append([])
            lanes[lane][-1] += row[:length, 0].tolist()
    return lanes


@pytest.mark.parametrize("shuffle", [False, True])
def test_chunks_read_every_row_once_in_order_in_parallel_lanes(shuffle):
    lengths = [10, 7, 3, 25, 4, 1]
    rows = encoded_rows(lengths)
    chunks = ChunkedRows(rows, batch_size=3, steps=4, shuffle=shuffle)
    batches = list(chunks)
    assert len(batches) == len(chunks)
    assert all(isinstance(batch, TaggingBatch) and batch.inputs.shape[1] <= 4 for batch in batches)
    sizes = [len(batch.lengths) for batch in batches]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 3  # lanes that end leave from the back
    rebuilt = sorted(row for lane in read_lanes(batches) for row in lane)
    assert rebuilt == sorted(row.view(-1).tolist() for row in rows.inputs)
    for batch in batches:  # tags travel with their frames, padding is -100
        mask = batch.tags != -100
        assert torch.equal(batch.tags[mask], batch.inputs[..., 0][mask].long() % 2)


def test_the_number_of_batches_is_the_same_every_epoch():
    chunks = ChunkedRows(encoded_rows([5, 9, 2, 2, 8, 3, 7]), batch_size=3, steps=2, shuffle=True)
    counts = {len(list(chunks)) for _ in range(5)}
    assert counts == {len(chunks)}


def test_short_rows_make_whole_batches_of_new_rows():
    batches = list(ChunkedRows(encoded_rows([3] * 8), batch_size=4, steps=5, shuffle=False))
    assert [len(batch.lengths) for batch in batches] == [4, 4]
    assert all(not bool(batch.continues.any()) for batch in batches)


def test_the_training_loader_chunks_and_evaluation_reads_whole_rows(frames_folder):
    data = module(frames_folder, tbptt_steps=8, batch_size=2)
    data.setup("fit")
    train = list(data.train_dataloader())
    assert all(batch.continues is not None and batch.inputs.shape[1] <= 8 for batch in train)
    assert sum(int(batch.lengths.sum()) for batch in train) == 30 + 50 + 21
    (val,) = list(data.val_dataloader())
    assert val.continues is None and val.inputs.shape[1] == 12


def test_tbptt_steps_must_be_positive(frames_folder):
    with pytest.raises(ValueError, match="tbptt_steps must be a positive number"):
        module(frames_folder, tbptt_steps=0)
