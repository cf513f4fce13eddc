"""Translation data: sentence pairs from two columns or one HF ``translation`` dict column."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from datasets import Dataset, DatasetDict
from torch import Tensor

from rnnzoo.data.base import SplitDataModule
from rnnzoo.data.batching import pad_sequences
from rnnzoo.data.classification import build_tokenizer
from rnnzoo.data.hf import get_split, load_splits
from rnnzoo.tokenizers import PairTokenizer, TextTokenizer

log = logging.getLogger(__name__)


class TranslationBatch(NamedTuple):
    """A padded batch of sentence pairs.

    Attributes:
        source: ``[B, S]`` source ids, padded with 0.
        source_lengths: ``[B]`` real source lengths.
        target: ``[B, T]`` target ids ``<bos> y_1 ... y_n <eos>``, padded with 0.
        target_lengths: ``[B]`` real target lengths (``n + 2``).
        references: the raw target texts, for BLEU.
    """

    source: Tensor
    source_lengths: Tensor
    target: Tensor
    target_lengths: Tensor
    references: list[str]


class EncodedPairs(torch.utils.data.Dataset):
    """Source ids, target ids (with ``<bos>``/``<eos>``) and raw references of one split."""

    def __init__(self, sources: list[list[int]], targets: list[list[int]], references: list[str]) -> None:
        self.sources = [torch.tensor(row, dtype=torch.long) for row in sources]
        self.targets = [torch.tensor(row, dtype=torch.long) for row in targets]
        self.references = references
        self.lengths = [len(row) for row in sources]

    def __len__(self) -> int:
        """Number of pairs."""
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, str]:
        """``(source ids, target ids, reference text)``."""
        return self.sources[index], self.targets[index], self.references[index]


def collate(items: Sequence[tuple[Tensor, Tensor, str]]) -> TranslationBatch:
    """Pad sources and targets separately into a :class:`TranslationBatch`."""
    source, source_lengths = pad_sequences([source for source, _, _ in items])
    target, target_lengths = pad_sequences([target for _, target, _ in items])
    return TranslationBatch(source, source_lengths, target, target_lengths, [text for _, _, text in items])


class TranslationDataModule(SplitDataModule):
    """Sentence pairs from a hub id or local folder, tokenized per language, bucketed by source length.

    * **Columns**: ``source_column`` and ``target_column`` name two text columns
      (``bentrevett/multi30k``: ``de`` and ``en``); with ``translation_column`` set
      they name the language keys inside that dict column instead (WMT datasets:
      ``translation: {"de": ..., "en": ...}``).
    * **Tokenizers**: one for the source and one for the target, both trained on
      the training split with HF ``tokenizers`` (``word`` or ``bpe``); ids 0-3
      are ``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``. Targets are read as
      ``<bos> y <eos>``; sources carry no special tokens. The pair is saved with the model.
    * **Lengths**: training pairs whose source or target is longer than
      ``max_source_length`` / ``max_target_length`` tokens are dropped (a cut
      target would teach cut translations); evaluation keeps every pair. Pairs
      with an empty side are dropped, with a warning giving the count.
    * **Length bucketing** on the source length keeps padding small.

    Args:
        dataset: hub id (``bentrevett/multi30k``) or local folder.
        name: the dataset's configuration name (``de-en`` for WMT), if any.
        revision: a hub revision.
        source_column: source text column, or its language key in ``translation_column``.
        target_column: target text column, or its language key in ``translation_column``.
        translation_column: a dict column of ``{language: text}``, or None for two columns.
        train_split: split the tokenizers and model are trained on.
        val_split: validation split.
        test_split: test split.
        tokenizer: ``word`` or ``bpe``, for both languages.
        lowercase: fold case first (bentrevett's Multi30k setup does).
        normalization: Unicode normal form applied first, or None.
        min_freq: words seen fewer times in training become ``<unk>`` (word level).
        max_vocab_size: most frequent words kept per language (word level), None for all.
        bpe_vocab_size: vocabulary size of each BPE tokenizer.
        max_source_length: longest training source kept, in tokens (None: all).
        max_target_length: longest training target kept, in tokens without ``<bos>``/``<eos>`` (None: all).
        batch_size: pairs per training batch.
        eval_batch_size: pairs per validation/test batch.
        bucketing: group pairs of similar source length into batches.
        pool_batches: batches per sorted pool when bucketing.
        num_workers: DataLoader worker processes.
    """

    collate_fn = staticmethod(collate)

    def __init__(
        self,
        dataset: str,
        name: str | None = None,
        revision: str | None = None,
        source_column: str = "de",
        target_column: str = "en",
        translation_column: str | None = None,
        train_split: str = "train",
        val_split: str = "validation",
        test_split: str = "test",
        tokenizer: Literal["word", "bpe"] = "word",
        lowercase: bool = True,
        normalization: str | None = "NFKC",
        min_freq: int = 2,
        max_vocab_size: int | None = None,
        bpe_vocab_size: int = 8000,
        max_source_length: int | None = 100,
        max_target_length: int | None = 100,
        batch_size: int = 64,
        eval_batch_size: int = 128,
        bucketing: bool = True,
        pool_batches: int = 100,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if tokenizer not in ("word", "bpe"):
            raise ValueError(f"tokenizer must be 'word' or 'bpe' for translation, got {tokenizer!r}")
        for option, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value <= 0:
                raise ValueError(f"{option} must be a positive integer, got {value}")
        for option, value in (("max_source_length", max_source_length), ("max_target_length", max_target_length)):
            if value is not None and value <= 0:
                raise ValueError(f"{option} must be a positive number of tokens or None, got {value}")
        if source_column == target_column:
            raise ValueError(f"source_column and target_column are both {source_column!r}; name two languages")
        self.save_hyperparameters()
        self._splits: DatasetDict | None = None
        self._tokenizer: PairTokenizer | None = None
        self.encoded: dict[str, EncodedPairs] = {}

    # Raw text pairs.

    @property
    def splits(self) -> DatasetDict:
        """The dataset's splits, loaded once."""
        if self._splits is None:
            hp = self.hparams
            self._splits = load_splits(hp.dataset, hp.name, hp.revision)
        return self._splits

    def pairs(self, split: str) -> tuple[list[str], list[str]]:
        """``(sources, targets)`` texts of ``split`` (None read as empty).

        Raises:
            KeyError: for a missing split, column or language key, listing what exists.
        """
        hp = self.hparams
        rows: Dataset = get_split(self.splits, split, hp.dataset)
        if hp.translation_column is None:
            for side, column in (("source_column", hp.source_column), ("target_column", hp.target_column)):
                if column not in rows.column_names:
                    raise KeyError(
                        f"split {split!r} of dataset {hp.dataset!r} has no column {column!r}; its columns are "
                        f"{rows.column_names}. Set {side} to one of them (or translation_column for a dict column)."
                    )
            columns = rows.select_columns([hp.source_column, hp.target_column]).to_dict()  # fast, whole columns
            return [t or "" for t in columns[hp.source_column]], [t or "" for t in columns[hp.target_column]]
        if hp.translation_column not in rows.column_names:
            raise KeyError(
                f"split {split!r} of dataset {hp.dataset!r} has no column {hp.translation_column!r}; its columns are "
                f"{rows.column_names}. Set translation_column to the dict column, or to None for two text columns."
            )
        entries = rows.select_columns([hp.translation_column]).to_dict()[hp.translation_column]
        languages = sorted(entries[0]) if entries and isinstance(entries[0], dict) else []
        for side, key in (("source_column", hp.source_column), ("target_column", hp.target_column)):
            if key not in languages:
                raise KeyError(
                    f"column {hp.translation_column!r} of split {split!r} has no language {key!r}; it has "
                    f"{languages}. Set {side} to one of them."
                )
        return [e[hp.source_column] or "" for e in entries], [e[hp.target_column] or "" for e in entries]

    # Tokenizers, trained on the training split.

    @property
    def tokenizer(self) -> PairTokenizer:
        """Source and target tokenizers, trained on the training split on first use."""
        if self._tokenizer is None:
            hp = self.hparams
            sources, targets = self.pairs(hp.train_split)
            options = (hp.lowercase, hp.normalization, hp.min_freq, hp.max_vocab_size, hp.bpe_vocab_size)
            self._tokenizer = PairTokenizer(
                build_tokenizer(hp.tokenizer, sources, *options), build_tokenizer(hp.tokenizer, targets, *options)
            )
            log.info("trained %s tokenizers on %r: %s", hp.tokenizer, hp.train_split, self._tokenizer.vocab_sizes)
        return self._tokenizer

    @property
    def vocab_size(self) -> dict[str, int]:
        """``{"source": ..., "target": ...}``, known before ``setup()`` (the CLI passes it to the model)."""
        return self.tokenizer.vocab_sizes

    # Encoding.

    def encoded_split(self, split: str) -> EncodedPairs:
        """Ids of ``split`` (computed once); empty pairs dropped, over-long training pairs dropped."""
        if split not in self.encoded:
            hp = self.hparams
            sources, targets = self.pairs(split)
            target_tokenizer: TextTokenizer = self.tokenizer.target
            source_ids = self.tokenizer.source.encode_batch(sources)
            target_ids = target_tokenizer.encode_batch(targets)
            keep = [i for i, (s, t) in enumerate(zip(source_ids, target_ids, strict=True)) if s and t]
            if len(keep) < len(sources):
                log.warning("split %r: dropped %d pair(s) with an empty side", split, len(sources) - len(keep))
            if split == hp.train_split:
                fits = [
                    i
                    for i in keep
                    if (hp.max_source_length is None or len(source_ids[i]) <= hp.max_source_length)
                    and (hp.max_target_length is None or len(target_ids[i]) <= hp.max_target_length)
                ]
                if len(fits) < len(keep):
                    log.warning("split %r: dropped %d over-long pair(s)", split, len(keep) - len(fits))
                keep = fits
            if not keep:
                raise ValueError(f"split {split!r} of {hp.dataset!r} holds no pair with text on both sides")
            bos, eos = target_tokenizer.bos_id, target_tokenizer.eos_id
            self.encoded[split] = EncodedPairs(
                [source_ids[i] for i in keep], [[bos, *target_ids[i], eos] for i in keep], [targets[i] for i in keep]
            )
        return self.encoded[split]
