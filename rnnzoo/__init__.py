"""rnnzoo: a PyTorch Lightning model zoo of recurrent networks.

The names below are imported on first use (PEP 562): ``import rnnzoo.cli`` or ``from rnnzoo import Classifier``
loads only what it needs, which keeps an inference command's start-up short (the data modules alone
import ``datasets`` and pandas).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rnnzoo._version import __version__

_LAZY = {
    "NTAveraging": "rnnzoo.averaging",
    "RecurrentBackbone": "rnnzoo.cells",
    "build_cell": "rnnzoo.cells",
    "list_cells": "rnnzoo.cells",
    "register_cell": "rnnzoo.cells",
    "Checkpoint": "rnnzoo.checkpointing",
    "AddingProblemDataModule": "rnnzoo.data",
    "CategorySequenceDataModule": "rnnzoo.data",
    "ClassificationDataModule": "rnnzoo.data",
    "ImageCaptionDataModule": "rnnzoo.data",
    "LanguageModelDataModule": "rnnzoo.data",
    "PixelSequenceDataModule": "rnnzoo.data",
    "TaggingDataModule": "rnnzoo.data",
    "TranslationDataModule": "rnnzoo.data",
    "DataState": "rnnzoo.data_state",
    "GenerationConfig": "rnnzoo.decoding",
    "GradientRecorder": "rnnzoo.gradients",
    "GradualUnfreezing": "rnnzoo.hub",
    "LoadPretrained": "rnnzoo.hub",
    "get_model_info": "rnnzoo.hub",
    "list_models": "rnnzoo.hub",
    "load_pretrained": "rnnzoo.hub",
    "models_by_task": "rnnzoo.hub",
    "transfer_weights": "rnnzoo.hub",
    "JsonLinesWriter": "rnnzoo.predictions",
    "Captioner": "rnnzoo.tasks",
    "Classifier": "rnnzoo.tasks",
    "GenerativeTask": "rnnzoo.tasks",
    "LanguageModel": "rnnzoo.tasks",
    "RNNTask": "rnnzoo.tasks",
    "Seq2Seq": "rnnzoo.tasks",
    "SequencePredictor": "rnnzoo.tasks",
    "Tagger": "rnnzoo.tasks",
    "load_task": "rnnzoo.tasks",
    "CharTokenizer": "rnnzoo.tokenizers",
    "PairTokenizer": "rnnzoo.tokenizers",
    "TextTokenizer": "rnnzoo.tokenizers",
    "Tokenizer": "rnnzoo.tokenizers",
    "WordVocabulary": "rnnzoo.tokenizers",
}
"""Public name -> the module that defines it."""

if TYPE_CHECKING:
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
    from rnnzoo.hub import (
        GradualUnfreezing,
        LoadPretrained,
        get_model_info,
        list_models,
        load_pretrained,
        models_by_task,
        transfer_weights,
    )
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


def __getattr__(name: str) -> Any:
    """Import a public name, or a submodule (``rnnzoo.tasks``), on first use."""
    if name not in _LAZY:
        try:
            return importlib.import_module(f"rnnzoo.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"rnnzoo.{name}":
                raise  # the submodule exists; something it imports does not
            raise AttributeError(f"module 'rnnzoo' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    """The public names, imported or not."""
    return sorted([*globals(), *_LAZY])


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
    "models_by_task",
    "register_cell",
    "transfer_weights",
]
