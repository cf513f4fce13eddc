"""Resumable batching: a sampler, a stream and a loader restart an epoch exactly where their state says."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils.data import RandomSampler, TensorDataset

from rnnzoo.data import BucketBatchSampler, ContiguousChunks
from rnnzoo.data.batching import ResumableBatchSampler, ResumableLoader, length_batched_loader

LENGTHS = [(7 * i) % 13 + 1 for i in range(50)]


def bucket_sampler(seed: int) -> BucketBatchSampler:
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(range(len(LENGTHS)), generator=generator)
    return BucketBatchSampler(sampler, 4, False, LENGTHS, pool_batches=3, generator=generator)


def plain_sampler(seed: int) -> ResumableBatchSampler:
    generator = torch.Generator().manual_seed(seed)
    return ResumableBatchSampler(RandomSampler(range(50), generator=generator), 4, False, generator)


@pytest.mark.parametrize("make", [bucket_sampler, plain_sampler], ids=["bucketed", "plain"])
@pytest.mark.parametrize("taken", [0, 1, 5, 12], ids=lambda taken: f"{taken}_batches")
def test_a_sampler_resumes_the_epoch_at_its_position(make, taken):
    original = make(0)
    first_epoch = list(original)
    epoch = iter(original)
    head = list(itertools.islice(epoch, taken))  # the second epoch, stopped after `taken` batches
    state = original.state_dict()
    rest, third_epoch = list(epoch), list(original)
    resumed = make(99)  # another seed: only the state decides
    resumed.load_state_dict(state)
    assert state["position"] == (taken or len(first_epoch))  # not started yet: still the first epoch, ended
    assert list(resumed) == rest and list(resumed) == third_epoch
    assert head + rest != first_epoch  # epochs differ: the generator moves on


def test_a_sampler_saved_at_the_end_of_an_epoch_resumes_with_the_next_one():
    original = bucket_sampler(0)
    list(original)
    state = original.state_dict()
    resumed = bucket_sampler(5)
    resumed.load_state_dict(state)
    assert list(resumed) == list(original)


def test_contiguous_chunks_resume_at_the_next_chunk():
    chunks = ContiguousChunks(torch.arange(200), batch_size=2, steps=7)
    stream = iter(chunks)
    for _ in range(4):
        next(stream)
    state = chunks.state_dict()
    assert state == {"pass": 0, "position": 4}
    resumed = ContiguousChunks(torch.arange(200), batch_size=2, steps=7)
    resumed.load_state_dict(state)
    expected = [chunk.inputs for chunk in stream]
    assert [chunk.inputs.tolist() for chunk in resumed] == [inputs.tolist() for inputs in expected]
    resumed.load_state_dict({"position": len(chunks)})  # the pass had ended: the next one is whole
    assert len(list(resumed)) == len(chunks)


def first_values(rows: list) -> list[int]:
    return [row[0].item() for row in rows]


def loader(seed: int, workers: int = 0) -> ResumableLoader:
    torch.manual_seed(seed)  # the loader's own generator is seeded from torch's seed
    data = TensorDataset(torch.arange(50))
    return length_batched_loader(data, LENGTHS, 4, True, first_values, pool_batches=3, num_workers=workers)


@pytest.mark.parametrize("workers", [0, 2], ids=["in_process", "two_workers"])
def test_the_loader_counts_delivered_batches_even_when_workers_read_ahead(workers):
    original = loader(0, workers)
    epoch = iter(original)
    head = list(itertools.islice(epoch, 6))
    state = original.state_dict()
    assert state["delivered"] == 6
    rest = list(epoch)
    resumed = loader(1)
    resumed.load_state_dict(state)
    assert list(resumed) == rest
    assert len(head) + len(rest) == len(original)


def test_the_loader_leaves_the_global_random_state_alone():
    """Dropout draws from the global generator: an epoch of batches must not move it (a resume could not replay it)."""
    data = loader(0)
    before = torch.get_rng_state()
    list(data)
    assert torch.equal(torch.get_rng_state(), before)


def test_a_loader_without_a_resumable_order_says_so():
    plain = ResumableLoader(TensorDataset(torch.arange(4)), batch_size=2)
    with pytest.raises(TypeError, match="needs a batch sampler or an iterable dataset with state_dict"):
        plain.state_dict()
