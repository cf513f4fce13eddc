"""LightningDataModules over HuggingFace datasets."""

from rnnzoo.batches import CaptionBatch
from rnnzoo.data.batching import BucketBatchSampler, pad_sequences
from rnnzoo.data.captioning import CategorySequenceDataModule, ImageCaptionDataModule
from rnnzoo.data.classification import ClassificationDataModule
from rnnzoo.data.hf import get_split, load_splits
from rnnzoo.data.language_model import ContiguousChunks, LanguageModelDataModule
from rnnzoo.data.long_range import AddingProblemDataModule, PixelSequenceDataModule
from rnnzoo.data.tagging import TaggingDataModule
from rnnzoo.data.translation import TranslationBatch, TranslationDataModule

__all__ = [
    "AddingProblemDataModule",
    "BucketBatchSampler",
    "CaptionBatch",
    "CategorySequenceDataModule",
    "ClassificationDataModule",
    "ContiguousChunks",
    "ImageCaptionDataModule",
    "LanguageModelDataModule",
    "PixelSequenceDataModule",
    "TaggingDataModule",
    "TranslationBatch",
    "TranslationDataModule",
    "get_split",
    "load_splits",
    "pad_sequences",
]
