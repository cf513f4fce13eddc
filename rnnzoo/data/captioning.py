"""One-to-many data: a condition (a category or an image) and the sequence(s) it should produce.

* :class:`CategorySequenceDataModule`: a label column and a text column (names by
  language: condition on the language, generate the name character by character).
* :class:`ImageCaptionDataModule`: an image column and a caption column holding one
  string or a list of reference strings (Flickr8k / COCO-Karpathy mirrors, or the
  generated shapes of :mod:`rnnzoo.data.shapes`). Images are resized and
  normalised in torch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import torch
from datasets import ClassLabel, Dataset, DatasetDict
from torch import Tensor

from rnnzoo.batches import collate_captions
from rnnzoo.data.base import SplitDataModule
from rnnzoo.data.hf import get_split, load_splits, with_validation
from rnnzoo.images import IMAGENET_MEAN, IMAGENET_STD, prepare_image
from rnnzoo.tokenizers import (
    GENERATION_CHARS,
    TextTokenizer,
    Tokenizer,
    generation_char_tokenizer,
    special_ids,
)

log = logging.getLogger(__name__)

CHAR_SPECIALS = GENERATION_CHARS
char_tokenizer = generation_char_tokenizer


class EncodedConditions(torch.utils.data.Dataset):
    """Conditions, target ids (``<bos> ... <eos>``) and references of one split."""

    def __init__(self, conditions: Sequence[Any], ids: list[list[int]], references: list[list[str]]) -> None:
        self.conditions = conditions
        self.ids = [torch.tensor(row, dtype=torch.long) for row in ids]
        self.references = references

    def __len__(self) -> int:
        """Number of examples."""
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Any, Tensor, list[str]]:
        """``(condition, target ids, references)``."""
        return self.conditions[index], self.ids[index], self.references[index]


class _ConditionalDataModule(SplitDataModule):
    """Splits (validation carved from train when missing), a tokenizer from train, loaders."""

    collate_fn = staticmethod(collate_captions)

    text_column: str

    def __init__(self) -> None:
        super().__init__()
        self._splits: DatasetDict | None = None
        self._tokenizer: Tokenizer | None = None
        self.encoded: dict[str, EncodedConditions] = {}

    def _load(self) -> DatasetDict:
        hp = self.hparams
        return load_splits(hp.dataset, hp.name, hp.revision)

    @property
    def splits(self) -> DatasetDict:
        """The dataset's splits (loaded once), plus a carved validation split when it had none."""
        if self._splits is None:
            hp = self.hparams
            splits = self._load()
            get_split(splits, hp.train_split, hp.dataset, self.text_column)  # missing split or column: a clear error
            splits = with_validation(splits, hp.dataset, hp.train_split, hp.val_split, hp.val_fraction, hp.seed)
            self._splits = splits
        return self._splits

    def rows(self, split: str, column: str) -> Dataset:
        """One split, checked to hold the text column and ``column``."""
        rows = get_split(self.splits, split, self.hparams.dataset, self.text_column)
        if column not in rows.column_names:
            raise KeyError(
                f"split {split!r} of dataset {self.hparams.dataset!r} has no column {column!r}; "
                f"its columns are {rows.column_names}. Set the data module's column names to them."
            )
        return rows

    @property
    def vocab_size(self) -> int:
        """Vocabulary size, known before ``setup()``."""
        return len(self.tokenizer)

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer (built from the training split on first use)."""
        raise NotImplementedError

    def encoded_split(self, split: str) -> EncodedConditions:
        """The encoded examples of ``split``."""
        raise NotImplementedError


class CategorySequenceDataModule(_ConditionalDataModule):
    """A label column (the condition) and a text column (the sequence), e.g. names by language.

    * **Categories** come from the label column's ``ClassLabel`` names, otherwise
      from its distinct values in the training split (as strings, sorted). They are
      saved with the model, which takes them by name (``generate("Russian")``).
    * **Validation**: when the dataset has no ``val_split``, ``val_fraction`` of the
      training split is carved off with a fixed ``seed``.
    * **Tokenizer**: ``char`` (``<pad>``, ``<bos>``, ``<eos>`` then the training
      characters; case kept) or ``word``; targets read ``<bos> text <eos>``.

    Args:
        dataset: hub id or local folder (``../shared/data/names``).
        name: the dataset's configuration name, if it has several.
        revision: a hub revision.
        label_column: the column holding the category.
        text_column: the column holding the text.
        train_split: split the tokenizer and model are trained on.
        val_split: split for validation (carved from train when missing).
        test_split: split for testing.
        val_fraction: share of the training split carved off for validation.
        seed: seed of that carving.
        tokenizer: ``char`` or ``word``.
        max_length: texts are cut to this many tokens.
        batch_size: examples per training batch.
        eval_batch_size: examples per evaluation batch.
        num_workers: DataLoader worker processes.
    """

    def __init__(
        self,
        dataset: str,
        name: str | None = None,
        revision: str | None = None,
        label_column: str = "label",
        text_column: str = "text",
        train_split: str = "train",
        val_split: str = "validation",
        test_split: str = "test",
        val_fraction: float = 0.1,
        seed: int = 0,
        tokenizer: Literal["char", "word"] = "char",
        max_length: int = 40,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if tokenizer not in ("char", "word"):
            raise ValueError(f"tokenizer must be 'char' or 'word', got {tokenizer!r}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        self.save_hyperparameters()
        self.text_column = text_column
        self._categories: list[str] | None = None

    @property
    def categories(self) -> list[str]:
        """The category names, by index (ClassLabel names, or the sorted distinct values)."""
        if self._categories is None:
            hp = self.hparams
            train = self.rows(hp.train_split, hp.label_column)
            feature = train.features[hp.label_column]
            if isinstance(feature, ClassLabel):
                self._categories = list(feature.names)
            else:
                self._categories = sorted({str(value) for value in train[hp.label_column] if value is not None})
            log.info("%d categories: %s", len(self._categories), self._categories)
        return self._categories

    @property
    def num_categories(self) -> int:
        """Number of categories."""
        return len(self.categories)

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer, built from the training split's texts on first use."""
        if self._tokenizer is None:
            hp = self.hparams
            texts = [text or "" for text in self.rows(hp.train_split, hp.label_column)[hp.text_column]]
            if hp.tokenizer == "char":
                self._tokenizer = char_tokenizer(texts)
            else:
                self._tokenizer = TextTokenizer.train_word_level(texts)
        return self._tokenizer

    def encoded_split(self, split: str) -> EncodedConditions:
        """Category indices and ``<bos> text <eos>`` ids of ``split``; empty texts are dropped."""
        if split not in self.encoded:
            hp = self.hparams
            rows = self.rows(split, hp.label_column)
            feature = rows.features[hp.label_column]
            values = rows[hp.label_column]
            names = [feature.int2str(v) for v in values] if isinstance(feature, ClassLabel) else list(map(str, values))
            index = {name: position for position, name in enumerate(self.categories)}
            unknown = sorted({name for name in names if name not in index})
            if unknown:
                raise KeyError(f"split {split!r} has categories {unknown} that the training split never has")
            _, bos, eos = 0, *special_pair(self.tokenizer)
            texts = [text or "" for text in rows[hp.text_column]]
            conditions, ids, references = [], [], []
            for name, text in zip(names, texts, strict=True):
                body = self.tokenizer.encode(text).tolist()[: hp.max_length]
                if body:
                    conditions.append(index[name])
                    ids.append([bos, *body, eos])
                    references.append([text])
            if len(ids) < len(texts):
                log.warning("split %r: dropped %d empty text(s)", split, len(texts) - len(ids))
            self.encoded[split] = EncodedConditions(conditions, ids, references)
        return self.encoded[split]


