"""Sequence-classification data: any HuggingFace dataset with a text and a label column."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from datasets import Dataset

from rnnzoo.batches import collate_classification
from rnnzoo.data.base import (
    HIDDEN_LABELS,
    EncodedRows,
    Encoder,
    LabelledDataModule,
    check_texts,
    check_vocabulary_extension,
)
from rnnzoo.data.hf import DataFiles, column_values, pretrained_tokenizer
from rnnzoo.data.token_cache import tokenizer_digest
from rnnzoo.data_state import DataState
from rnnzoo.tokenizers import REPLACEMENT_CHARACTER, CharTokenizer, TextTokenizer, Tokenizer

log = logging.getLogger(__name__)


def build_tokenizer(
    kind: Literal["word", "bpe", "char"],
    texts: Sequence[str],
    lowercase: bool = True,
    normalization: str | None = "NFKC",
    min_freq: int = 1,
    max_vocab_size: int | None = None,
    bpe_vocab_size: int = 8000,
) -> Tokenizer:
    """Train a tokenizer of ``kind`` on ``texts`` (see :class:`ClassificationDataModule` for the options)."""
    if kind == "word":
        return TextTokenizer.train_word_level(texts, lowercase, normalization, min_freq, max_vocab_size)
    if kind == "bpe":
        return TextTokenizer.train_bpe(texts, bpe_vocab_size, lowercase, normalization, max(min_freq, 2))
    if kind == "char":
        # Case is kept: the tokenizer alone must reproduce at inference what training saw.
        return CharTokenizer.from_text("\n".join(texts), unk_token=REPLACEMENT_CHARACTER)
    raise ValueError(f"tokenizer must be 'word', 'bpe' or 'char', got {kind!r}")


class TextEncoder(Encoder):
    """The token ids of a text column (None read as empty), each cut to ``max_length``: ``{"ids": [...]}``.

    Args:
        tokenizer: the tokenizer.
        column: the column of texts.
        max_length: tokens kept per text (None: all).
    """

    def __init__(self, tokenizer: Tokenizer, column: str, max_length: int | None = None) -> None:
        self.tokenizer, self.column, self.max_length = tokenizer, column, max_length
        self.columns = (column,)

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """``{"ids": one list of ids per text}``."""
        return {"ids": self.tokenizer.encode_batch([text or "" for text in batch[self.column]], self.max_length)}

    def key(self) -> dict[str, Any]:
        """The tokenizer's digest, the column and ``max_length``."""
        return {"tokenizer": tokenizer_digest(self.tokenizer), "column": self.column, "max_length": self.max_length}


