"""rnnzoo: a PyTorch Lightning model zoo of recurrent networks."""

from rnnzoo._version import __version__
from rnnzoo.cells import RecurrentBackbone, build_cell, list_cells, register_cell
from rnnzoo.data import ClassificationDataModule, LanguageModelDataModule, TaggingDataModule
from rnnzoo.tasks import Classifier, LanguageModel, RNNTask, Tagger, load_task
from rnnzoo.tokenizers import CharTokenizer, TextTokenizer, Tokenizer, WordVocabulary

__all__ = [
    "CharTokenizer",
    "ClassificationDataModule",
    "Classifier",
    "LanguageModel",
    "LanguageModelDataModule",
    "RNNTask",
    "RecurrentBackbone",
    "Tagger",
    "TaggingDataModule",
    "TextTokenizer",
    "Tokenizer",
    "WordVocabulary",
    "__version__",
    "build_cell",
    "list_cells",
    "load_task",
    "register_cell",
]
