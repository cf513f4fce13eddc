"""rnnzoo: a PyTorch Lightning model zoo of recurrent networks."""

from rnnzoo._version import __version__
from rnnzoo.cells import RecurrentBackbone, build_cell, list_cells, register_cell
from rnnzoo.data import (
    CategorySequenceDataModule,
    ClassificationDataModule,
    ImageCaptionDataModule,
    LanguageModelDataModule,
    TranslationDataModule,
)
from rnnzoo.gradients import GradientRecorder
from rnnzoo.hub import LoadPretrained, get_model_info, list_models, load_pretrained, transfer_weights
from rnnzoo.tasks import Captioner, Classifier, LanguageModel, RNNTask, Seq2Seq, load_task
from rnnzoo.tokenizers import CharTokenizer, PairTokenizer, TextTokenizer, Tokenizer

__all__ = [
    "Captioner",
    "CategorySequenceDataModule",
    "CharTokenizer",
    "ClassificationDataModule",
    "Classifier",
    "GradientRecorder",
    "ImageCaptionDataModule",
    "LanguageModel",
    "LanguageModelDataModule",
    "LoadPretrained",
    "PairTokenizer",
    "RNNTask",
    "RecurrentBackbone",
    "Seq2Seq",
    "TextTokenizer",
    "Tokenizer",
    "TranslationDataModule",
    "__version__",
    "build_cell",
    "get_model_info",
    "list_cells",
    "list_models",
    "load_pretrained",
    "load_task",
    "register_cell",
    "transfer_weights",
]
