"""LightningDataModules over HuggingFace datasets."""

from rnnzoo.batches import CaptionBatch, TranslationBatch, pad_sequences
from rnnzoo.data.base import EncodedRows, HFDataModule, LabelledDataModule, derive_labels
from rnnzoo.data.batching import BucketBatchSampler
from rnnzoo.data.captioning import CategorySequenceDataModule, ImageCaptionDataModule
from rnnzoo.data.classification import ClassificationDataModule
from rnnzoo.data.hf import get_split, load_splits
from rnnzoo.data.language_model import ContiguousChunks, LanguageModelDataModule
from rnnzoo.data.long_range import AddingProblemDataModule, FrameDataModule, PixelSequenceDataModule
from rnnzoo.data.tagging import TaggingDataModule
from rnnzoo.data.translation import TranslationDataModule

__all__ = [
    "AddingProblemDataModule",
    "BucketBatchSampler",
    "CaptionBatch",
    "CategorySequenceDataModule",
    "ClassificationDataModule",
    "ContiguousChunks",
    "EncodedRows",
    "FrameDataModule",
    "HFDataModule",
    "ImageCaptionDataModule",
    "LabelledDataModule",
    "LanguageModelDataModule",
    "PixelSequenceDataModule",
    "TaggingDataModule",
    "TranslationBatch",
    "TranslationDataModule",
    "derive_labels",
    "get_split",
    "load_splits",
    "pad_sequences",
]
