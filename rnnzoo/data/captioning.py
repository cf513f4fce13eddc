"""One-to-many data: a condition (a category or an image) and the sequence(s) it should produce.

* :class:`CategorySequenceDataModule`: a label column and a text column (names by
  language: condition on the language, generate the name character by character).
* :class:`ImageCaptionDataModule`: an image column (or a column of precomputed image
  features) and a caption column holding one string or a list of reference strings
  (Flickr8k / COCO-Karpathy mirrors, or the generated shapes of :mod:`rnnzoo.data.shapes`).
  Images are resized and normalised in torch.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from typing import Any, Literal

import torch
from datasets import DatasetDict
from datasets import Image as HFImage
from torch import Tensor

from rnnzoo.batches import collate_captions
from rnnzoo.data.base import EncodedRows, HFDataModule, LabelledDataModule, check_finite, check_texts
from rnnzoo.data.hf import DataFiles, column_values
from rnnzoo.data_state import DataState
from rnnzoo.images import IMAGENET_MEAN, IMAGENET_STD, prepare_image
from rnnzoo.tokenizers import (
    GENERATION_CHARS,
    TextTokenizer,
    Tokenizer,
    generation_char_tokenizer,
    special_ids,
)

log = logging.getLogger(__name__)

# What Pillow converts an HF ``Image`` column to, by the channels the model reads.
PILLOW_MODES = {1: "L", 3: "RGB", 4: "RGBA"}

CHAR_SPECIALS = GENERATION_CHARS
char_tokenizer = generation_char_tokenizer


def caption_ids(tokenizer: Tokenizer, text: str, max_length: int) -> list[int]:
    """``<bos> text <eos>`` ids of ``text``, the text cut to ``max_length`` tokens."""
    _, bos, eos = special_ids(tokenizer)
    return [bos, *tokenizer.encode(text).tolist()[:max_length], eos]


def encoded_conditions(conditions: Sequence[Any], ids: list[list[int]], references: list[list[str]]) -> EncodedRows:
    """Conditions, target ids (``<bos> ... <eos>``) and references of one split, as the captioning loaders read them."""
    fields = {
        "conditions": list(conditions),
        "ids": [torch.tensor(row, dtype=torch.long) for row in ids],
        "references": references,
    }
    return EncodedRows(fields)


class CategorySequenceDataModule(LabelledDataModule):
    """A label column (the condition) and a text column (the sequence), e.g. names by language.

    * **Categories** come from the label column's ``ClassLabel`` names, otherwise
      from its distinct values in the training split (sorted, ints first; named as strings). They are
      saved with the model, which takes them by name (``generate("Russian")``).
    * **Validation**: when the dataset has no ``val_split``, ``val_fraction`` of the
      training split is carved off with a fixed ``seed``.
    * **Tokenizer**: ``char`` (``<pad>``, ``<bos>``, ``<eos>`` then the training
      characters; case kept) or ``word``; targets read ``<bos> text <eos>``.

    Args:
        dataset: hub id or local folder (``../shared/data/names``).
        name: the dataset's configuration name, if it has several.
        revision: a hub revision.
        data_files: local files instead of (or inside) ``dataset``: a path, a glob, a list of them
            (the ``train`` split) or a dict of split -> path(s).
        builder: how to read ``data_files`` (``csv``, ``json``, ``parquet``, ``text``); None infers it
            from the extension.
        label_column: the column holding the category.
        text_column: the column holding the text.
        train_split: split the tokenizer and model are trained on.
        val_split: split for validation (carved from train when missing).
        test_split: split for testing.
        val_fraction: share of the training split carved off for validation when the dataset lacks
            ``val_split``; None carves 10 % only for the default ``validation`` (a named split that
            is absent is then an error: a misspelling never takes a part of train).
        seed: seed of that carving.
        tokenizer: ``char`` or ``word``.
        max_length: texts are cut to this many tokens.
        batch_size: examples per training batch.
        eval_batch_size: examples per evaluation batch.
        num_workers: DataLoader worker processes.
    """

    collate_fn = staticmethod(collate_captions)

    def __init__(
        self,
        dataset: str | None = None,
        name: str | None = None,
        revision: str | None = None,
        data_files: DataFiles | None = None,
        builder: Literal["csv", "json", "parquet", "text"] | None = None,
        label_column: str = "label",
        text_column: str = "text",
        train_split: str = "train",
        val_split: str = "validation",
        test_split: str = "test",
        val_fraction: float | None = None,
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
        if val_fraction is not None and not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        self.save_hyperparameters()
        self._tokenizer: Tokenizer | None = None

    def columns(self) -> tuple[str, ...]:
        """Every split holds the category and the text column."""
        return ("label_column", "text_column")

    @property
    def categories(self) -> list[str]:
        """The category names, by index (ClassLabel names, or the sorted distinct values as strings)."""
        return self.label_names

    @property
    def num_categories(self) -> int:
        """Number of categories."""
        return len(self.categories)

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer, built from the training split's texts on first use."""
        if self._tokenizer is None:
            hp = self.hparams
            values = self.values(hp.train_split, "text_column")
            texts = check_texts(values, hp.train_split, hp.text_column, "text_column")
            if hp.tokenizer == "char":
                self._tokenizer = char_tokenizer(texts)
            else:
                self._tokenizer = TextTokenizer.train_word_level(texts)
        return self._tokenizer

    def data_state(self) -> DataState:
        """The tokenizer, and the category names as both the labels and their names."""
        return DataState(self.tokenizer, labels=list(self.categories), label_names=list(self.categories))

    def encode(self, split: str) -> EncodedRows:
        """Category indices and ``<bos> text <eos>`` ids of ``split``; empty texts are dropped."""
        hp = self.hparams
        rows = self.rows(split)
        categories = self.label_indices(split, column_values(rows, hp.label_column), "category")
        texts = check_texts(column_values(rows, hp.text_column), split, hp.text_column, "text_column")
        conditions, ids, references = [], [], []
        for category, text in zip(categories, texts, strict=True):
            target = caption_ids(self.tokenizer, text, hp.max_length)
            if len(target) > 2:  # some text besides <bos> and <eos>
                conditions.append(category)
                ids.append(target)
                references.append([text])
        if len(ids) < len(texts):
            log.warning("split %r: dropped %d empty text(s)", split, len(texts) - len(ids))
        return encoded_conditions(conditions, ids, references)


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