def special_pair(tokenizer: Tokenizer) -> tuple[int, int]:
    """``(bos, eos)`` ids of a generation tokenizer."""
    return special_ids(tokenizer)[1:]


def caption_references(value: Any, row: int, column: str) -> list[str]:
    """The reference captions of one row: a string, or a non-empty list of strings.

    Raises:
        ValueError: for an empty list, or a value that is neither a string nor a list of strings.
    """
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError(f"row {row} of caption column {column!r} is an empty list: give at least one caption")
        if all(isinstance(item, str) for item in value):
            return list(value)
        if all(isinstance(item, dict) and "raw" in item for item in value):  # COCO-style {"raw": ...} sentences
            return [item["raw"] for item in value]
    raise ValueError(
        f"row {row} of caption column {column!r} holds a {type(value).__name__} ({value!r:.60}); "
        "a caption column must hold a string or a list of strings. Set caption_column to such a column."
    )


class ImageCaptionDataModule(_ConditionalDataModule):
    """Images and their captions: an image column and a caption column (one string or a list of references).

    Training reads every (image, reference) pair; evaluation reads each image once
    with all its references (BLEU-4 against them all). Images are converted to
    ``[C, H, W]`` floats, resized to ``image_size`` and normalised with ``mean``/``std``.

    Args:
        dataset: hub id, local folder, or ``generated:shapes`` (:mod:`rnnzoo.data.shapes`, offline).
        name: the dataset's configuration name, if it has several.
        revision: a hub revision.
        image_column: the column holding the images (HF ``Image`` or arrays).
        caption_column: the column holding a caption or a list of them, or several string
            columns holding one reference each (``[caption_0, ..., caption_4]`` in ``jxie/flickr8k``).
        train_split: split the tokenizer and model are trained on.
        val_split: split for validation (carved from train when missing).
        test_split: split for testing.
        val_fraction: share of the training split carved off for validation.
        seed: seed of that carving.
        image_size: side length images are resized to.
        image_channels: channels every image must have.
        mean: per-channel normalisation mean.
        std: per-channel normalisation standard deviation.
        lowercase: fold case before tokenizing.
        min_freq: words seen fewer times in training become ``<unk>``.
        max_length: captions are cut to this many words.
        batch_size: pairs per training batch.
        eval_batch_size: images per evaluation batch.
        num_workers: DataLoader worker processes.
    """

    def __init__(
        self,
        dataset: str,
        name: str | None = None,
        revision: str | None = None,
        image_column: str = "image",
        caption_column: str | list[str] = "caption",
        train_split: str = "train",
        val_split: str = "validation",
        test_split: str = "test",
        val_fraction: float = 0.1,
        seed: int = 0,
        image_size: int = 32,
        image_channels: int = 3,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        lowercase: bool = True,
        min_freq: int = 1,
        max_length: int = 30,
        batch_size: int = 32,
        eval_batch_size: int = 128,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        self.save_hyperparameters()
        self.caption_columns = [caption_column] if isinstance(caption_column, str) else list(caption_column)
        if not self.caption_columns:
            raise ValueError("caption_column must name at least one column")
        self.text_column = self.caption_columns[0]

    def _load(self) -> DatasetDict:
        if self.hparams.dataset == "generated:shapes":
            from rnnzoo.data.shapes import shapes_dataset

            return shapes_dataset(seed=self.hparams.seed, size=self.hparams.image_size)
        return super()._load()

    def references(self, split: str) -> list[list[str]]:
        """Every row's reference captions, checked."""
        hp = self.hparams
        rows = self.rows(split, hp.image_column)
        for column in self.caption_columns[1:]:
            self.rows(split, column)
        if len(self.caption_columns) > 1:  # one string column per reference
            values = [list(refs) for refs in zip(*(rows[column] for column in self.caption_columns), strict=True)]
            column = ", ".join(self.caption_columns)
        else:
            values, column = rows[self.text_column], self.text_column
        return [caption_references(value, row, column) for row, value in enumerate(values)]

    @property
    def tokenizer(self) -> Tokenizer:
        """A word-level tokenizer trained on every training caption."""
        if self._tokenizer is None:
            hp = self.hparams
            texts = [text for refs in self.references(hp.train_split) for text in refs]
            self._tokenizer = TextTokenizer.train_word_level(texts, hp.lowercase, "NFKC", hp.min_freq, None)
        return self._tokenizer

    def encoded_split(self, split: str) -> EncodedConditions:
        """Prepared images and ``<bos> caption <eos>`` ids: every pair for training, each image once otherwise."""
        if split not in self.encoded:
            hp = self.hparams
            references = self.references(split)
            mean = hp.mean or list(IMAGENET_MEAN)
            std = hp.std or list(IMAGENET_STD)
            images = []
            for row, image in enumerate(self.rows(split, hp.image_column).with_format("torch")[hp.image_column]):
                try:
                    images.append(prepare_image(image, hp.image_size, hp.image_channels, mean, std))
                except (TypeError, ValueError, RuntimeError) as error:
                    raise ValueError(
                        f"row {row} of image column {hp.image_column!r} of split {split!r} is not a usable image: "
                        f"{error}. Set image_column to a column of images (HF Image or [H, W, C] arrays)."
                    ) from None
            _, bos, eos = 0, *special_pair(self.tokenizer)
            train = split == hp.train_split
            conditions, ids, refs = [], [], []
            for image, captions in zip(images, references, strict=True):
                for caption in captions if train else captions[:1]:
                    body = self.tokenizer.encode(caption).tolist()[: hp.max_length]
                    conditions.append(image)
                    ids.append([bos, *body, eos])
                    refs.append(captions)
            self.encoded[split] = EncodedConditions(conditions, ids, refs)
        return self.encoded[split]
