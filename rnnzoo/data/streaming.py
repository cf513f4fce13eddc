"""Reading a split as a stream (``streaming: true``): batches made on the fly, their position saved for resume.

A HuggingFace ``IterableDataset`` is read row by row and never held whole. Two makers of batches:

* :class:`StreamedBatches` (classification, tagging, translation): rows pass through a
  shuffle buffer (training), are encoded a pool at a time by the data module's own ``encode``,
  sorted by length within the pool, cut into batches and shuffled, as the in-memory
  :class:`~rnnzoo.data.batching.BucketBatchSampler` does with a split it holds.
* :class:`StreamedChunks` (language models): runs of documents are dealt out to ``batch_size`` lanes,
  each a continuous text, cut into truncated-BPTT chunks as they fill.

Both follow Lightning's stateful-loader protocol through :class:`StreamLoader`: a checkpoint
holds the stream's position (the ``IterableDataset``'s own ``state_dict``) and whatever was read
but not yet trained on (the shuffle buffer, the lanes), so a resumed run reads the batches the
interrupted one would have read, exactly. Every random draw comes from a generator of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from datasets import Dataset, IterableDataset
from datasets.exceptions import DatasetGenerationError
from torch.utils.data import DataLoader
from torch.utils.data import IterableDataset as TorchIterableDataset

from rnnzoo.batches import TokenChunk

LIGHTNING_PREFETCH = 1
"""Batches Lightning's data fetcher reads ahead of the model from a loader without a length."""


