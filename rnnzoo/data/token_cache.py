"""Token files: a split tokenized once, block by block, into a flat ``.npy`` file that is then read in place.

A language model reads each split as one long stream of token ids. Held as a Python string and an
int64 tensor, a stream costs about nine bytes of memory per character; a token file costs two bytes
per token (``uint16``, for vocabularies of up to 65,536 entries) or four (``uint32``), on disk, and
the operating system pages in the parts that are read. The file is a plain NumPy ``.npy`` array
(``numpy.load(path, mmap_mode="r")`` reads it anywhere).

A file is written under a temporary name beside its final one and renamed when complete, so a file
under its own name is always whole, and processes that build the same file at once (DDP ranks)
never read each other's half-written one. Its name is a digest of everything its tokens depend on
(:func:`cache_key`), so changed data or a changed tokenizer make a new file instead of reusing a
stale one. A file whose header or size is not what was expected (truncated, written by another
version) is reported and rebuilt, never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import datasets
import numpy as np
from datasets import Dataset
from datasets.utils.tqdm import tqdm

from rnnzoo.tokenizers import Tokenizer

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Part of every :func:`cache_key`: raise it when what a token file holds, or how, changes."""

BLOCK_CHARACTERS = 1 << 22
"""About how many characters of text one block of rows holds (a few MB of strings and ids at a time)."""

Block = TypeVar("Block")