class ImageCaptionDataModule(HFDataModule):
    """Images and their captions: an image column and a caption column (one string or a list of references).

    Training reads every (image, reference) pair; evaluation reads each image once
    with all its references (BLEU-4 against them all). Images are converted to
    ``[C, H, W]`` floats, resized to ``image_size`` and normalised with ``mean``/``std``.
    With ``feature_column`` the condition is instead a precomputed feature vector per
    image (CNN features of Flickr8k or COCO), for a ``Captioner(condition="vector")``
    whose ``feature_size`` the CLI links from :attr:`feature_size`.

    Args:
        dataset: hub id, local folder, or ``generated:shapes`` (:mod:`rnnzoo.data.shapes`, offline).
        name: the dataset's configuration name, if it has several.
        revision: a hub revision.
        data_files: local files instead of (or inside) ``dataset``: a path, a glob, a list of them
            (the ``train`` split) or a dict of split -> path(s).
        builder: how to read ``data_files`` (``csv``, ``json``, ``parquet``, ``text``); None infers it
            from the extension.
        image_column: the column holding the images (HF ``Image`` or arrays).
        feature_column: a column of precomputed feature vectors (lists of floats, all of one
            length) read instead of ``image_column``; None reads images.
        caption_column: the column holding a caption or a list of them, or several string
            columns holding one reference each (``[caption_0, ..., caption_4]`` in ``jxie/flickr8k``).
        train_split: split the tokenizer and model are trained on.
        val_split: split for validation (carved from train when missing).
        test_split: split for testing.
        val_fraction: share of the training split carved off for validation when the dataset lacks
            ``val_split``; None carves 10 % only for the default ``validation`` (a named split that
            is absent is then an error: a misspelling never takes a part of train).
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

    collate_fn = staticmethod(collate_captions)

    def __init__(
        self,
        dataset: str | None = None,
        name: str | None = None,
        revision: str | None = None,
        data_files: DataFiles | None = None,
        builder: Literal["csv", "json", "parquet", "text"] | None = None,
        image_column: str = "image",
        feature_column: str | None = None,
        caption_column: str | list[str] = "caption",
        train_split: str = "train",
        val_split: str = "validation",
        test_split: str = "test",
        val_fraction: float | None = None,
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
        if val_fraction is not None and not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        self.save_hyperparameters()
        self.caption_columns = [caption_column] if isinstance(caption_column, str) else list(caption_column)
        if not self.caption_columns:
            raise ValueError("caption_column must name at least one column")
        self._tokenizer: Tokenizer | None = None

    def raw_splits(self) -> DatasetDict:
        """The dataset's splits; ``generated:shapes`` draws them (:mod:`rnnzoo.data.shapes`)."""
        if self.hparams.dataset == "generated:shapes":
            from rnnzoo.data.shapes import shapes_dataset

            return shapes_dataset(seed=self.hparams.seed, size=self.hparams.image_size)
        return super().raw_splits()

    def columns(self) -> tuple[str, ...]:
        """Every split holds the image (or feature) column and the caption column(s)."""
        condition = "image_column" if self.hparams.feature_column is None else "feature_column"
        return (condition, "caption_column")

    @property
    def feature_size(self) -> int | None:
        """Features per vector, read from the first training row (linked into the model); None for images."""
        hp = self.hparams
        if hp.feature_column is None:
            return None
        first = self.rows(hp.train_split)[0][hp.feature_column]
        if not isinstance(first, list | tuple) or not first or not all(isinstance(x, int | float) for x in first):
            raise ValueError(
                f"feature column {hp.feature_column!r} must hold lists of floats (one feature vector per image), "
                f"got {type(first).__name__} ({first!r:.60}) in its first training row"
            )
        return len(first)

    def references(self, split: str) -> list[list[str]]:
        """Every row's reference captions, checked."""
        rows = self.rows(split)
        if len(self.caption_columns) > 1:  # one string column per reference
            columns = (column_values(rows, column) for column in self.caption_columns)
            values = [list(refs) for refs in zip(*columns, strict=True)]
            column = ", ".join(self.caption_columns)
        else:
            column = self.caption_columns[0]
            values = column_values(rows, column)
        return [caption_references(value, row, column) for row, value in enumerate(values)]

    @property
    def tokenizer(self) -> Tokenizer:
        """A word-level tokenizer trained on every training caption."""
        if self._tokenizer is None:
            hp = self.hparams
            texts = [text for refs in self.references(hp.train_split) for text in refs]
            self._tokenizer = TextTokenizer.train_word_level(texts, hp.lowercase, "NFKC", hp.min_freq, None)
        return self._tokenizer

    @property
    def mean(self) -> list[float]:
        """The per-channel normalisation mean applied (``mean``, or ImageNet's)."""
        return list(self.hparams.mean or IMAGENET_MEAN)

    @property
    def std(self) -> list[float]:
        """The per-channel normalisation standard deviation applied (``std``, or ImageNet's)."""
        return list(self.hparams.std or IMAGENET_STD)

    def data_state(self) -> DataState:
        """The tokenizer, and how images are prepared (size, channels, mean, std) or the feature vectors' size."""
        hp = self.hparams
        if hp.feature_column is not None:
            return DataState(self.tokenizer, options={"feature_size": self.feature_size})
        options = {"image_size": hp.image_size, "image_channels": hp.image_channels, "mean": self.mean, "std": self.std}
        return DataState(self.tokenizer, options=options)

    def features(self, split: str) -> list[Tensor]:
        """Every row's feature vector, checked to hold :attr:`feature_size` finite floats.

        Raises:
            ValueError: for a row whose vector has another length, or holds NaN or infinity.
        """
        size, column = self.feature_size, self.hparams.feature_column
        vectors = []
        for row, vector in enumerate(column_values(self.rows(split), column)):
            if not isinstance(vector, list | tuple) or len(vector) != size:
                length = len(vector) if isinstance(vector, list | tuple) else type(vector).__name__
                raise ValueError(
                    f"row {row} of feature column {column!r} of split {split!r} holds {length} features; "
                    f"every row must hold {size}, as the first training row does"
                )
            vectors.append(torch.tensor(vector, dtype=torch.float))
        check_finite(vectors, split, what="image features")
        return vectors

    def images(self, split: str) -> list[Tensor]:
        """Every row's image, resized and normalised.

        An HF ``Image`` column (JPEG or PNG bytes, decoded by Pillow) is converted to
        ``image_channels`` channels as it is decoded: photo sets mix greyscale, CMYK and RGB
        files, and :func:`~rnnzoo.images.load_image` converts files to RGB the same way at inference.

        Raises:
            ImportError: when the column holds encoded images and Pillow is not installed.
            ValueError: for a row whose image column holds no usable image.
        """
        hp = self.hparams
        rows = self.rows(split)
        if isinstance(rows.features[hp.image_column], HFImage):
            if importlib.util.find_spec("PIL") is None:
                raise ImportError(
                    f"image column {hp.image_column!r} holds encoded images (JPEG, PNG): decoding them needs Pillow, "
                    "pip install 'rnnzoo[image]'"
                )
            if hp.image_channels in PILLOW_MODES:
                rows = rows.cast_column(hp.image_column, HFImage(mode=PILLOW_MODES[hp.image_channels]))
        column = rows.with_format("torch")[hp.image_column]
        images = []
        for row, image in enumerate(column):
            try:
                images.append(prepare_image(image, hp.image_size, hp.image_channels, self.mean, self.std))
            except (TypeError, ValueError, RuntimeError) as error:
                raise ValueError(
                    f"row {row} of image column {hp.image_column!r} of split {split!r} is not a usable image: "
                    f"{error}. Set image_column to a column of images (HF Image or [H, W, C] arrays)."
                ) from None
        return images

    def encode(self, split: str) -> EncodedRows:
        """Images (or feature vectors) and ``<bos> caption <eos>`` ids: every pair for training, each once otherwise."""
        references = self.references(split)
        train = split == self.hparams.train_split
        inputs = self.images(split) if self.hparams.feature_column is None else self.features(split)
        conditions, ids, refs = [], [], []
        for image, captions in zip(inputs, references, strict=True):
            for caption in captions if train else captions[:1]:
                conditions.append(image)
                ids.append(caption_ids(self.tokenizer, caption, self.hparams.max_length))
                refs.append(captions)
        return encoded_conditions(conditions, ids, refs)
