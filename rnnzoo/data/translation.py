"""Translation data: sentence pairs from two columns or one HF ``translation`` dict column."""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

from datasets import Dataset, IterableDataset
from torch import Tensor

from rnnzoo.batches import TranslationBatch, collate_translation
from rnnzoo.data.base import EncodedRows, Encoder, HFDataModule, check_texts
from rnnzoo.data.classification import build_tokenizer
from rnnzoo.data.hf import DataFiles, column_values
from rnnzoo.data.token_cache import tokenizer_digest
from rnnzoo.tokenizers import PairTokenizer, TextTokenizer, Tokenizer

__all__ = ["TranslationBatch", "TranslationDataModule"]  # TranslationBatch: re-exported from rnnzoo.batches

log = logging.getLogger(__name__)


class PairEncoder(Encoder):
    """The ids of each pair: ``{"source_ids": [...], "target_ids": [<bos>, ..., <eos>]}`` (None read as empty).

    Args:
        tokenizer: the source and target tokenizers.
        source: the source column, or the source language's key in ``translation``.
        target: the target column, or the target language's key in ``translation``.
        translation: the one column of ``{language: text}`` dicts, or None for two text columns.
    """

    def __init__(self, tokenizer: PairTokenizer, source: str, target: str, translation: str | None) -> None:
        self.tokenizer, self.source, self.target, self.translation = tokenizer, source, target, translation
        self.columns = (source, target) if translation is None else (translation,)

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """The source and target ids of every pair."""
        if self.translation is None:
            sources, targets = batch[self.source], batch[self.target]
        else:
            entries = batch[self.translation]
            sources, targets = [e[self.source] for e in entries], [e[self.target] for e in entries]
        target: TextTokenizer = self.tokenizer.target
        target_ids = target.encode_batch([text or "" for text in targets])
        return {
            "source_ids": self.tokenizer.source.encode_batch([text or "" for text in sources]),
            "target_ids": [[target.bos_id, *ids, target.eos_id] for ids in target_ids],
        }

    def key(self) -> dict[str, Any]:
        """Both tokenizers' digests and the columns."""
        tokenizers = {side: tokenizer_digest(getattr(self.tokenizer, side)) for side in ("source", "target")}
        return {**tokenizers, "columns": [self.source, self.target, self.translation]}


