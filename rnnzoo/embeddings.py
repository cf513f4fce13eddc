"""Pretrained word vectors (GloVe, word2vec, fastText text files) for a task's vocabulary.

* :func:`load_vectors` reads a ``.txt`` / ``.vec`` file (gzipped when it ends in ``.gz``),
  with or without the word2vec / fastText header line ``"N D"``, into :class:`WordVectors`.
  It reads the file in chunks of whole lines and parses each chunk's numbers in one numpy
  call, so the 400,000-word GloVe 6B file loads in a few seconds.
* :func:`align` builds a ``[len(words), D]`` embedding matrix for a vocabulary (exact match,
  then lower-cased, else random) and reports a :class:`Coverage`.
* :func:`vocabulary_words` lists an rnnzoo tokenizer's words by id, and
  :func:`extend_vocabulary` adds the file's words to a word-level tokenizer, so that words
  never seen in training still get their pretrained vector instead of ``<unk>``.

Typical use::

    vectors = load_vectors("glove.6B.50d.txt")
    tokenizer = extend_vocabulary(tokenizer, vectors, max_new=50_000)
    weights, coverage = align(vectors, vocabulary_words(tokenizer))
    print(coverage)
    embedding = torch.nn.Embedding.from_pretrained(weights, freeze=False, padding_idx=0)
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, normalizers, pre_tokenizers
from torch import Tensor

from rnnzoo.tokenizers import SPECIAL_TOKENS, CharTokenizer, PairTokenizer, TextTokenizer, Tokenizer, WordVocabulary

_CHUNK_BYTES = 1 << 23
"""Bytes read at a time (rounded to whole lines); tests make it small to cross chunk boundaries."""

_SPACE, _NEWLINE = 32, 10
_TRAILING = (_SPACE, 13, 9)  # space, carriage return, tab at the end of a line are dropped
_WHITESPACE = re.compile(r"\s")
_EXTEND_BLOCK = 50_000  # file words prepared at a time by extend_vocabulary
_FORMATS = "a word then D numbers per line, as GloVe, word2vec and fastText text files"


class WordVectors:
    """Words and their vectors, as :func:`load_vectors` reads them from a file.

    Lookups are exact (case counts); when a word appears twice, the first one wins.

    Args:
        words: the words, in file order.
        vectors: ``[len(words), D]`` numbers, stored as a float32 tensor.
        source: where they come from (a file path), named in messages.
    """

    def __init__(self, words: Sequence[str], vectors: Tensor | np.ndarray, source: str | None = None) -> None:
        self.words = list(words)
        self.vectors = torch.as_tensor(vectors, dtype=torch.float32)
        if self.vectors.dim() != 2 or self.vectors.shape[0] != len(self.words):
            raise ValueError(
                f"WordVectors needs a [len(words), D] matrix: got {len(self.words)} words and a matrix of shape "
                f"{tuple(self.vectors.shape)}"
            )
        self.source = source
        # Filled from the end so that the first of two equal words wins.
        self.ids = dict(zip(reversed(self.words), range(len(self.words) - 1, -1, -1), strict=True))
        self._lowercase_ids: dict[str, int] | None = None

    @property
    def dim(self) -> int:
        """Width D of the vectors."""
        return self.vectors.shape[1]

    def __len__(self) -> int:
        """Number of words."""
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        """Whether ``word`` has a vector (exact match)."""
        return word in self.ids

    def index(self, word: str) -> int:
        """Row of ``word`` in :attr:`vectors`.

        Raises:
            KeyError: naming the word and the file, when it has no vector.
        """
        try:
            return self.ids[word]
        except KeyError:
            raise KeyError(f"{word!r} has no vector in {self.source or 'these word vectors'}") from None

    def __getitem__(self, word: str) -> Tensor:
        """The ``[D]`` vector of ``word`` (a view into :attr:`vectors`); KeyError when it has none."""
        return self.vectors[self.index(word)]

    def get(self, word: str, default: Tensor | None = None) -> Tensor | None:
        """The vector of ``word``, or ``default`` when it has none."""
        index = self.ids.get(word)
        return default if index is None else self.vectors[index]

    def lowercase_index(self, word: str) -> int | None:
        """Row of the first file word whose lower-cased form is ``word.lower()``, or None."""
        if self._lowercase_ids is None:
            self._lowercase_ids = {}
            for index, known in enumerate(self.words):
                self._lowercase_ids.setdefault(known.lower(), index)
        return self._lowercase_ids.get(word.lower())

    def __repr__(self) -> str:
        """Short summary."""
        return f"WordVectors({len(self)} words x {self.dim}, source={self.source!r})"


# ----------------------------------------------------------------------------- reading a file


def load_vectors(
    path: str | Path,
    max_words: int | None = None,
    *,
    header: bool | None = None,
    unicode_errors: str = "strict",
) -> WordVectors:
    """Read a GloVe / word2vec / fastText text file of word vectors.

    Each line holds a word and its D numbers, separated by single spaces. A first line
    ``"N D"`` (word2vec, fastText ``.vec``) is detected and checked against the file. Words
    that contain spaces (as in GloVe 840B) are read by taking the last D fields of a line as
    its vector. Files ending in ``.gz`` (or starting with gzip's magic bytes) are decompressed.

    Args:
        path: the ``.txt`` / ``.vec`` file, optionally ``.gz``.
        max_words: read only the first this many words (files list the frequent ones first).
        header: True or False when the file has or has not a ``"N D"`` first line; None detects it.
        unicode_errors: how to decode words that are not valid UTF-8 (``"strict"`` raises
            naming the line; ``"replace"`` puts U+FFFD instead).

    Returns:
        The words and a float32 ``[N, D]`` tensor.

    Raises:
        ValueError: one clear message naming the file (and the line, where there is one) for an
            empty file, a file that is not a vectors file, lines of different widths, numbers that
            do not parse or are not finite, words that are not valid UTF-8, or a header that does
            not match the file.
    """
    path = Path(path)
    if max_words is not None and max_words < 1:
        raise ValueError(f"max_words must be at least 1 or None, got {max_words}")
    reader = _Reader(path, header, unicode_errors)
    words: list[str] = []
    blocks: list[np.ndarray] = []
    with _open(path) as file:
        for chunk in _chunks(file, _CHUNK_BYTES):
            remaining = None if max_words is None else max_words - len(words)
            chunk_words, block = reader.parse(chunk, remaining)
            words += chunk_words
            if len(block):
                blocks.append(block)
            if max_words is not None and len(words) >= max_words:
                break
    reader.check_complete(len(words), max_words)
    matrix = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    return WordVectors(words, torch.from_numpy(matrix), source=str(path))


def _open(path: Path) -> BinaryIO:
    """The file opened for binary reading, through gzip when it is gzipped; an error for archives."""
    with open(path, "rb") as probe:
        magic = probe.read(4)
    if magic.startswith(b"PK\x03\x04"):
        raise ValueError(f"{path} is a zip archive, not a vectors file: unzip it and pass the .txt file inside")
    if path.suffix == ".gz" or magic.startswith(b"\x1f\x8b"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _chunks(file: BinaryIO, size: int) -> Iterator[bytes]:
    """The file's bytes, ``size`` at a time, cut after the last newline (the last chunk may lack one)."""
    rest = b""
    while True:
        block = file.read(size)
        if not block:
            if rest:
                yield rest
            return
        block = rest + block if rest else block
        cut = block.rfind(b"\n") + 1
        if cut == 0:  # a line longer than a chunk: keep reading
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut] if rest else block


