"""rnnzoo: a PyTorch Lightning model zoo of recurrent networks."""

from rnnzoo._version import __version__
from rnnzoo.cells import RecurrentBackbone, build_cell, list_cells, register_cell
from rnnzoo.data import ClassificationDataModule, LanguageModelDataModule
from rnnzoo.tasks import Classifier, LanguageModel, RNNTask, load_task
from rnnzoo.tokenizers import CharTokenizer, TextTokenizer, Tokenizer

__all__ = [
    "CharTokenizer",
    "ClassificationDataModule",
    "Classifier",
    "LanguageModel",
    "LanguageModelDataModule",
    "RNNTask",
    "RecurrentBackbone",
    "TextTokenizer",
    "Tokenizer",
    "__version__",
    "build_cell",
    "list_cells",
    "load_task",
    "register_cell",
]
