"""rnnzoo: a PyTorch Lightning model zoo of recurrent networks."""

from rnnzoo._version import __version__
from rnnzoo.averaging import NTAveraging
from rnnzoo.cells import RecurrentBackbone, build_cell, list_cells, register_cell
from rnnzoo.checkpointing import Checkpoint
from rnnzoo.data import (
    AddingProblemDataModule,
    CategorySequenceDataModule,
    ClassificationDataModule,
    ImageCaptionDataModule,
    LanguageModelDataModule,
    PixelSequenceDataModule,
    TaggingDataModule,
    TranslationDataModule,
)
from rnnzoo.data_state import DataState
from rnnzoo.decoding import GenerationConfig
from rnnzoo.gradients import GradientRecorder
from rnnzoo.hub import GradualUnfreezing, LoadPretrained, get_model_info, list_models, load_pretrained, transfer_weights
from rnnzoo.predictions import JsonLinesWriter
from rnnzoo.tasks import (
    Captioner,
    Classifier,
    GenerativeTask,
    LanguageModel,
    RNNTask,
    Seq2Seq,
    SequencePredictor,
    Tagger,
    load_task,
)
from rnnzoo.tokenizers import CharTokenizer, PairTokenizer, TextTokenizer, Tokenizer, WordVocabulary

__all__ = [
    "AddingProblemDataModule",
    "Captioner",
    "CategorySequenceDataModule",
    "CharTokenizer",
    "Checkpoint",
    "ClassificationDataModule",
    "Classifier",
    "DataState",
    "GenerationConfig",
    "GenerativeTask",
    "GradientRecorder",
    "GradualUnfreezing",
    "ImageCaptionDataModule",
    "JsonLinesWriter",
    "LanguageModel",
    "LanguageModelDataModule",
    "LoadPretrained",
    "NTAveraging",
    "PairTokenizer",
    "PixelSequenceDataModule",
    "RNNTask",
    "RecurrentBackbone",
    "Seq2Seq",
    "SequencePredictor",
    "Tagger",
    "TaggingDataModule",
    "TextTokenizer",
    "Tokenizer",
    "TranslationDataModule",
    "WordVocabulary",
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