@dataclass
class _Lines:
    """The non-blank lines of one chunk: byte offsets, trailing whitespace dropped, and 1-based line numbers."""

    starts: np.ndarray
    ends: np.ndarray
    numbers: np.ndarray
    spaces: np.ndarray
    """Offsets of every space in the chunk."""
    newlines: int
    """Newlines in the chunk (blank lines included)."""

    def __len__(self) -> int:
        return len(self.starts)

    def space_counts(self) -> np.ndarray:
        """Spaces in each line: its number of fields minus one."""
        return self.last_space_index() - np.searchsorted(self.spaces, self.starts)

    def last_space_index(self) -> np.ndarray:
        """Per line, the index in :attr:`spaces` just past the line's last space."""
        return np.searchsorted(self.spaces, self.ends)

    def select(self, keep: np.ndarray | slice) -> _Lines:
        """Only some of the lines."""
        return _Lines(self.starts[keep], self.ends[keep], self.numbers[keep], self.spaces, self.newlines)


def _split_lines(chunk: bytes, first_number: int) -> _Lines:
    """Find the lines of ``chunk`` with numpy (no Python loop over lines); blank lines are dropped."""
    buffer = np.frombuffer(chunk, dtype=np.uint8)
    newlines = np.flatnonzero(buffer == _NEWLINE)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(buffer)]))
    numbers = np.arange(first_number, first_number + len(starts))
    for _ in range(len(chunk)):  # strip trailing whitespace, one byte a round, from the lines that have some
        trailing = ends > starts
        trailing[trailing] = np.isin(buffer[ends[trailing] - 1], _TRAILING)
        if not trailing.any():
            break
        ends[trailing] -= 1
    keep = ends > starts
    return _Lines(starts[keep], ends[keep], numbers[keep], np.flatnonzero(buffer == _SPACE), len(newlines))