def default_cache_dir() -> Path:
    """``rnnzoo_tokens`` beside the HuggingFace datasets cache (``HF_DATASETS_CACHE``, ``~/.cache/huggingface``)."""
    return Path(datasets.config.HF_DATASETS_CACHE) / "rnnzoo_tokens"


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned type that holds every id of a ``vocab_size``-entry vocabulary: uint16 or uint32.

    Raises:
        ValueError: for a vocabulary of more than 2**32 entries.
    """
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    if vocab_size <= 1 << 32:
        return np.dtype(np.uint32)
    raise ValueError(f"a vocabulary of {vocab_size} entries does not fit 32-bit token ids")


def cache_key(**parts: Any) -> str:
    """A sha256 digest of ``parts`` (JSON-able values) and :data:`FORMAT_VERSION`: what a cached file depends on."""
    text = json.dumps({"format": FORMAT_VERSION, **parts}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tokenizer_digest(tokenizer: Tokenizer) -> str:
    """A sha256 digest of the tokenizer's content (its ``to_dict()`` JSON), equal for equal tokenizers."""
    text = json.dumps(tokenizer.to_dict(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file through ``write`` under a temporary name in its folder, then rename it to ``path``.

    The temporary name is unique, so processes writing the same file at once each rename a whole
    one; on any error it is removed and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as file:
        temporary = Path(file.name)
        try:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the rename must not reach the disk before the data
        except BaseException:
            file.close()
            temporary.unlink(missing_ok=True)
            raise
    os.replace(temporary, path)


def write_token_file(path: Path, blocks: Iterable[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """Write the tokens of ``blocks``, one after another, as one ``.npy`` array of ``dtype`` (atomically).

    The blocks are written as they come, so the stream is never whole in memory: the header is
    written first for an empty array and rewritten with the count at the end (NumPy pads the header
    so that the count can grow in place).

    Returns:
        The file's tokens, memory-mapped (see :func:`read_token_file`).

    Raises:
        ValueError: when ``blocks`` hold no token (an empty file cannot be mapped).
    """
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (0,)}

    def write(file: IO[bytes]) -> None:
        np.lib.format.write_array_header_1_0(file, header)
        data_start, count = file.tell(), 0
        for block in blocks:
            np.asarray(block).astype(dtype, copy=False).tofile(file)
            count += len(block)
        if not count:
            raise ValueError(f"no tokens to write to {path}")
        file.seek(0)
        np.lib.format.write_array_header_1_0(file, {**header, "shape": (count,)})
        if file.tell() != data_start:  # cannot happen: the NumPy versions required pad headers for growth
            raise RuntimeError(f"the header of {path} changed length when its count was written")

    write_atomically(path, write)
    tokens = read_token_file(path, dtype)
    if tokens is None:
        raise RuntimeError(f"{path} was written but does not read back: is another process writing it?")
    return tokens


def read_token_file(path: Path, dtype: np.dtype) -> np.ndarray | None:
    """The tokens of the ``.npy`` file ``path``, memory-mapped, or None when it is absent or not a whole one.

    The mapping is copy-on-write (``mode="c"``): it can back a writable tensor (``torch.from_numpy``
    warns about read-only arrays), and nothing written to it reaches the file. A file whose header
    is not a 1-D array of ``dtype`` or whose size does not match its header (a truncated or
    damaged one) is logged and reported as absent, so that it is rebuilt.
    """
    if not path.is_file():
        return None
    problem = None
    try:
        with path.open("rb") as file:
            version = np.lib.format.read_magic(file)
            shape, fortran_order, found = np.lib.format.read_array_header_1_0(file)
            data_start = file.tell()
    except (OSError, ValueError) as error:
        problem = f"unreadable header ({error})"
    else:
        expected = None if len(shape) != 1 else data_start + shape[0] * dtype.itemsize
        if version != (1, 0) or fortran_order or found != dtype or len(shape) != 1 or not shape[0]:
            problem = f"header {found}{list(shape)}, expected {dtype}[n] with n > 0"
        elif path.stat().st_size != expected:
            problem = f"{path.stat().st_size} bytes, its header says {expected}"
    if problem is not None:
        log.warning("token file %s is damaged or was written otherwise (%s): rebuilding it", path, problem)
        return None
    return np.memmap(path, dtype=dtype, mode="c", offset=data_start, shape=shape)


def block_bounds(rows: Dataset, column: str, characters: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of consecutive blocks of rows that each hold about ``characters`` characters of ``column``.

    The block size comes from the mean length of the first 1,000 rows: rows are read a block at a
    time, and blocks of a fixed count of rows would be tiny for short lines and huge for long documents.

    Args:
        rows: one split.
        column: the text column.
        characters: the block size wanted; None: :data:`BLOCK_CHARACTERS`.
    """
    sample = rows[:1000][column]
    mean = max(sum(len(value) for value in sample if value is not None) / max(len(sample), 1), 1.0)
    size = max(1, int((characters or BLOCK_CHARACTERS) // mean))
    return [(start, min(start + size, len(rows))) for start in range(0, len(rows), size)]


def row_blocks(rows: Dataset, column: str) -> Iterator[list[Any]]:
    """The values of ``column``, a block of rows at a time (see :func:`block_bounds`)."""
    rows = rows.select_columns([column])
    for start, end in block_bounds(rows, column):
        yield rows[start:end][column]


_worker: tuple[Dataset, str, Callable[[list[Any]], Any]] | None = None
"""What a process of :func:`encoded_blocks`'s pool encodes: the rows, their column, the encoding function."""


def _start_worker(rows: Dataset, column: str, encode: Callable[[list[Any]], Any]) -> None:
    global _worker
    _worker = (rows, column, encode)


def _encode_block(bounds: tuple[int, int]) -> Any:
    assert _worker is not None, "_start_worker runs first in every process of the pool"
    rows, column, encode = _worker
    return encode(rows[bounds[0] : bounds[1]][column])


def encoded_blocks(
    rows: Dataset,
    column: str,
    encode: Callable[[list[Any]], Block],
    num_proc: int = 1,
    description: str = "tokenizing",
) -> Iterator[Block]:
    """``encode`` of consecutive blocks of the values of ``column`` (see :func:`block_bounds`), in order.

    With ``num_proc > 1`` the blocks are encoded by that many processes, each reading its blocks
    from the dataset itself (an Arrow file, memory-mapped: only the results travel back). A
    progress bar counts the rows (``datasets.disable_progress_bars()`` hides it).

    Args:
        rows: one split.
        column: the column to encode.
        encode: a function of one block's values (picklable, for ``num_proc > 1``).
        num_proc: processes that encode.
        description: the progress bar's label.
    """
    rows = rows.select_columns([column])
    bounds = block_bounds(rows, column)
    with tqdm(total=len(rows), unit=" rows", desc=description) as progress:
        if num_proc <= 1:
            for start, end in bounds:
                yield encode(rows[start:end][column])
                progress.update(end - start)
            return
        context = multiprocessing.get_context()
        with context.Pool(num_proc, initializer=_start_worker, initargs=(rows, column, encode)) as pool:
            for (start, end), block in zip(bounds, pool.imap(_encode_block, bounds), strict=True):
                yield block
                progress.update(end - start)
