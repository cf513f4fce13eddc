"""rnnzoo: a PyTorch Lightning model zoo of recurrent networks."""

from rnnzoo._version import __version__
from rnnzoo.cells import RecurrentBackbone, build_cell, list_cells, register_cell
from rnnzoo.data import ClassificationDataModule, LanguageModelDataModule, TranslationDataModule
from rnnzoo.tasks import Classifier, LanguageModel, RNNTask, Seq2Seq, load_task
from rnnzoo.tokenizers import CharTokenizer, PairTokenizer, TextTokenizer, Tokenizer

__all__ = [
    "CharTokenizer",
    "ClassificationDataModule",
    "Classifier",
    "LanguageModel",
    "LanguageModelDataModule",
    "PairTokenizer",
    "RNNTask",
    "RecurrentBackbone",
    "Seq2Seq",
    "TextTokenizer",
    "Tokenizer",
    "TranslationDataModule",
    "__version__",
    "build_cell",
    "list_cells",
    "load_task",
    "register_cell",
]