class ClassificationDataModule(LabelledDataModule):
    """Labelled text from a hub id or a local folder, tokenized, bucketed by length.

    * **Labels** come from the label column's ``ClassLabel`` names when it has
      them, otherwise from the distinct values of the training split (ints or
      strings, sorted). They are saved with the model, which reports them by name.
    * **Validation**: when the dataset has no ``val_split``, ``val_fraction`` of the
      training split is carved off with a fixed ``seed`` (and the log says so).
    * **Hidden labels** (-1 or None, as on GLUE test splits) cannot be scored: such
      a split is an error for fit/validate/test; ``rnnzoo classify`` labels it.
    * **Empty texts** (no tokens) are dropped, with a warning giving the count.
    * **Tokenizer** trained on the training split: ``word`` (HF ``tokenizers``
      word-level, with ``<unk>``), ``bpe`` (byte-level BPE) or ``char``; texts are
      cut to ``max_length`` tokens.
    * **Length bucketing** (:class:`~rnnzoo.data.batching.BucketBatchSampler`)
      keeps padding small; the classifier logs the padding efficiency.

    Args:
        dataset: hub id (``cornell-movie-review-data/rotten_tomatoes``) or local folder.
        name: the dataset's configuration name, if it has several.
        revision: a hub revision (branch, tag or commit).
        data_files: local files instead of (or inside) ``dataset``: a path, a glob, a list of them
            (the ``train`` split) or a dict of split -> path(s).
        builder: how to read ``data_files`` (``csv``, ``json``, ``parquet``, ``text``); None infers it
            from the extension.
        text_column: the column holding the text.
        label_column: the column holding the label.
        train_split: split the tokenizer and model are trained on.
        val_split: split for validation (carved from train when the dataset lacks it).
        test_split: split for testing.
        val_fraction: share of the training split carved off for validation when the dataset lacks
            ``val_split``; None carves 10 % only for the default ``validation`` (a named split that
            is absent is then an error: a misspelling never takes a part of train).
        seed: seed of that carving.
        tokenizer: ``word``, ``bpe`` or ``char``.
        pretrained_tokenizer: reuse the tokenizer of a pretrained model (bundled name,
            artifact folder or hub repo id) instead of training one: for fine-tuning.
        lowercase: fold case before tokenizing (word and BPE; ``char`` keeps case).
        normalization: Unicode normal form applied first (``NFKC``), or None. With BPE, None and
            ``lowercase: false`` make decoding give the exact text back (NFKC reads a no-break space as a space).
        min_freq: words seen fewer times in training become ``<unk>`` (word level).
        max_vocab_size: most frequent words kept (word level), None for all.
        bpe_vocab_size: vocabulary size of the BPE tokenizer.
        extend_vocabulary: a GloVe / word2vec / fastText text file whose words are added to the
            trained word vocabulary (``tokenizer: word``), so that words unseen in training keep their
            pretrained vector (give the model the same file as ``embeddings``).
        max_new_words: add at most this many of the file's words (its first, the frequent ones), None for
            all (GloVe 6B: about 340,000, 67 MB of 50-d weights; consider freezing them).
        max_length: texts are cut to this many tokens (None: never).
        batch_size: texts per training batch.
        eval_batch_size: texts per validation/test batch.
        bucketing: group texts of similar length into batches.
        pool_batches: batches per sorted pool when bucketing.
        num_workers: DataLoader worker processes.
        cache: keep the trained tokenizer and the encoded splits beside the dataset's own ``datasets``
            cache files (``Dataset.map``), so that a later run with the same data and options reads them
            instead of training and encoding again; False computes them every run.
        num_proc: processes that encode a split (``Dataset.map``'s ``num_proc``); None: one.
        streaming: read every split as a stream (see :class:`~rnnzoo.data.base.HFDataModule`): rows are
            encoded a pool at a time as training reads them, never the whole split; the tokenizer and labels
            still come from one pass over the training split. Needs a validation split of its own.
        shuffle_buffer: with ``streaming``, the rows of the training shuffle buffer.
    """

    collate_fn = staticmethod(collate_classification)

    def __init__(
        self,
        dataset: str | None = None,
        name: str | None = None,
        revision: str | None = None,
        data_files: DataFiles | None = None,
        builder: Literal["csv", "json", "parquet", "text"] | None = None,
        text_column: str = "text",
        label_column: str = "label",
        train_split: str = "train",
        val_split: str = "validation",
        test_split: str = "test",
        val_fraction: float | None = None,
        seed: int = 0,
        tokenizer: Literal["word", "bpe", "char"] = "word",
        pretrained_tokenizer: str | None = None,
        lowercase: bool = True,
        normalization: str | None = "NFKC",
        min_freq: int = 1,
        max_vocab_size: int | None = 30000,
        bpe_vocab_size: int = 8000,
        extend_vocabulary: str | None = None,
        max_new_words: int | None = None,
        max_length: int | None = 256,
        batch_size: int = 32,
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
        if tokenizer not in ("word", "bpe", "char"):
            raise ValueError(f"tokenizer must be 'word', 'bpe' or 'char', got {tokenizer!r}")
        for option, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value <= 0:
                raise ValueError(f"{option} must be a positive integer, got {value}")
        if max_length is not None and max_length <= 0:
            raise ValueError(f"max_length must be a positive number of tokens or None, got {max_length}")
        if val_fraction is not None and not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        check_vocabulary_extension(extend_vocabulary, max_new_words, tokenizer, pretrained_tokenizer)
        self.save_hyperparameters()
        self.check_streaming()
        self._tokenizer: Tokenizer | None = None

    def columns(self) -> tuple[str, ...]:
        """Every labelled split holds the text and the label column."""
        return ("text_column", "label_column")

    def check_label_values(self, values: list[Any]) -> None:
        """A classifier needs at least two classes present in the training split."""
        hp = self.hparams
        present = set(values) - set(HIDDEN_LABELS)
        if len(present) < 2:
            raise ValueError(
                f"the training split {hp.train_split!r} of {self.source!r} holds {len(present)} distinct label(s) "
                f"{sorted(present, key=str)} in column {hp.label_column!r}: a classifier needs at least two classes"
            )

    @property
    def num_classes(self) -> int:
        """Number of classes, known before ``setup()`` (the CLI passes it to the model)."""
        return len(self.labels)

    @property
    def class_counts(self) -> list[int]:
        """Training examples per class, by class index (for balanced class weights)."""
        hp = self.hparams
        if self.streaming:  # one pass over the training stream's labels
            counts = Counter(self.label_index(hp.train_split, self.values(hp.train_split, "label_column")))
            return [counts.get(index, 0) for index in range(self.num_classes)]
        counts = Counter(self.encoded_split(hp.train_split).targets)
        return [counts.get(index, 0) for index in range(self.num_classes)]

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer, trained on the training split on first use."""
        if self._tokenizer is None and self.hparams.pretrained_tokenizer is not None:
            self._tokenizer = pretrained_tokenizer(self.hparams.pretrained_tokenizer)
        if self._tokenizer is None:
            hp = self.hparams
            names = ("tokenizer", "text_column", "lowercase", "normalization", "min_freq", "max_vocab_size")
            options = {name: hp[name] for name in (*names, "bpe_vocab_size")}
            self._tokenizer = self.extended_vocabulary(
                self.cached_tokenizer("tokenizer", self._train_tokenizer, **options)
            )
            log.info("trained a %s tokenizer with %d entries on %r", hp.tokenizer, len(self._tokenizer), hp.train_split)
        return self._tokenizer

    def _train_tokenizer(self) -> Tokenizer:
        hp = self.hparams
        texts = check_texts(self.values(hp.train_split, "text_column"), hp.train_split, hp.text_column, "text_column")
        options = (hp.lowercase, hp.normalization, hp.min_freq, hp.max_vocab_size, hp.bpe_vocab_size)
        return build_tokenizer(hp.tokenizer, texts, *options)

    def data_state(self) -> DataState:
        """The tokenizer, the labels and their names, and the ``max_length`` cut."""
        options = {"max_length": self.hparams.max_length, **self.vocabulary_extension()}
        return DataState(self.tokenizer, labels=self.labels, label_names=self.label_names, options=options)

    # Encoding.

    def label_index(self, split: str, values: Sequence[Any]) -> list[int]:
        """Class indices of label ``values``, with one clear error for hidden or unknown labels."""
        hidden = sum(value in HIDDEN_LABELS for value in values)
        if hidden:
            raise ValueError(
                f"{hidden} of {len(values)} rows of split {split!r} of {self.source!r} have no label "
                f"({' or '.join(map(repr, HIDDEN_LABELS))}), so the split cannot be scored. Use a labelled split "
                "(for SST-2 on the hub, test_split: validation), or label it with `rnnzoo classify`."
            )
        return self.label_indices(split, values)

    def encode(self, split: str, rows: Dataset | None = None, labelled: bool = True) -> EncodedRows:
        """Token ids and class indices of ``split`` (or of ``rows``, a part of it); empty texts are dropped.

        With ``labelled=False`` the labels are not read (every target is -1): for ``predict``.
        """
        hp = self.hparams
        whole = rows is None
        if rows is None:
            rows = self.rows(split) if labelled else self.rows(split, "text_column")
        # Whole columns converted at once: a datasets Column read value by value is some 50 times slower.
        texts = check_texts(column_values(rows, hp.text_column), split, hp.text_column, "text_column")
        targets = self.label_index(split, column_values(rows, hp.label_column)) if labelled else [-1] * len(texts)
        ids = self.encoded_columns(split, rows, TextEncoder(self.tokenizer, hp.text_column, hp.max_length))["ids"]
        keep = [position for position, row in enumerate(ids) if len(row)]
        if len(keep) < len(ids):
            log.warning("split %r: dropped %d empty text(s)", split, len(ids) - len(keep))
        if not keep and whole:
            raise ValueError(f"every text of split {split!r} is empty (column {hp.text_column!r})")
        tokens = [ids[i] for i in keep]
        return EncodedRows({"ids": tokens, "targets": [targets[i] for i in keep]}, [len(row) for row in tokens])

    def encode_for_predict(self, split: str, rows: Dataset | None = None) -> EncodedRows:
        """:meth:`encode` without the labels (they may be hidden)."""
        return self.encode(split, rows, labelled=False)

    def predict_split(self) -> EncodedRows:
        """The test split's texts in their order, labels not read (they may be hidden)."""
        key = f"{self.hparams.test_split} (unlabelled)"
        if key not in self.encoded:
            self.encoded[key] = self.encode_for_predict(self.hparams.test_split)
        return self.encoded[key]