def _preview(chunk: bytes, start: int, end: int, width: int = 80) -> str:
    """The start of a line, for messages."""
    text = chunk[start:end].decode("utf-8", errors="replace")
    return repr(text if len(text) <= width else text[:width] + "...")


def _is_number(field: bytes) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


class _Reader:
    """The state of one file's reading: its width, header and line count, checked chunk after chunk."""

    def __init__(self, path: Path, header: bool | None, unicode_errors: str) -> None:
        self.path = path
        self.header = header
        self.unicode_errors = unicode_errors
        self.dim: int | None = None
        self.dim_from = "most lines have"
        self.expected: int | None = None  # the header's word count
        self.next_line = 1

    def parse(self, chunk: bytes, remaining: int | None) -> tuple[list[str], np.ndarray]:
        """The words and ``[n, D]`` vectors of one chunk of whole lines (at most ``remaining`` of them)."""
        if self.dim is None and b"\x00" in chunk[:4096]:
            hint = " (a word2vec binary file: convert it to text first)" if self.path.suffix == ".bin" else ""
            raise ValueError(f"{self.path} is a binary file, not a text vectors file ({_FORMATS}){hint}")
        lines = _split_lines(chunk, self.next_line)
        self.next_line += lines.newlines
        if self.dim is None:
            lines = self._start(chunk, lines)
        if remaining is not None:
            lines = lines.select(slice(0, remaining))
        if not len(lines):
            return [], np.zeros((0, self.dim or 0), dtype=np.float32)
        word_ends = self._word_ends(chunk, lines)
        words = self._decode_words(chunk, lines, word_ends)
        return words, self._parse_numbers(chunk, lines, word_ends)

    def _start(self, chunk: bytes, lines: _Lines) -> _Lines:
        """Read the header, if any, and the width from the first chunk; return the lines after the header."""
        if not len(lines):
            return lines
        counts = lines.space_counts()
        first = chunk[lines.starts[0] : lines.ends[0]].split(b" ")
        is_header = self.header is not False and lines.numbers[0] == 1 and len(first) == 2
        is_header = is_header and all(field.isdigit() for field in first)
        if is_header and self.header is None and len(lines) > 1:  # or the word "3" with the 1-d vector [5]
            is_header = int(np.bincount(counts[1:]).argmax()) != 1
        if self.header and not is_header:
            raise ValueError(
                f"{self.path}: header=True but line 1 is not a word2vec header 'N D': "
                f"{_preview(chunk, lines.starts[0], lines.ends[0])}"
            )
        if is_header:
            self.expected, self.dim = int(first[0]), int(first[1])
            self.dim_from = "the header says"
            lines, counts = lines.select(slice(1, None)), counts[1:]
        elif len(lines):
            self.dim = int(np.bincount(counts).argmax())
        if self.dim == 0:
            raise ValueError(f"{self.path} is not a vectors file ({_FORMATS}): its lines hold a single field")
        if len(lines):
            self._check_first_line(chunk, lines)
        return lines

    def _check_first_line(self, chunk: bytes, lines: _Lines) -> None:
        """A clear 'not a vectors file' error when the first line's fields after its word are not numbers.

        (A first line of numbers, but too few or too many, is left to the width check.)
        """
        assert self.dim is not None
        values = chunk[lines.starts[0] : lines.ends[0]].split(b" ")[1:][-self.dim :]
        if values and all(_is_number(value) for value in values):
            return
        raise ValueError(
            f"{self.path} does not look like a vectors file ({_FORMATS}): line {lines.numbers[0]} reads "
            f"{_preview(chunk, lines.starts[0], lines.ends[0])}"
        )

    def _width_error(self, chunk: bytes, lines: _Lines, index: int, count: int) -> ValueError:
        return ValueError(
            f"{self.path}: line {lines.numbers[index]} has {count} values after its word where "
            f"{self.dim_from} {self.dim}; all lines must have the same width: "
            f"{_preview(chunk, lines.starts[index], lines.ends[index])}"
        )

    def _word_ends(self, chunk: bytes, lines: _Lines) -> np.ndarray:
        """Where each line's word ends: before its D-th last space, so a word may hold spaces."""
        assert self.dim is not None
        dim = self.dim
        last = lines.last_space_index()
        counts = lines.space_counts()
        short = np.flatnonzero(counts < dim)
        if len(short):
            raise self._width_error(chunk, lines, short[0], int(counts[short[0]]))
        word_ends = lines.spaces[last - dim]
        for index in np.flatnonzero(counts > dim):  # a word with spaces, unless it ends in a number
            word = chunk[lines.starts[index] : word_ends[index]]
            if _is_number(word.rsplit(b" ", 1)[1]):
                raise self._width_error(chunk, lines, index, int(counts[index]))
        return word_ends

    def _decode_words(self, chunk: bytes, lines: _Lines, word_ends: np.ndarray) -> list[str]:
        """The words as text, decoded together; a decoding error names its line."""
        pieces = [chunk[start:end] for start, end in zip(lines.starts.tolist(), word_ends.tolist(), strict=True)]
        joined = b"\n".join(pieces)
        try:
            return joined.decode("utf-8", errors=self.unicode_errors).split("\n")
        except UnicodeDecodeError as error:
            index = joined.count(b"\n", 0, error.start)
            raise ValueError(
                f"{self.path}: the word on line {lines.numbers[index]} is not valid UTF-8 ({error.reason}): "
                f"{pieces[index]!r}; pass unicode_errors='replace' to read it anyway"
            ) from None

    def _parse_numbers(self, chunk: bytes, lines: _Lines, word_ends: np.ndarray) -> np.ndarray:
        """The ``[n, D]`` numbers of the lines, parsed in one numpy call once the words are blanked out."""
        numbers = np.frombuffer(chunk, dtype=np.uint8).copy()
        numbers[: lines.starts[0]] = _SPACE  # a header line, if any
        numbers[lines.ends[-1] :] = _SPACE
        lengths = word_ends - lines.starts
        offsets = np.repeat(lines.starts - (np.cumsum(lengths) - lengths), lengths)
        numbers[offsets + np.arange(len(offsets))] = _SPACE
        try:
            matrix = np.loadtxt(io.BytesIO(numbers.tobytes()), dtype=np.float32, comments=None, ndmin=2)
        except ValueError:
            matrix = None
        if matrix is None or matrix.shape != (len(lines), self.dim):
            raise self._number_error(chunk, lines, word_ends)
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            index = int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"{self.path}: line {lines.numbers[index]} holds a value that is not a finite float32 "
                f"(nan, inf or out of range): {_preview(chunk, lines.starts[index], lines.ends[index])}"
            )
        return matrix

    def _number_error(self, chunk: bytes, lines: _Lines, word_ends: np.ndarray) -> ValueError:
        """The error naming the first line whose numbers do not parse (the slow path, only on bad files)."""
        for index in range(len(lines)):
            fields = chunk[word_ends[index] + 1 : lines.ends[index]].split()
            bad = [field for field in fields if not _is_number(field)]
            if bad or len(fields) != self.dim:
                what = f"{bad[0].decode('utf-8', 'replace')!r} is not a number" if bad else f"{len(fields)} values"
                return ValueError(
                    f"{self.path}: line {lines.numbers[index]} does not hold {self.dim} numbers after its word "
                    f"({what}): {_preview(chunk, lines.starts[index], lines.ends[index])}"
                )
        return ValueError(f"{self.path}: the numbers of lines {lines.numbers[0]}-{lines.numbers[-1]} do not parse")

    def check_complete(self, count: int, max_words: int | None) -> None:
        """Errors for a file with no vectors, or fewer or more words than its header says."""
        if count == 0:
            what = "holds a header but no vectors" if self.expected is not None else "is empty"
            raise ValueError(f"{self.path} {what}: no word vectors to read")
        if self.expected is None:
            return
        wanted = self.expected if max_words is None else min(max_words, self.expected)
        if count < wanted or (max_words is None and count > self.expected):
            raise ValueError(
                f"{self.path}: the header says {self.expected} words but the file holds {count}"
                f"{' (cut short?)' if count < wanted else ''}"
            )