class TranslationDataModule(HFDataModule):
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
        data_files: local files instead of (or inside) ``dataset``: a path, a glob, a list of them
            (the ``train`` split) or a dict of split -> path(s).
        builder: how to read ``data_files`` (``csv``, ``json``, ``parquet``, ``text``); None infers it
            from the extension.
        source_column: source text column, or its language key in ``translation_column``.
        target_column: target text column, or its language key in ``translation_column``.
        translation_column: a dict column of ``{language: text}``, or None for two columns.
        train_split: split the tokenizers and model are trained on.
        val_split: validation split.
        test_split: test split.
        tokenizer: ``word`` or ``bpe``, for both languages.
        lowercase: fold case first (bentrevett's Multi30k setup does).
        normalization: Unicode normal form applied first, or None. With BPE, None and
            ``lowercase: false`` make decoding give the exact text back (NFKC reads a no-break space as a space).
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
        cache: keep the trained tokenizers and the encoded splits beside the dataset's own ``datasets``
            cache files (``Dataset.map``), so that a later run with the same data and options reads them
            instead of training and encoding again; False computes them every run.
        num_proc: processes that encode a split (``Dataset.map``'s ``num_proc``); None: one.
        streaming: read every split as a stream (see :class:`~rnnzoo.data.base.HFDataModule`): pairs are
            encoded a pool at a time as training reads them; the tokenizers still come from the training split,
            read from the stream. Needs a validation split of its own.
        shuffle_buffer: with ``streaming``, the rows of the training shuffle buffer.
    """

    collate_fn = staticmethod(collate_translation)
    column_hints: ClassVar[dict[str, str]] = {
        "source_column": " (or translation_column for a dict column)",
        "target_column": " (or translation_column for a dict column)",
        "translation_column": ", or to None for two text columns",
    }

    def __init__(
        self,
        dataset: str | None = None,
        name: str | None = None,
        revision: str | None = None,
        data_files: DataFiles | None = None,
        builder: Literal["csv", "json", "parquet", "text"] | None = None,
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
        cache: bool = True,
        num_proc: int | None = None,
        streaming: bool = False,
        shuffle_buffer: int = 10_000,
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
        self.check_streaming()
        self._tokenizer: PairTokenizer | None = None

    # Raw text pairs.

    def columns(self) -> tuple[str, ...]:
        """The two text columns, or the one dict column of ``{language: text}``."""
        hp = self.hparams
        return ("source_column", "target_column") if hp.translation_column is None else ("translation_column",)

    def pairs(self, split: str, rows: Dataset | IterableDataset | None = None) -> tuple[list[str], list[str]]:
        """``(sources, targets)`` texts of ``split``, or of ``rows`` (a part of it), None read as empty.

        Raises:
            KeyError: for a missing split, column or language key, listing what exists.
        """
        hp = self.hparams
        rows = self.rows(split) if rows is None else rows
        if hp.translation_column is None:
            if isinstance(rows, IterableDataset):  # one pass over the stream
                pairs = [(row[hp.source_column], row[hp.target_column]) for row in rows]
                columns = {hp.source_column: [s for s, _ in pairs], hp.target_column: [t for _, t in pairs]}
            else:
                columns = rows.select_columns([hp.source_column, hp.target_column]).to_dict()  # fast, whole columns
            sources = check_texts(columns[hp.source_column], split, hp.source_column, "source_column")
            return sources, check_texts(columns[hp.target_column], split, hp.target_column, "target_column")
        entries = column_values(rows, hp.translation_column)
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
            names = ("tokenizer", "lowercase", "normalization", "min_freq", "max_vocab_size", "bpe_vocab_size")
            options = {name: hp[name] for name in names}
            options["columns"] = [hp.source_column, hp.target_column, hp.translation_column]
            source = self.cached_tokenizer("source-tokenizer", lambda: self._train_tokenizer(0), **options)
            self._tokenizer = PairTokenizer(
                source, self.cached_tokenizer("target-tokenizer", lambda: self._train_tokenizer(1), **options)
            )
            log.info("trained %s tokenizers on %r: %s", hp.tokenizer, hp.train_split, self._tokenizer.vocab_sizes)
        return self._tokenizer

    def _train_tokenizer(self, side: int) -> Tokenizer:
        """A tokenizer trained on the sources (``side`` 0) or the targets (1) of the training split."""
        hp = self.hparams
        options = (hp.lowercase, hp.normalization, hp.min_freq, hp.max_vocab_size, hp.bpe_vocab_size)
        return build_tokenizer(hp.tokenizer, self.pairs(hp.train_split)[side], *options)

    @property
    def vocab_size(self) -> dict[str, int]:
        """``{"source": ..., "target": ...}``, known before ``setup()`` (the CLI passes it to the model)."""
        return self.tokenizer.vocab_sizes

    # Encoding.

    def _fitting(self, keep: list[int], source_ids: list[Tensor], target_ids: list[Tensor]) -> list[int]:
        """The pairs of ``keep`` within ``max_source_length`` / ``max_target_length`` (training only).

        A target's length is counted without its ``<bos>`` and ``<eos>``.
        """
        hp = self.hparams
        return [
            i
            for i in keep
            if (hp.max_source_length is None or len(source_ids[i]) <= hp.max_source_length)
            and (hp.max_target_length is None or len(target_ids[i]) - 2 <= hp.max_target_length)
        ]

    def encode(self, split: str, rows: Dataset | None = None) -> EncodedRows:
        """Ids of ``split`` (or of ``rows``, a part of it); empty pairs dropped, over-long training pairs dropped."""
        hp = self.hparams
        whole = rows is None
        rows = self.rows(split) if rows is None else rows
        sources, targets = self.pairs(split, rows)  # checked, and the references
        encoder = PairEncoder(self.tokenizer, hp.source_column, hp.target_column, hp.translation_column)
        columns = self.encoded_columns(split, rows, encoder)
        source_ids, target_ids = columns["source_ids"], columns["target_ids"]
        keep = [i for i, (s, t) in enumerate(zip(source_ids, target_ids, strict=True)) if len(s) and len(t) > 2]
        if len(keep) < len(sources):
            log.warning("split %r: dropped %d pair(s) with an empty side", split, len(sources) - len(keep))
        if split == hp.train_split:
            fits = self._fitting(keep, source_ids, target_ids)
            if len(fits) < len(keep):
                log.warning("split %r: dropped %d over-long pair(s)", split, len(keep) - len(fits))
            keep = fits
        if not keep and whole:
            raise ValueError(f"split {split!r} of {self.source!r} holds no pair with text on both sides")
        fields = {
            "sources": [source_ids[i] for i in keep],
            "targets": [target_ids[i] for i in keep],
            "references": [targets[i] for i in keep],
        }
        return EncodedRows(fields, [len(source_ids[i]) for i in keep])
