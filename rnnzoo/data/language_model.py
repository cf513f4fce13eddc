"""Language-model data: one text stream per split, cut into contiguous TBPTT chunks."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from rnnzoo.batches import TokenChunk
from rnnzoo.data.base import HFDataModule
from rnnzoo.data.batching import ResumableLoader, seeded_generator
from rnnzoo.data.hf import DataFiles, pretrained_tokenizer
from rnnzoo.data.streaming import StreamedChunks, StreamLoader, stream_blocks
from rnnzoo.data.token_cache import (
    cache_key,
    default_cache_dir,
    encoded_blocks,
    read_token_file,
    row_blocks,
    token_dtype,
    tokenizer_digest,
    write_token_file,
)
from rnnzoo.tokenizers import CharTokenizer, TextTokenizer, Tokenizer

TOKENIZERS = ("char", "word", "bpe")

log = logging.getLogger(__name__)


class ContiguousChunks(IterableDataset):
    """A token stream as ``batch_size`` parallel rows, yielded as consecutive chunks.

    Row ``b`` of batch ``k + 1`` continues exactly where row ``b`` of batch ``k``
    stopped, so a model that carries its hidden state from batch to batch reads
    each row as one continuous text (as in pytorch/examples' word_language_model).
    Each item is a whole batch, a :class:`~rnnzoo.batches.TokenChunk` ``(inputs [B, t], targets [B, t])`` with
    ``t = steps`` except perhaps for the last one; targets are inputs shifted by one.

    With ``random_lengths`` the chunk lengths vary as AWD-LSTM's randomised BPTT draws them
    (Merity et al. 2018, section 4.1): ``steps`` with probability 0.95, else ``steps / 2``, then
    ``max(5, N(that, 5))``, so that over the passes every token is a chunk's first, last and
    middle one. The lengths of a pass are then scaled by one common factor (close to 1) so that
    the pass still covers the stream in exactly ``len(self)`` chunks: Lightning's loops and
    schedules need a fixed epoch length. A pass's lengths come from ``seed`` and the pass
    number alone, so a resumed pass cuts the stream exactly as the interrupted one did.

    It follows Lightning's stateful protocol: :meth:`state_dict` is the pass number and the number
    of chunks yielded in this pass, and after :meth:`load_state_dict` the next pass starts at the
    chunk after them (a new pass from the first chunk if the saved pass had ended).

    The stream may be of any integer type: a memory-mapped token file's ``uint16`` or ``uint32``
    (``torch.from_numpy`` of it) is read in place, and each chunk is converted to int64 as it is
    yielded, so the model sees the same tensors as from an int64 stream.

    Args:
        tokens: ``[N]`` the whole stream.
        batch_size: parallel rows ``B``.
        steps: chunk length (the truncated-BPTT length), the mean one with ``random_lengths``.
        random_lengths: draw every pass's chunk lengths at random around ``steps``.
        seed: the seed of those draws (torch's initial seed when None: ``seed_everything`` fixes it).
        rank: under DDP, this process's rank: it reads rows ``rank``, ``rank + world_size``, ...
            of the ``batch_size`` rows, so the processes share out one layout.
        world_size: the number of processes.
    """

    def __init__(
        self,
        tokens: Tensor,
        batch_size: int,
        steps: int,
        random_lengths: bool = False,
        seed: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__()
        row_length = tokens.numel() // batch_size
        if row_length < 2:
            raise ValueError(
                f"a stream of {tokens.numel()} tokens is too short for {batch_size} rows: "
                f"need at least {2 * batch_size}; lower the batch size"
            )
        if random_lengths and steps < 10:
            raise ValueError(f"random chunk lengths need steps of at least 10 (they vary by about 5), got {steps}")
        if batch_size < world_size:
            raise ValueError(f"{batch_size} rows cannot be shared out among {world_size} processes: give each one")
        self.rows = tokens[: batch_size * row_length].view(batch_size, row_length)[rank::world_size]
        self.steps = steps
        self.random_lengths = random_lengths
        self.seed = torch.initial_seed() if seed is None else seed
        self._pass = -1
        self._position = 0
        self._resume_at: int | None = None

    def __len__(self) -> int:
        """Number of chunks (batches)."""
        return -(-(self.rows.shape[1] - 1) // self.steps)

    def boundaries(self, pass_number: int) -> list[int]:
        """Where the chunks of pass ``pass_number`` start, followed by where the last one ends."""
        last = self.rows.shape[1] - 1
        if not self.random_lengths:
            return [*range(0, last, self.steps), last]
        generator = torch.Generator().manual_seed(self.seed + pass_number)
        halved = torch.rand(len(self), generator=generator) >= 0.95
        lengths = torch.normal(torch.where(halved, self.steps / 2, float(self.steps)), 5.0, generator=generator)
        ends = lengths.clamp(min=5).cumsum(0)
        ends = (ends * (last / ends[-1])).round().long().tolist()
        return [0, *ends[:-1], last]

    def __iter__(self) -> Iterator[TokenChunk]:
        """Yield ``(inputs, targets)`` chunks in order (from the saved position after :meth:`load_state_dict`)."""
        first, self._resume_at = self._resume_at, None
        if first is None or first >= len(self) or self._pass < 0:
            first, self._pass = 0, self._pass + 1
        cuts = self.boundaries(self._pass)
        for index in range(first, len(self)):
            start, end = cuts[index], cuts[index + 1]
            self._position = index + 1
            chunk = self.rows[:, start : end + 1].long()  # a copy for a uint16/uint32 stream, a view of an int64 one
            yield TokenChunk(chunk[:, :-1], chunk[:, 1:])

    def state_dict(self) -> dict[str, int]:
        """``{"pass": the pass number, "position": chunks yielded in this pass}``."""
        return {"pass": self._pass, "position": self._position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue pass ``state["pass"]`` after its first ``state["position"]`` chunks."""
        self._pass = int(state.get("pass", self._pass))
        self._resume_at = int(state["position"])


class CharBlock:
    """Encodes a block of rows as :meth:`LanguageModelDataModule.text` joins them (picklable, for worker processes).

    Args:
        tokenizer: the character tokenizer.
        split: the split's name, for messages.
        dtype: the type of the ids returned.
    """

    def __init__(self, tokenizer: CharTokenizer, split: str, dtype: np.dtype) -> None:
        self.tokenizer, self.split, self.dtype = tokenizer, split, dtype

    def __call__(self, values: list[str | None]) -> tuple[np.ndarray, bool, bool]:
        """``(ids, whether the block has rows, whether it has text)``: the ids of its rows joined with newlines.

        The rows are those that are not None, as in :meth:`LanguageModelDataModule.text`.
        """
        rows = [row for row in values if row is not None]
        text = "\n".join(rows)
        return self.text(text), bool(rows), bool(text) and not text.isspace()

    def text(self, text: str) -> np.ndarray:
        """The ids of ``text``.

        Raises:
            ValueError: naming the split and the characters unseen in training, when there is no ``unk_token``.
        """
        try:
            return self.tokenizer.encode_array(text).astype(self.dtype)
        except ValueError as error:
            raise ValueError(f"split {self.split!r}: {error}; or set the data module's unk_token") from None


class RowsBlock:
    """Encodes a block of rows as :meth:`LanguageModelDataModule.encode` does with a word or BPE tokenizer.

    The rows are the non-empty ones, as in :meth:`LanguageModelDataModule.rows_of`; each is followed
    by ``end``. Picklable, for worker processes.

    Args:
        tokenizer: the tokenizer.
        end: the ids that follow every row (``[eos_id]``, or none).
        dtype: the type of the ids returned.
    """

    def __init__(self, tokenizer: Tokenizer, end: list[int], dtype: np.dtype) -> None:
        self.tokenizer, self.end, self.dtype = tokenizer, end, dtype

    def __call__(self, values: list[str | None]) -> np.ndarray:
        """The ids of the block's rows, one after another."""
        rows = self.tokenizer.encode_batch([row for row in values if row])
        return np.fromiter(itertools.chain.from_iterable(row + self.end for row in rows), dtype=self.dtype)


class LanguageModelDataModule(HFDataModule):
    """Character-, word- or BPE-level language-model data from any HuggingFace dataset with a text column.

    ``dataset`` is a hub id or a local folder, loaded by the same
    ``datasets.load_dataset`` call. With ``tokenizer: char`` the rows of each split are
    joined with newlines into one stream (so the hub's one-row-per-split tiny_shakespeare
    and a one-line-per-row local copy give the same text). With ``word`` or ``bpe`` each
    row is encoded on its own and, with ``eos_token``, followed by the end-of-sequence
    token (as Penn Treebank's published perplexities count one ``<eos>`` per sentence).
    The tokenizer is built from the training split on first use, so :attr:`vocab_size` is
    known before ``setup()`` and the CLI can pass it to the model.

    By default each split is read into memory: its text as one string, its tokens as one int64
    tensor, about nine bytes per character in all. With ``token_cache`` a corpus larger than
    memory trains: the tokenizer is trained from the rows a block at a time, and each split is
    tokenized once, a block of rows at a time (in ``num_proc`` processes), into a token file of
    ``uint16`` ids (``uint32`` for vocabularies of more than 65,536 entries) in ``cache_dir``, which
    training then reads memory-mapped (see :mod:`rnnzoo.data.token_cache`); the batches are the
    same, bit for bit. The files are named by a digest of what they depend on (the split's
    ``datasets`` fingerprint, the text column, the tokenizer's content, ``eos_token``), so a later
    run with the same data and tokenizer skips tokenizing, and the trained tokenizer is kept beside
    them, so it skips training it too; changed data makes new files (delete the folder to reclaim
    the space of old ones). The cache is off by default so that small corpora and tests leave no
    files behind, and a data set held in memory anyway gains nothing from it.

    Args:
        dataset: hub id (``karpathy/tiny_shakespeare``) or local folder.
        name: the dataset's configuration name, if it has several.
        revision: a hub revision (branch, tag or commit).
        data_files: local files instead of (or inside) ``dataset``: a path, a glob, a list of them
            (the ``train`` split) or a dict of split -> path(s).
        builder: how to read ``data_files`` (``csv``, ``json``, ``parquet``, ``text``); None infers it
            from the extension.
        text_column: the column holding the text.
        train_split: split the tokenizer and model are trained on.
        val_split: split for validation.
        test_split: split for testing (and for ``predict``).
        batch_size: parallel streams per training batch (per process under DDP).
        eval_batch_size: parallel streams for validation and test (shared out among the
            processes under DDP, so figures do not depend on their number); fewer streams
            means each is longer and read with more context.
        tbptt_steps: characters per training chunk: the model carries its state
            across chunks but back-propagates through at most this many steps.
        unk_token: an extra vocabulary entry standing for characters unseen in
            training; None (the default) makes such characters an error.
        pretrained_tokenizer: reuse the tokenizer of a pretrained model (bundled name,
            artifact folder or hub repo id) instead of building one: for fine-tuning.
        tokenizer: ``char`` (one token per character), ``word`` (one per whitespace-separated
            word, as the text is: no case folding, no normalisation; a word the text writes as
            ``<unk>`` is the tokenizer's unknown token) or ``bpe`` (byte-level BPE).
        eos_token: ``<eos>`` to end every row with the end-of-sequence token (``word`` and
            ``bpe`` only; ``char`` streams separate rows with newlines), None for none.
        min_freq: ``word``: words seen fewer times in training become ``<unk>``.
        max_vocab_size: ``word``: keep the most frequent words only; ``bpe``: the vocabulary
            size (8000 when None).
        random_tbptt_length: AWD-LSTM's randomised BPTT: training chunks vary in length around
            ``tbptt_steps`` (see :class:`ContiguousChunks`); validation and test keep fixed chunks.
        token_cache: tokenize each split once into a memory-mapped token file, and keep the trained
            tokenizer beside them (see above); False reads the splits into memory.
        cache_dir: the folder of the token files (with ``token_cache``); None: ``rnnzoo_tokens``
            beside the HuggingFace datasets cache (``HF_DATASETS_CACHE``).
        num_proc: processes that tokenize a split into its token file (with ``token_cache``); None: one.
        streaming: read every split as a stream, never whole (see
            :class:`~rnnzoo.data.streaming.StreamedChunks`): its rows (documents) are dealt out to the
            ``batch_size`` lanes as they are read, each lane a continuous text, so the chunks differ from
            the in-memory layout's (one stream cut into ``batch_size`` equal rows). The tokenizer is trained
            from one pass over the training stream. An epoch is one pass; resuming mid-pass is exact.
    """

    whole_split_options: ClassVar[dict[str, str]] = {
        **HFDataModule.whole_split_options,
        "token_cache": "writes each split whole into a token file first: use one or the other",
    }

    def __init__(
        self,
        dataset: str | None = None,
        name: str | None = None,
        revision: str | None = None,
        data_files: DataFiles | None = None,
        builder: Literal["csv", "json", "parquet", "text"] | None = None,
        text_column: str = "text",
        train_split: str = "train",
        val_split: str = "validation",
        test_split: str = "test",
        batch_size: int = 64,
        eval_batch_size: int = 16,
        tbptt_steps: int = 128,
        unk_token: str | None = None,
        pretrained_tokenizer: str | None = None,
        tokenizer: str = "char",
        eos_token: str | None = None,
        min_freq: int = 1,
        max_vocab_size: int | None = None,
        random_tbptt_length: bool = False,
        token_cache: bool = False,
        cache_dir: str | None = None,
        num_proc: int | None = None,
        streaming: bool = False,
    ) -> None:
        super().__init__()
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {tokenizer!r}")
        if eos_token is not None and (tokenizer == "char" or eos_token != "<eos>"):
            raise ValueError(
                f"eos_token {eos_token!r}: only '<eos>' is supported, with tokenizer word or bpe "
                "(a char stream separates its rows with newlines)"
            )
        for option, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value <= 0:
                raise ValueError(f"{option} must be a positive integer, got {value}")
        if tbptt_steps <= 0:
            raise ValueError(f"tbptt_steps must be a positive number of characters per chunk, got {tbptt_steps}")
        if random_tbptt_length and tbptt_steps < 10:
            raise ValueError(f"random_tbptt_length needs tbptt_steps of at least 10, got {tbptt_steps}")
        for option, value in (("cache_dir", cache_dir), ("num_proc", num_proc)):
            if value is not None and not token_cache:
                raise ValueError(f"{option} is for the token cache: set token_cache to true as well, or drop {option}")
        if num_proc is not None and num_proc <= 0:
            raise ValueError(f"num_proc must be a positive number of processes, got {num_proc}")
        self.save_hyperparameters()
        self.check_streaming()
        self._texts: dict[str, str] = {}
        self._tokenizer: Tokenizer | None = None

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer, built from the training split on first use (or the pretrained one)."""
        if self._tokenizer is None and self.hparams.pretrained_tokenizer is not None:
            self._tokenizer = pretrained_tokenizer(self.hparams.pretrained_tokenizer)
        if self._tokenizer is None:
            hp = self.hparams
            if hp.token_cache:  # kept beside the token files
                options = {
                    name: hp[name] for name in ("text_column", "tokenizer", "unk_token", "min_freq", "max_vocab_size")
                }
                self._tokenizer = self.cached_tokenizer(
                    "tokenizer", self._train_tokenizer, self.cache_folder, **options
                )
            else:
                self._tokenizer = self._train_tokenizer()
            log.info(
                "a %d-token %s vocabulary, of split %r",
                len(self._tokenizer),
                self.hparams.tokenizer,
                self.hparams.train_split,
            )
        return self._tokenizer

    def _train_tokenizer(self) -> Tokenizer:
        # With the token cache or a stream the training split is read a block at a time, never whole.
        hp = self.hparams
        blocks = hp.token_cache or self.streaming
        if hp.tokenizer == "char":
            texts = self.text_blocks(hp.train_split) if blocks else [self.text(hp.train_split)]
            return CharTokenizer.from_texts(texts, hp.unk_token)
        rows: Iterable[str] = self.streamed_rows(hp.train_split) if blocks else self.rows_of(hp.train_split)
        if hp.tokenizer == "bpe":
            return TextTokenizer.train_bpe(rows, vocab_size=hp.max_vocab_size or 8000, normalization=None)
        tokenizer = TextTokenizer.train_word_level(
            rows,
            lowercase=False,
            normalization=None,
            min_freq=hp.min_freq,
            max_vocab_size=hp.max_vocab_size,
            split_punctuation=False,
        )
        if len(tokenizer) <= 4:  # the special tokens alone
            raise ValueError(
                f"no word of split {hp.train_split!r} is seen {hp.min_freq} times or more: lower min_freq "
                f"(now {hp.min_freq}) or give more training text"
            )
        return tokenizer

    @property
    def cache_folder(self) -> Path:
        """Where the token files go: ``cache_dir``, or ``rnnzoo_tokens`` beside the HuggingFace datasets cache."""
        cache_dir = self.hparams.cache_dir
        return default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()

    def rows_of(self, split: str) -> list[str]:
        """The non-empty rows of ``split``'s text column."""
        return [row for row in self.values(split, "text_column") if row]

    def row_blocks(self, split: str) -> Iterator[list[Any]]:
        """The values of ``split``'s text column, a block of rows at a time (from the stream with ``streaming``)."""
        rows, column = self.rows(split), self.hparams.text_column
        return stream_blocks(rows, column) if self.streaming else row_blocks(rows, column)

    def streamed_rows(self, split: str) -> Iterator[str]:
        """:meth:`rows_of`, read a block of rows at a time (never the whole split)."""
        for values in self.row_blocks(split):
            yield from (row for row in values if row)

    def text(self, split: str) -> str:
        """The rows of ``split`` joined with newlines (read once, then kept)."""
        if split in self._texts:
            return self._texts[split]
        text = "\n".join(row for row in self.values(split, "text_column") if row is not None)
        if not text.strip():
            raise self._no_text(split)
        self._texts[split] = text
        return text

    def text_blocks(self, split: str) -> Iterator[str]:
        """:meth:`text` a block of rows at a time, never whole: the blocks, concatenated, are that text.

        Raises:
            ValueError: as :meth:`text`, for a split without text (once its blocks are read).
        """
        started = has_text = False
        for values in self.row_blocks(split):
            rows = [row for row in values if row is not None]
            if not rows:
                continue
            text = "\n".join(rows)
            has_text = has_text or (bool(text) and not text.isspace())
            yield "\n" + text if started else text  # the newline between this block's first row and the last one's
            started = True
        if not has_text:
            raise self._no_text(split)

    def _no_text(self, split: str) -> ValueError:
        return ValueError(
            f"split {split!r} of dataset {self.source!r} has no text in column {self.hparams.text_column!r}"
        )

    def columns(self) -> tuple[str, ...]:
        """Every split holds the text column."""
        return ("text_column",)

    def encode(self, split: str) -> Tensor:
        """The token stream of ``split`` (the whole of it: under DDP each process reads its rows of it).

        In memory as int64, or with ``token_cache`` a ``uint16``/``uint32`` view of its token file
        (tokenized first when the cache lacks it).

        Raises:
            ValueError: for characters unseen in training, when there is no ``unk_token``; for a split
                without text.
        """
        if self.hparams.token_cache:
            return self._cached_stream(split)
        tokenizer = self.tokenizer
        if isinstance(tokenizer, CharTokenizer):
            try:
                return tokenizer.encode(self.text(split))
            except ValueError as error:
                raise ValueError(f"split {split!r}: {error}; or set the data module's unk_token") from None
        end = [tokenizer.eos_id] if self.hparams.eos_token else []
        rows = tokenizer.encode_batch(self.rows_of(split))
        return torch.tensor([token for row in rows for token in row + end], dtype=torch.long)

    def _cached_stream(self, split: str) -> Tensor:
        """``split``'s tokens from its token file, which is written first when the cache lacks it (or it is damaged)."""
        hp, tokenizer = self.hparams, self.tokenizer
        rows = self.rows(split)
        key = cache_key(
            kind="tokens",
            dataset=rows._fingerprint,
            split=split,
            column=hp.text_column,
            tokenizer=tokenizer_digest(tokenizer),
            eos_token=hp.eos_token,
        )
        path = self.cache_folder / f"{key}.tokens.npy"
        dtype = token_dtype(len(tokenizer))
        tokens = read_token_file(path, dtype)
        if tokens is None:
            log.info("tokenizing split %r into %s", split, path)
            tokens = write_token_file(path, self._token_blocks(split, tokenizer, dtype), dtype)
        log.info("split %r: %d tokens (%s), memory-mapped from %s", split, len(tokens), dtype, path)
        return torch.from_numpy(tokens)

    def _token_blocks(self, split: str, tokenizer: Tokenizer, dtype: np.dtype) -> Iterator[np.ndarray]:
        """The tokens of ``split`` a block of rows at a time, exactly as :meth:`encode` gives them in memory."""
        column, processes = self.hparams.text_column, self.hparams.num_proc or 1
        description = f"tokenizing {split!r}"
        if isinstance(tokenizer, CharTokenizer):
            encode = CharBlock(tokenizer, split, dtype)
            blocks = encoded_blocks(self.rows(split), column, encode, processes, description)
            started = has_text = False
            for ids, rows, text in blocks:
                if rows and started:  # the newline between this block's first row and the last one's
                    yield encode.text("\n")
                started, has_text = started or rows, has_text or text
                yield ids
            if not has_text:
                raise self._no_text(split)
            return
        end = [tokenizer.eos_id] if self.hparams.eos_token else []
        count = 0
        for ids in encoded_blocks(self.rows(split), column, RowsBlock(tokenizer, end, dtype), processes, description):
            count += len(ids)
            yield ids
        if not count:
            raise self._no_text(split)

    def prepare_data(self) -> None:
        """With ``token_cache``, tokenize the training, validation and test splits the dataset has into the cache.

        Lightning calls this on one process per node before ``setup`` on every process, so that
        under DDP the processes find the token files instead of each tokenizing the same splits.
        """
        if self.hparams.token_cache:
            for role in ("train", "val", "test"):
                if self.split_name(role) in self.splits:
                    self.encoded_split(self.split_name(role))

    @property
    def streams(self) -> dict[str, Tensor]:
        """The token streams encoded so far, by split (int64, or ``uint16``/``uint32`` with ``token_cache``)."""
        return self.encoded

    def _loader(self, split: str, train: bool) -> DataLoader:
        # Under DDP the processes share out the rows of one layout: training's has batch_size rows per process
        # (one large batch, as with one process and world_size times the batch), evaluation's is the
        # one-process layout itself, so that validation and test figures do not depend on the process count.
        if self.streaming:
            return self._streamed_loader(split, train)
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        rows = self.hparams.batch_size * world_size if train else self.hparams.eval_batch_size
        if rows < world_size:
            raise ValueError(
                f"eval_batch_size {rows} is smaller than the {world_size} processes: raise it to {world_size} or more"
            )
        random_lengths = train and self.hparams.random_tbptt_length
        tokens = self.encoded_split(split)
        steps = self.hparams.tbptt_steps
        chunks = ContiguousChunks(tokens, rows, steps, random_lengths, rank=rank, world_size=world_size)
        # Items are whole batches already, in an order that matters: no sampler, no shuffling. The loader
        # saves the stream position in checkpoints (the model saves the state carried to the next chunk).
        return ResumableLoader(chunks, batch_size=None, generator=seeded_generator())

    def _streamed_loader(self, split: str, train: bool) -> StreamLoader:
        """A streamed split's chunks: its documents dealt out to the lanes as they are read (under DDP, its part)."""
        hp, tokenizer = self.hparams, self.tokenizer
        if isinstance(tokenizer, CharTokenizer):
            encode_text = CharBlock(tokenizer, split, np.dtype(np.int64)).text
            separator = encode_text("\n").tolist()  # a lane's documents are joined with newlines, as text() joins rows

            def encode_rows(rows: list[str | None]) -> list[np.ndarray]:
                return [encode_text(row) for row in rows if row is not None]

        else:
            end, separator = [tokenizer.eos_id] if hp.eos_token else [], []

            def encode_rows(rows: list[str | None]) -> list[np.ndarray]:
                ids = tokenizer.encode_batch([row for row in rows if row])
                return [np.asarray(row + end, dtype=np.int64) for row in ids]

        chunks = StreamedChunks(
            self.stream_of(split),
            encode_rows,
            hp.text_column,
            hp.batch_size if train else hp.eval_batch_size,
            hp.tbptt_steps,
            separator,
            train and hp.random_tbptt_length,
            torch.initial_seed(),
            name=f"split {split!r} of {self.source!r}",
        )
        return StreamLoader(chunks)

    def predict_dataloader(self) -> DataLoader:
        """The test split, for per-character scores."""
        return self._loader(self.hparams.test_split, train=False)