# ----------------------------------------------------------------------------- a vocabulary's vectors


@dataclass(frozen=True)
class Coverage:
    """How much of a vocabulary :func:`align` found in the vectors.

    Attributes:
        exact: words found as they are.
        lowercased: words found only lower-cased (or matching a file word once both are lower-cased).
        missing: words with no vector, randomly initialised.
        special: special tokens (``<pad>``, ``<unk>``, ...), never looked up and not counted above.
        missing_examples: the first few missing words, in vocabulary order.
        source: the vectors file.
    """

    exact: int
    lowercased: int
    missing: int
    special: int = 0
    missing_examples: tuple[str, ...] = ()
    source: str | None = None

    @property
    def covered(self) -> int:
        """Words that got a pretrained vector."""
        return self.exact + self.lowercased

    @property
    def total(self) -> int:
        """Words looked up (special tokens excluded)."""
        return self.covered + self.missing

    @property
    def fraction(self) -> float:
        """Share of the looked-up words that got a pretrained vector (0 for an empty vocabulary)."""
        return self.covered / self.total if self.total else 0.0

    def __str__(self) -> str:
        """One readable line, e.g. for a log."""
        examples = ", ".join(repr(word) for word in self.missing_examples)
        missing = f"{self.missing:,} missing" + (f" (e.g. {examples})" if examples else "")
        return (
            f"{self.source or 'word vectors'}: {self.covered:,} of {self.total:,} words covered "
            f"({self.fraction:.1%}): {self.exact:,} exact, {self.lowercased:,} lower-cased, {missing}; "
            f"{self.special} special tokens"
        )


