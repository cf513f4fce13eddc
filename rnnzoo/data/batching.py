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
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from rnnzoo.batches import pad_sequences  # noqa: F401 - re-exported: the old home of pad_sequences


def unrepeated(sampler: Sampler[int] | Sequence[int]) -> Sampler[int] | Sequence[int]:
    """The sampler, except that evaluation under DDP reads every example exactly once.

    For evaluation Lightning injects an unshuffled ``DistributedSampler``, which pads the ranks'
    shares to equal sizes by repeating examples: metrics would count those twice and differ from a
    one-process run. Each rank reads every ``world_size``-th example instead, however uneven.
    """
    if isinstance(sampler, DistributedSampler) and not sampler.shuffle:
        if not isinstance(sampler, UnrepeatedDistributedSampler):
            return UnrepeatedDistributedSampler(
                sampler.dataset, num_replicas=sampler.num_replicas, rank=sampler.rank, shuffle=False
            )
    return sampler


class ResumableBatchSampler(BatchSampler):
    """A ``BatchSampler`` that can restart an epoch at any batch, exactly (Lightning's ``state_dict`` protocol).

    Its random draws come from its own ``generator`` (share it with the index sampler), so an
    epoch's order depends on that generator's state alone. :meth:`state_dict` holds the
    generator's state at the start of the epoch being read and how many batches of it were
    yielded; after :meth:`load_state_dict`, the next iteration draws that epoch again and skips
    what was yielded (or, when the epoch had ended, goes on with the next one).

    Args:
        sampler: yields dataset indices.
        batch_size: indices per batch.
        drop_last: drop the last, smaller batch.
        generator: the random generator of this sampler (and of ``sampler``); None uses torch's
            global one, which a resumed run cannot replay.
    """

    def __init__(
        self,
        sampler: Sampler[int] | Sequence[int],
        batch_size: int,
        drop_last: bool,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(unrepeated(sampler), batch_size, drop_last)
        self.generator = generator
        self._epoch_start: Tensor | None = None
        self._position = 0
        self._resume: dict[str, Any] | None = None

    def epoch_batches(self) -> Iterator[list[int]]:
        """Hook: one epoch's batches, every random draw from :attr:`generator`."""
        return super().__iter__()

    def __iter__(self) -> Iterator[list[int]]:
        """This epoch's batches, from where :meth:`load_state_dict` said (the start, otherwise)."""
        skip, state, self._resume = 0, self._resume, None
        if state is not None:
            if self.generator is not None and state.get("generator") is not None:
                self.generator.set_state(state["generator"])
            skip = state["position"]
        while True:
            self._epoch_start = None if self.generator is None else self.generator.get_state()
            self._position = 0
            for batch in self.epoch_batches():
                self._position += 1
                if self._position > skip:
                    yield batch
            if self._position > skip or not skip:
                return
            skip = 0  # the saved epoch had ended: the next one starts now

    def state_dict(self) -> dict[str, Any]:
        """``{"generator": state at the start of this epoch, "position": batches of it yielded}``."""
        current = None if self.generator is None else self.generator.get_state()
        return {"generator": current if self._epoch_start is None else self._epoch_start, "position": self._position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make the next iteration continue the epoch ``state`` describes (see :meth:`state_dict`)."""
        self._resume = dict(state)


class BucketBatchSampler(ResumableBatchSampler):
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
        generator: the random generator of the shuffling (see :class:`ResumableBatchSampler`).
    """

    def __init__(
        self,
        sampler: Sampler[int] | Sequence[int],
        batch_size: int,
        drop_last: bool,
        lengths: Sequence[int] | None = None,
        pool_batches: int = 100,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(sampler, batch_size, drop_last, generator)
        if lengths is None:
            raise ValueError("BucketBatchSampler needs the lengths of the sequences")
        if pool_batches <= 0:
            raise ValueError(f"pool_batches must be a positive integer, got {pool_batches}")
        self.lengths = torch.as_tensor(lengths)
        self.pool_batches = pool_batches
        self.shuffle = shuffle

    def epoch_batches(self) -> Iterator[list[int]]:
        """Yield batches: pools of indices from the sampler, sorted by length, cut, shuffled."""
        indices = list(self.sampler)
        pool_size = self.batch_size * self.pool_batches
        for start in range(0, len(indices), pool_size):
            pool = torch.tensor(indices[start : start + pool_size])
            pool = pool[torch.sort(self.lengths[pool], stable=True).indices]
            batches = [pool[i : i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size)]
            if self.drop_last and len(batches[-1]) < self.batch_size:
                batches.pop()
            order = range(len(batches))
            if self.shuffle:
                order = torch.randperm(len(batches), generator=self.generator).tolist()
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


class ResumableLoader(DataLoader):
    """A ``DataLoader`` that Lightning can checkpoint mid-epoch and restart exactly where it was.

    It follows Lightning's stateful-loader protocol (``state_dict`` / ``load_state_dict``, saved
    in every checkpoint): its state is the batches it delivered this epoch and the state of what
    decides their order, its batch sampler (a :class:`ResumableBatchSampler`) or its iterable
    dataset (such as :class:`~rnnzoo.data.language_model.ContiguousChunks`). Counting here, not
    in the sampler, keeps the position right when worker processes read ahead.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._delivered = 0
        self._resume_at: int | None = None

    @property
    def order_source(self) -> Any:
        """What decides the order of the batches and can restart it: the batch sampler or the dataset."""
        for source in (self.batch_sampler, self.dataset):
            if callable(getattr(source, "state_dict", None)) and callable(getattr(source, "load_state_dict", None)):
                return source
        raise TypeError(
            "a ResumableLoader needs a batch sampler or an iterable dataset with state_dict and load_state_dict, "
            f"got {type(self.batch_sampler).__name__} over {type(self.dataset).__name__}"
        )

    def __iter__(self) -> Iterator[Any]:
        """The batches of this epoch (the rest of the saved one after :meth:`load_state_dict`)."""
        start, self._resume_at = self._resume_at or 0, None
        self._delivered = start if start < len(self) else 0  # a saved epoch that had ended: a new one
        for batch in super().__iter__():
            self._delivered += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """``{"delivered": batches delivered this epoch, "source": the order source's state}``."""
        return {"delivered": self._delivered, "source": self.order_source.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the epoch ``state`` describes at the next iteration."""
        self.order_source.load_state_dict({**state["source"], "position": state["delivered"]})
        self._resume_at = state["delivered"]


def seeded_generator() -> torch.Generator:
    """A generator of its own for a loader, seeded from torch's seed (``seed_everything`` makes it fixed)."""
    return torch.Generator().manual_seed(torch.initial_seed())


def length_batched_loader(
    data: Dataset,
    lengths: Sequence[int],
    batch_size: int,
    train: bool,
    collate_fn: Callable[[list[Any]], Any],
    bucketing: bool = True,
    pool_batches: int = 100,
    num_workers: int = 0,
) -> ResumableLoader:
    """The DataLoader every sequence data module uses: shuffled for training, bucketed by length, resumable.

    Its order comes from a generator of its own (see :func:`seeded_generator`), saved with the
    position in checkpoints, so a resumed run reads the rest of its epoch exactly.

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
    generator = seeded_generator()
    sampler = RandomSampler(data, generator=generator) if train else SequentialSampler(data)
    if bucketing:
        batches: BatchSampler = BucketBatchSampler(
            sampler, batch_size, False, lengths, pool_batches=pool_batches, shuffle=train, generator=generator
        )
    else:
        batches = ResumableBatchSampler(sampler, batch_size, False, generator)
    return ResumableLoader(
        data, batch_sampler=batches, collate_fn=collate_fn, num_workers=num_workers, generator=generator
    )
