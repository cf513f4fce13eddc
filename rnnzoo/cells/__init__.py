"""Swappable recurrent backbones behind one contract, chosen by name."""

from rnnzoo.cells.backbone import ElmanRNN, RecurrentBackbone, State, map_state
from rnnzoo.cells.fused import FusedGRU, FusedLSTM, FusedRNN
from rnnzoo.cells.minimal import MinGRU, MinLSTM
from rnnzoo.cells.modern import IndRNN, LayerNormGRU, LayerNormLSTM
from rnnzoo.cells.recurrence import RecurrentLayer
from rnnzoo.cells.reference import ReferenceBackbone, ReferenceGRU, ReferenceLSTM, ReferenceRNN
from rnnzoo.cells.registry import build_cell, get_cell_class, list_cells, register_cell

__all__ = [
    "ElmanRNN",
    "FusedGRU",
    "FusedLSTM",
    "FusedRNN",
    "IndRNN",
    "LayerNormGRU",
    "LayerNormLSTM",
    "MinGRU",
    "MinLSTM",
    "RecurrentBackbone",
    "RecurrentLayer",
    "ReferenceBackbone",
    "ReferenceGRU",
    "ReferenceLSTM",
    "ReferenceRNN",
    "State",
    "build_cell",
    "get_cell_class",
    "list_cells",
    "map_state",
    "register_cell",
]