def align(
    vectors: WordVectors,
    words: Sequence[str],
    lowercase_fallback: bool = True,
    init_std: float = 0.1,
    zero_words: Collection[str] = ("<pad>",),
    special_words: Collection[str] = SPECIAL_TOKENS,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Coverage]:
    """An embedding matrix for a vocabulary: row i holds the vector of ``words[i]``.

    Each word takes its exact vector, else (with ``lowercase_fallback``) the vector of its
    lower-cased form, else of the first file word equal to it once both are lower-cased;
    words with none are drawn from ``N(0, init_std^2)``. Special tokens are never looked up:
    those in ``zero_words`` (padding) get zeros, the others random values.

    Args:
        vectors: from :func:`load_vectors`.
        words: the vocabulary by id (see :func:`vocabulary_words`).
        lowercase_fallback: try the lower-cased forms of words with no exact match.
        init_std: standard deviation of the random rows.
        zero_words: special tokens whose rows are zeros.
        special_words: tokens that are never looked up (rows random unless in ``zero_words``).
        generator: random generator of the random rows (the global one when None).

    Returns:
        A float32 ``[len(words), D]`` matrix and its :class:`Coverage`.

    Raises:
        ValueError: when no word of the vocabulary has a vector (naming the file and a few words).
    """
    specials = set(zero_words) | set(special_words)
    rows, sources, lowered, missing = _match(vectors, words, specials, lowercase_fallback)
    coverage = Coverage(
        exact=len(rows) - lowered,
        lowercased=lowered,
        missing=len(missing),
        special=sum(word in specials for word in words),
        missing_examples=tuple(words[row] for row in missing[:8]),
        source=vectors.source,
    )
    if not coverage.covered:
        looked_up = [word for word in words if word not in specials]
        shown = ", ".join(repr(word) for word in looked_up[:8]) or "none besides special tokens"
        raise ValueError(
            f"no word of the vocabulary ({len(looked_up)} words: {shown}) has a vector in "
            f"{vectors.source or 'these word vectors'}; is it the right file (language, casing)?"
        )
    matrix = torch.randn(len(words), vectors.dim, generator=generator) * init_std
    matrix[torch.tensor(rows, dtype=torch.long)] = vectors.vectors[torch.tensor(sources, dtype=torch.long)]
    zeros = [row for row, word in enumerate(words) if word in zero_words]
    matrix[torch.tensor(zeros, dtype=torch.long)] = 0.0
    return matrix, coverage