def read_stream(stream: IterableDataset, name: str = "a streamed split") -> Iterator[dict[str, Any]]:
    """The rows of ``stream``, with one clear error for a file that does not read (found only as it is read).

    Raises:
        ValueError: naming the split (``name``) and what went wrong.
    """
    try:
        yield from stream
    except (pa.ArrowException, DatasetGenerationError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{name} does not read: {error}. Check that the files are what their extension (or "
            "builder) says, whole and well formed; without streaming, the whole file is checked before training"
        ) from error


def stream_blocks(stream: IterableDataset, column: str, size: int = 1000) -> Iterator[list[Any]]:
    """The values of ``column``, ``size`` rows at a time, read from ``stream`` (never held whole)."""
    block: list[Any] = []
    for row in read_stream(stream.select_columns([column])):
        block.append(row[column])
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


class StreamedBatches(TorchIterableDataset):
    """Length-bucketed batches of a streamed split, encoded a pool at a time, resumable exactly.

    A pass reads the stream once. For training each row goes into a shuffle buffer of
    ``buffer_size`` rows and a random one of them comes out (HF's ``IterableDataset.shuffle``
    does the same, but its buffer is not saved in checkpoints). Every ``batch_size * pool_batches``
    rows are encoded in one call of ``encode`` (the data module's, on a small ``Dataset`` of the
    rows), sorted by length (``bucketing``), cut into batches, and for training the batches are
    shuffled. Evaluation keeps the stream's order within and between pools (sorted by length in a
    pool when bucketing); prediction keeps it entirely (no bucketing).

    Args:
        stream: the split.
        encode: the data module's encoding of a part of the split, returning an
            :class:`~rnnzoo.data.base.EncodedRows` with ``lengths``.
        collate: turns the list of a batch's items into a batch.
        batch_size: items per batch.
        train: shuffle (training) or keep the stream's order.
        bucketing: sort each pool by length before cutting it.
        pool_batches: batches per pool.
        buffer_size: rows in the shuffle buffer (training).
        seed: the seed of the shuffling.
        features: the stream's features, given to each pool's ``Dataset`` (None: inferred from its rows).
        empty_error: makes the error raised when a whole pass yields no batch (every row dropped).
        name: the split, for messages.
    """

    def __init__(
        self,
        stream: IterableDataset,
        encode: Callable[[Dataset], Any],
        collate: Callable[[list[Any]], Any],
        batch_size: int,
        train: bool,
        bucketing: bool = True,
        pool_batches: int = 100,
        buffer_size: int = 10_000,
        seed: int = 0,
        features: Any = None,
        empty_error: Callable[[], Exception] | None = None,
        name: str = "a streamed split",
    ) -> None:
        super().__init__()
        if buffer_size <= 0:
            raise ValueError(f"shuffle_buffer must be a positive number of rows, got {buffer_size}")
        self.stream, self.encode, self.collate = stream, encode, collate
        self.batch_size, self.train, self.bucketing = batch_size, train, bucketing
        self.pool_size = batch_size * pool_batches
        self.buffer_size = buffer_size
        self.features, self.empty_error, self.name = features, empty_error, name
        self.generator = torch.Generator().manual_seed(seed)
        self._pass = -1
        self._pools: list[dict[str, Any]] = []  # the snapshots taken at the start of the last two pools
        self._position = 0  # batches yielded in this pass
        self._ended = False
        self._resume: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        """The batches of one pass (the rest of the saved one after :meth:`load_state_dict`)."""
        state, self._resume = self._resume, None
        skip, stream_state = 0, None  # None: the stream's start
        if state is not None and not state["ended"]:
            self._pass, pool = state["pass"], state["pool"]
            self.stream.set_epoch(self._pass)
            stream_state = pool["stream"]
            if stream_state is not None:
                self.stream.load_state_dict(stream_state)
            self.generator.set_state(pool["generator"])
            buffer, skip, self._position = list(pool["buffer"]), state["position"] - pool["start"], pool["start"]
        else:
            self._pass += 1
            self.stream.set_epoch(self._pass)
            buffer, self._position = [], 0
        self._pools, self._ended = [], False
        rows, yielded = read_stream(self.stream, self.name), False
        while True:
            # The stream's own state is live only once its iteration has begun: the first pool starts where it did.
            self._pools = [*self._pools[-1:], self._snapshot(buffer, stream_state)]
            pool = self._next_pool(rows, buffer)
            if not pool:
                break
            for batch in self._batches(pool):
                self._position += 1
                if skip:
                    skip -= 1
                    continue
                yielded = True
                yield batch
            stream_state = self.stream.state_dict()
        self._ended = True
        if not yielded and state is None and self.empty_error is not None:
            raise self.empty_error()

    def _snapshot(self, buffer: list[dict[str, Any]], stream_state: dict[str, Any] | None) -> dict[str, Any]:
        """What restarts the pool about to be read: the stream's position, the buffer, the generator."""
        return {
            "start": self._position,
            "stream": stream_state,
            "buffer": list(buffer),  # rows are read, never changed: a copy of the list is enough
            "generator": self.generator.get_state(),
        }

    def _next_pool(self, rows: Iterator[dict[str, Any]], buffer: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Up to ``pool_size`` rows: the stream's next ones, or for training random draws from the shuffle buffer."""
        pool: list[dict[str, Any]] = []
        while len(pool) < self.pool_size:
            if not self.train:
                row = next(rows, None)
                if row is None:
                    break
                pool.append(row)
                continue
            while len(buffer) < self.buffer_size:
                row = next(rows, None)
                if row is None:
                    break
                buffer.append(row)
            if not buffer:
                break
            index = int(torch.randint(len(buffer), (1,), generator=self.generator))
            buffer[index], buffer[-1] = buffer[-1], buffer[index]
            pool.append(buffer.pop())
        return pool

    def _batches(self, pool: list[dict[str, Any]]) -> Iterator[Any]:
        """The pool encoded, sorted by length (bucketing), cut into batches, shuffled (training)."""
        encoded = self.encode(Dataset.from_list(pool, features=self.features))
        order = list(range(len(encoded)))
        if self.bucketing:
            order.sort(key=lambda index: encoded.lengths[index])
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        if self.train:
            batches = [batches[index] for index in torch.randperm(len(batches), generator=self.generator).tolist()]
        for batch in batches:
            yield self.collate([encoded[index] for index in batch])

    def end_pass(self) -> None:
        """End this pass where it is (under DDP, when another process's part ran out): the next one starts anew."""
        self._ended = True

    def state_dict(self, lag: int = 0) -> dict[str, Any]:
        """The state after the batch ``lag`` batches before the last one yielded (see :class:`StreamLoader`)."""
        position = max(self._position - (0 if self._ended else lag), 0)
        pools = [pool for pool in self._pools if pool["start"] <= position]
        pool = pools[-1] if pools else None
        return {"pass": self._pass, "position": position, "ended": self._ended or pool is None, "pool": pool}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make the next pass continue the one ``state`` describes (a new pass if it had ended)."""
        self._pass = int(state["pass"])
        self._resume = dict(state)


class StreamedChunks(TorchIterableDataset):
    """A stream of documents as ``batch_size`` parallel lanes of tokens, cut into truncated-BPTT chunks.

    The streaming counterpart of :class:`~rnnzoo.data.language_model.ContiguousChunks`, which
    needs the length of the whole stream to cut it into ``batch_size`` equal rows. Here the
    documents (rows) go, in the stream's order, to the lane holding the fewest tokens not yet read,
    in runs: consecutive documents go to one lane until it has gained ``run_length`` tokens, so that
    a corpus of one line per row (tiny_shakespeare's local copy, PTB's sentences) is still read in
    passages of contiguous text. Every lane is a continuous text of whole documents. Once every lane holds more than
    a chunk, a chunk of ``steps`` tokens is cut from all of them; lane ``b`` of batch ``k + 1``
    continues where lane ``b`` of batch ``k`` stopped, as the model, carrying its state, expects.
    When the stream ends, the last chunk is as long as the shortest lane allows, and what the others
    hold beyond it is not read. If that would leave most of what the lanes hold unread (the shortest
    holds less than half of their mean: a short split, with fewer runs than lanes, such as a DDP
    process's part of a small validation split), the tokens left are first laid out again as one
    text cut into ``batch_size`` equal rows, as the in-memory layout is: the lanes then go on with
    other text at that point, once, and at most ``batch_size - 1`` tokens are not read.

    ``encode_rows`` turns a block of rows into one id array per row, each already joined to what
    comes before it in its lane (``separator``: a newline's id for characters, nothing for words,
    whose rows end with ``<eos>`` themselves). With ``random_lengths`` each chunk's length is drawn
    as AWD-LSTM's randomised BPTT draws it (see ``ContiguousChunks``), from a generator seeded by
    ``seed`` and the pass.

    Args:
        stream: the split.
        encode_rows: a block of texts -> one id array per text (an empty text may give none).
        column: the column of texts.
        batch_size: lanes ``B``.
        steps: chunk length (the truncated-BPTT length), the mean one with ``random_lengths``.
        separator: ids put between two documents of one lane.
        random_lengths: draw each chunk's length at random around ``steps``.
        seed: the seed of those draws.
        run_length: tokens a lane gains from consecutive documents before the next run goes to another
            lane; None: ``8 * steps``.
        block_rows: rows read and encoded at a time (at most).
        block_chars: characters read and encoded at a time (at most, but at least one row).
        name: the split, for messages.
    """

    def __init__(
        self,
        stream: IterableDataset,
        encode_rows: Callable[[list[str]], list[np.ndarray]],
        column: str,
        batch_size: int,
        steps: int,
        separator: list[int] | None = None,
        random_lengths: bool = False,
        seed: int = 0,
        run_length: int | None = None,
        block_rows: int = 256,
        block_chars: int = 1 << 20,
        name: str = "a streamed split",
    ) -> None:
        super().__init__()
        if random_lengths and steps < 10:
            raise ValueError(f"random chunk lengths need steps of at least 10 (they vary by about 5), got {steps}")
        self.stream, self.encode_rows, self.column = stream, encode_rows, column
        self.batch_size, self.steps, self.random_lengths, self.seed = batch_size, steps, random_lengths, seed
        self.separator = np.asarray(separator or [], dtype=np.int64)
        self.run_length = 8 * steps if run_length is None else run_length
        self.block_rows, self.block_chars, self.name = block_rows, block_chars, name
        self._pass = -1
        self._states: list[dict[str, Any]] = []  # the state after each of the last chunks yielded
        self._ended = False
        self._resume: dict[str, Any] | None = None

    def _chunk_length(self, generator: torch.Generator) -> int:
        if not self.random_lengths:
            return self.steps
        mean = self.steps / 2 if float(torch.rand((), generator=generator)) >= 0.95 else float(self.steps)
        return max(5, round(float(torch.normal(torch.tensor(mean), 5.0, generator=generator))))

    def __iter__(self) -> Iterator[TokenChunk]:
        """The chunks of one pass (the rest of the saved one after :meth:`load_state_dict`)."""
        state, self._resume = self._resume, None
        generator, stream_state = torch.Generator(), None  # None: the stream's start
        if state is not None and not state["ended"]:
            self._pass, stream_state = state["pass"], state["stream"]
            self.stream.set_epoch(self._pass)
            if stream_state is not None:
                self.stream.load_state_dict(stream_state)
            lanes = [lane.numpy().astype(np.int64) for lane in state["lanes"]]
            started, run, balanced = list(state["started"]), list(state["run"]), state["balanced"]
            generator.set_state(state["generator"])
        else:
            self._pass += 1
            self.stream.set_epoch(self._pass)
            lanes = [np.zeros(0, dtype=np.int64) for _ in range(self.batch_size)]
            started, run = [False] * self.batch_size, [-1, 0]  # the lane of the current run, tokens it gained
            balanced = False
            generator.manual_seed(self.seed + self._pass)
        self._states, self._ended = [], False
        blocks = self._blocks()
        exhausted = False
        while True:
            length = self._chunk_length(generator)
            while not exhausted and min(len(lane) for lane in lanes) <= length:
                block = next(blocks, None)
                if block is None:
                    exhausted = True
                    lengths = [len(lane) for lane in lanes]
                    if not balanced and 2 * min(lengths) * len(lengths) < sum(lengths):
                        rest = np.concatenate(lanes)  # what is left, as one text in lane order, cut into equal rows
                        width = len(rest) // self.batch_size
                        lanes = [rest[lane * width : (lane + 1) * width] for lane in range(self.batch_size)]
                        balanced = True
                    break
                stream_state = self.stream.state_dict()  # live once the stream's iteration has begun
                for ids in block:
                    if run[0] < 0 or run[1] >= self.run_length:
                        run = [min(range(self.batch_size), key=lambda index: len(lanes[index])), 0]
                    lane = run[0]
                    joined = np.concatenate([self.separator, ids]) if started[lane] else ids
                    lanes[lane], started[lane] = np.concatenate([lanes[lane], joined]), True
                    run[1] += len(joined)
            steps = min(length, min(len(lane) for lane in lanes) - 1)
            if steps < 1 or (steps < length and not exhausted):
                break
            chunk = torch.from_numpy(np.stack([lane[: steps + 1] for lane in lanes]))
            lanes = [lane[steps:] for lane in lanes]  # the last target is the next chunk's first input
            state = self._state(stream_state, lanes, started, run, balanced, generator)
            self._states = [*self._states[-LIGHTNING_PREFETCH:], state]
            yield TokenChunk(chunk[:, :-1], chunk[:, 1:])
        self._ended = True

    def _blocks(self) -> Iterator[list[np.ndarray]]:
        """The stream's rows a block at a time, encoded (the stream's position is saved after each block)."""
        block: list[str] = []
        characters = 0
        for row in read_stream(self.stream, self.name):
            block.append(row[self.column])
            characters += len(row[self.column] or "")
            if len(block) == self.block_rows or characters >= self.block_chars:
                yield self.encode_rows(block)
                block, characters = [], 0
        if block:
            yield self.encode_rows(block)

    def _state(
        self,
        stream_state: dict[str, Any] | None,
        lanes: list[np.ndarray],
        started: list[bool],
        run: list[int],
        balanced: bool,
        generator: torch.Generator,
    ) -> dict[str, Any]:
        # The lanes' arrays are never changed in place (only sliced and concatenated): kept as they are.
        return {
            "pass": self._pass,
            "ended": False,
            "stream": stream_state,
            "lanes": list(lanes),
            "started": list(started),
            "run": list(run),
            "balanced": balanced,
            "generator": generator.get_state(),
        }

    def end_pass(self) -> None:
        """End this pass where it is (under DDP, when another process's part ran out): the next one starts anew."""
        self._ended = True

    def state_dict(self, lag: int = 0) -> dict[str, Any]:
        """The state after the chunk ``lag`` chunks before the last one yielded (see :class:`StreamLoader`)."""
        if self._ended or len(self._states) <= lag:
            return {"pass": self._pass, "ended": self._ended or not self._states}
        state = dict(self._states[-1 - lag])
        state["lanes"] = [torch.from_numpy(lane.copy()) for lane in state["lanes"]]  # tensors: weights_only loads
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make the next pass continue the one ``state`` describes (a new pass if it had ended)."""
        self._pass = int(state["pass"])
        self._resume = dict(state)


class StreamLoader(DataLoader):
    """The loader of a streamed split: whole batches from :class:`StreamedBatches` or :class:`StreamedChunks`.

    Lightning saves its :meth:`state_dict` in checkpoints. Lightning's fetcher reads
    :data:`LIGHTNING_PREFETCH` batch ahead of the model from a loader without a length (to know
    which batch is the last), so the state saved is the one after the batch the model trained on,
    not after the one read ahead: a resumed run reads that one again. Streams are read in the
    main process (``num_workers: 0``), which keeps the position exact.

    Under DDP the processes' parts of a stream rarely make the same number of batches, and a
    process that stopped early would leave the others waiting in their gradient all-reduce for
    ever. So before each batch the processes agree (one all-reduce of a flag) that every one of
    them has one: a pass ends for all when the first one's part does, and the others' last
    batches are not read.
    """

    def __init__(self, dataset: StreamedBatches | StreamedChunks) -> None:
        super().__init__(dataset, batch_size=None)

    def __iter__(self) -> Iterator[Any]:
        """The batches of a pass; under DDP, as many on every process."""
        batches = super().__iter__()
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            yield from batches
            return
        device = (
            torch.device("cuda", torch.cuda.current_device()) if torch.distributed.get_backend() == "nccl" else None
        )
        while True:
            batch = next(batches, None)
            every = torch.tensor([batch is not None], dtype=torch.int32, device=device)
            torch.distributed.all_reduce(every, op=torch.distributed.ReduceOp.MIN)
            if not every.item():
                self.dataset.end_pass()  # for all: a resumed run starts the next pass on every process
                return
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The stream's position after the batch the model trained on last (under DDP, every process's)."""
        state = self.dataset.state_dict(lag=LIGHTNING_PREFETCH)
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return state
        # Each process reads its own part: the checkpoint (written by rank 0) must hold every one's position.
        states: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(states, state)
        return {"ranks": states}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue where ``state`` says at the next iteration (under DDP, this process's part of it)."""
        if "ranks" in state:
            ranks = state["ranks"]
            world_size = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
            if len(ranks) != world_size:
                raise ValueError(
                    f"the checkpoint holds the stream positions of {len(ranks)} processes, this run has {world_size}: "
                    "resume a streamed run with as many processes as it had"
                )
            state = ranks[torch.distributed.get_rank() if torch.distributed.is_initialized() else 0]
        self.dataset.load_state_dict(state)
