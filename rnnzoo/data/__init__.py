"""LightningDataModules over HuggingFace datasets."""

from rnnzoo.data.hf import get_split, load_splits
from rnnzoo.data.language_model import ContiguousChunks, LanguageModelDataModule

__all__ = ["ContiguousChunks", "LanguageModelDataModule", "get_split", "load_splits"]