def _match(
    vectors: WordVectors, words: Sequence[str], specials: Collection[str], lowercase_fallback: bool
) -> tuple[list[int], list[int], int, list[int]]:
    """Rows that found a vector and its file rows (exact matches first), how many matched lower-cased, missing rows."""
    found = [-2 if word in specials else vectors.ids.get(word, -1) for word in words]  # -2: special, -1: not found
    rows = [row for row, index in enumerate(found) if index >= 0]
    sources = [index for index in found if index >= 0]
    missing: list[int] = []
    lowered = 0
    for row, index in enumerate(found):
        if index != -1:
            continue
        index = _lowercase_match(vectors, words[row]) if lowercase_fallback else None
        if index is None:
            missing.append(row)
        else:
            rows.append(row)
            sources.append(index)
            lowered += 1
    return rows, sources, lowered, missing


def _lowercase_match(vectors: WordVectors, word: str) -> int | None:
    """Row of ``word.lower()``, else of the first file word equal to it once lower-cased, or None."""
    index = vectors.ids.get(word.lower())
    return index if index is not None else vectors.lowercase_index(word)


# ----------------------------------------------------------------------------- tokenizers


def vocabulary_words(tokenizer: Tokenizer) -> list[str]:
    """The words (tokens) of an rnnzoo tokenizer, by id: what :func:`align` takes.

    Args:
        tokenizer: a :class:`~rnnzoo.tokenizers.WordVocabulary`, a word-level
            :class:`~rnnzoo.tokenizers.TextTokenizer` or a :class:`~rnnzoo.tokenizers.CharTokenizer`.

    Raises:
        ValueError: for a BPE tokenizer (its pieces are not words).
        TypeError: for a :class:`~rnnzoo.tokenizers.PairTokenizer` (pass its ``source`` or
            ``target``) or another kind.
    """
    if isinstance(tokenizer, WordVocabulary):
        return list(tokenizer.words)
    if isinstance(tokenizer, CharTokenizer):
        return list(tokenizer.vocabulary)
    if isinstance(tokenizer, TextTokenizer):
        _require_word_level(tokenizer)
        by_id = {index: token for token, index in tokenizer.tokenizer.get_vocab().items()}
        if sorted(by_id) != list(range(len(by_id))):
            raise ValueError(f"the ids of {tokenizer!r} are not 0..{len(by_id) - 1} without gaps")
        return [by_id[index] for index in range(len(by_id))]
    if isinstance(tokenizer, PairTokenizer):
        raise TypeError("a PairTokenizer holds two vocabularies: pass tokenizer.source or tokenizer.target")
    raise TypeError(f"word vectors need a WordVocabulary, TextTokenizer or CharTokenizer, got {tokenizer!r}")


def _require_word_level(tokenizer: TextTokenizer) -> None:
    if not tokenizer.word_level:
        raise ValueError(
            f"{tokenizer!r} is not word-level: its BPE pieces (such as 'Ġthe') are not the words of a vectors "
            "file; train the tokenizer with TextTokenizer.train_word_level() to use word vectors"
        )


