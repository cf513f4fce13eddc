"""rnnzoo: a PyTorch Lightning model zoo of recurrent networks."""

from rnnzoo._version import __version__
from rnnzoo.cells import RecurrentBackbone, build_cell, list_cells, register_cell
from rnnzoo.data import LanguageModelDataModule
from rnnzoo.gradients import GradientRecorder
from rnnzoo.tasks import LanguageModel, RNNTask, load_task
from rnnzoo.tokenizers import CharTokenizer

__all__ = [
    "CharTokenizer",
    "GradientRecorder",
    "LanguageModel",
    "LanguageModelDataModule",
    "RNNTask",
    "RecurrentBackbone",
    "__version__",
    "build_cell",
    "list_cells",
    "load_task",
    "register_cell",
]
