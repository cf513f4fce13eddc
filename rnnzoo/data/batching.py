"""Batches of variable-length sequences: length bucketing and padding.

Sorting a whole split by length would make batches identical every epoch;
shuffling alone fills batches with padding. :class:`BucketBatchSampler` does both
halves of the usual compromise (torchtext's BucketIterator, fairseq's
batching): draw indices in the order of an ordinary sampler, take them a pool
of ``batch_size * pool_batches`` at a time, sort each pool by length, cut it
into batches and shuffle the batches. Batches are still random across epochs,
and under DDP Lightning injects its ``DistributedSampler`` as the ``sampler``
argument, so every rank buckets its own share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from rnnzoo.batches import pad_sequences  # noqa: F401 - re-exported: the old home of pad_sequences


class BucketBatchSampler(BatchSampler):
    """Batches of indices whose sequences have similar lengths.

    Args:
        sampler: yields dataset indices (``RandomSampler`` for training,
            ``SequentialSampler`` for evaluation; Lightning swaps in a
            ``DistributedSampler`` under DDP).
        batch_size: sequences per batch.
        drop_last: drop the last, smaller batch of each pool.
        lengths: the length of every sequence of the dataset, by index.
        pool_batches: batches per sorted pool; larger pools pad less but mix less.
        shuffle: shuffle the batches of each pool (training); False keeps them in
            length order (evaluation).
    """

    def __init__(
        self,
        sampler: Sampler[int] | Sequence[int],
        batch_size: int,
        drop_last: bool,
        lengths: Sequence[int] | None = None,
        pool_batches: int = 100,
        shuffle: bool = True,
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)
        if lengths is None:
            raise ValueError("BucketBatchSampler needs the lengths of the sequences")
        if pool_batches <= 0:
            raise ValueError(f"pool_batches must be a positive integer, got {pool_batches}")
        self.lengths = torch.as_tensor(lengths)
        self.pool_batches = pool_batches
        self.shuffle = shuffle

    def __iter__(self) -> Iterator[list[int]]:
        """Yield batches: pools of indices from the sampler, sorted by length, cut, shuffled."""
        indices = list(self.sampler)
        pool_size = self.batch_size * self.pool_batches
        for start in range(0, len(indices), pool_size):
            pool = torch.tensor(indices[start : start + pool_size])
            pool = pool[torch.sort(self.lengths[pool], stable=True).indices]
            batches = [pool[i : i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size)]
            if self.drop_last and len(batches[-1]) < self.batch_size:
                batches.pop()
            order = torch.randperm(len(batches)).tolist() if self.shuffle else range(len(batches))
            for index in order:
                yield batches[index]

    def __len__(self) -> int:
        """Number of batches per epoch."""
        pool_size = self.batch_size * self.pool_batches
        total, count = len(self.sampler), 0
        for start in range(0, total, pool_size):
            size = min(pool_size, total - start)
            count += size // self.batch_size if self.drop_last else -(-size // self.batch_size)
        return count


def length_batched_loader(
    data: Dataset,
    lengths: Sequence[int],
    batch_size: int,
    train: bool,
    collate_fn: Callable[[list[Any]], Any],
    bucketing: bool = True,
    pool_batches: int = 100,
    num_workers: int = 0,
) -> DataLoader:
    """The DataLoader every sequence data module uses: shuffled for training, bucketed by length.

    Args:
        data: a map-style dataset.
        lengths: the length of each item (what bucketing sorts by).
        batch_size: items per batch.
        train: shuffle (training) or keep a fixed order (evaluation: length order when bucketing).
        collate_fn: turns a list of items into a padded batch.
        bucketing: group items of similar length (:class:`BucketBatchSampler`).
        pool_batches: batches per sorted pool when bucketing.
        num_workers: DataLoader worker processes.
    """
    sampler = RandomSampler(data) if train else SequentialSampler(data)
    if not bucketing:
        return DataLoader(data, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn, num_workers=num_workers)
    batches = BucketBatchSampler(sampler, batch_size, False, lengths, pool_batches=pool_batches, shuffle=train)
    return DataLoader(data, batch_sampler=batches, collate_fn=collate_fn, num_workers=num_workers)