def extend_vocabulary(tokenizer: Tokenizer, vectors: WordVectors, max_new: int | None = None) -> Tokenizer:
    """A tokenizer of the same kind with the vectors' words added after its own.

    Old ids are unchanged; the new words follow in file order (the frequent ones first in
    GloVe and fastText), lower-cased when the tokenizer lowercases (normalized by its own
    normalizer for a :class:`~rnnzoo.tokenizers.TextTokenizer`). Words the tokenizer could
    never produce (with spaces, or split by its pre-tokenizer) are skipped. Words unseen in
    training then map to their pretrained vector instead of ``<unk>`` (as flair and stanza do).

    Args:
        tokenizer: a :class:`~rnnzoo.tokenizers.WordVocabulary` or a word-level
            :class:`~rnnzoo.tokenizers.TextTokenizer`.
        vectors: from :func:`load_vectors`.
        max_new: add at most this many words (None: all).

    Raises:
        ValueError: for a BPE or character tokenizer, or a negative ``max_new``.
        TypeError: for another kind of tokenizer.
    """
    if max_new is not None and max_new < 0:
        raise ValueError(f"max_new must be at least 0 or None, got {max_new}")
    if isinstance(tokenizer, WordVocabulary):
        lowercase = tokenizer.lowercase

        def tokens(block: list[str]) -> list[str | None]:
            return [None if _WHITESPACE.search(word) else word.lower() if lowercase else word for word in block]

        new = _new_words(vectors.words, tokenizer.ids, tokens, max_new)
        return WordVocabulary([*tokenizer.words, *new], lowercase=tokenizer.lowercase)
    if isinstance(tokenizer, TextTokenizer):
        _require_word_level(tokenizer)
        return _extend_text_tokenizer(tokenizer, vectors, max_new)
    if isinstance(tokenizer, CharTokenizer):
        raise ValueError("a CharTokenizer's tokens are characters: it cannot take the words of a vectors file")
    raise TypeError(f"extend_vocabulary needs a WordVocabulary or a word-level TextTokenizer, got {tokenizer!r}")


def _extend_text_tokenizer(tokenizer: TextTokenizer, vectors: WordVectors, max_new: int | None) -> TextTokenizer:
    """The same HF tokenizer (normalizer, pre-tokenizer, special tokens) with a longer WordLevel vocabulary."""
    hf = tokenizer.tokenizer
    vocab = hf.get_vocab()

    def tokens(block: list[str]) -> list[str | None]:
        return _whole_pieces(hf.pre_tokenizer, _normalize_all(hf.normalizer, block))

    new = _new_words(vectors.words, vocab, tokens, max_new)
    vocab.update(zip(new, range(len(vocab), len(vocab) + len(new)), strict=True))
    extended = HFTokenizer.from_str(hf.to_str())  # a copy: normalizer, pre-tokenizer, special tokens, decoder
    extended.model = models.WordLevel(vocab, unk_token=hf.model.unk_token)
    return TextTokenizer(extended)


def _normalize_all(normalizer: normalizers.Normalizer | None, words: list[str]) -> list[str]:
    """``words`` through the tokenizer's normalizer: all in one call when it keeps the newlines that join them."""
    if normalizer is None:
        return words
    joined = normalizer.normalize_str("\n".join(words)).split("\n")
    return joined if len(joined) == len(words) else [normalizer.normalize_str(word) for word in words]


def _whole_pieces(pre_tokenizer: pre_tokenizers.PreTokenizer | None, words: list[str]) -> list[str | None]:
    """Each word, or None when the pre-tokenizer would not keep it as one piece (it could never be a token)."""
    if pre_tokenizer is None:
        return [None if _WHITESPACE.search(word) else word for word in words]
    if not isinstance(pre_tokenizer, (pre_tokenizers.Whitespace, pre_tokenizers.WhitespaceSplit)):
        return [
            word if [piece for piece, _ in pre_tokenizer.pre_tokenize_str(word)] == [word] else None for word in words
        ]
    # These split on whitespace without looking across it: one call for all the words, joined by newlines.
    spans = {span for _, span in pre_tokenizer.pre_tokenize_str("\n".join(words))}
    kept: list[str | None] = []
    start = 0
    for word in words:
        kept.append(word if (start, start + len(word)) in spans else None)
        start += len(word) + 1
    return kept


def _new_words(
    words: Sequence[str], known: Collection[str], tokens: Callable[[list[str]], list[str | None]], max_new: int | None
) -> list[str]:
    """The distinct tokens of ``words`` not in ``known``, in file order, at most ``max_new``.

    ``tokens`` maps a block of file words to the token each would be, or None when it could not be one.
    """
    new: dict[str, None] = {}
    for begin in range(0, len(words), _EXTEND_BLOCK):
        for token in tokens(list(words[begin : begin + _EXTEND_BLOCK])):
            if max_new is not None and len(new) >= max_new:
                return list(new)
            if token and token not in known and token not in new:
                new[token] = None
    return list(new)
