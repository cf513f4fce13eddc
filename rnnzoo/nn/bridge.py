"""The one state bridge: features of an encoder -> the first state of a recurrent decoder."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class StateBridge(nn.Module):
    """``tanh(W_s x_l)`` for every state tensor ``s`` (``h``; ``h`` and ``c`` for LSTM) of every decoder layer ``l``.

    Seq2seq feeds it the encoder's final state, one feature row per encoder layer (each
    layer's directions side by side); the captioner feeds it its condition vector ``z``
    as a single row. When the numbers of rows and decoder layers differ, the last
    row (the top encoder layer) serves every decoder layer.

    Args:
        input_size: features of each row.
        hidden_size: the decoder's hidden size.
        num_layers: the decoder's layers (one direction: a decoder reads left to right).
        num_states: tensors of the decoder's state (``len(decoder.state_names)``: 2 for LSTM).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, num_states: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.projections = nn.ModuleList(nn.Linear(input_size, hidden_size) for _ in range(num_states))

    def forward(self, features: Tensor) -> Tensor | tuple[Tensor, ...]:
        """``features [rows, B, input_size]`` (or ``[B, input_size]``: one row) -> the decoder state."""
        if features.dim() == 2:
            features = features.unsqueeze(0)
        if features.shape[0] != self.num_layers:
            features = features[-1:].expand(self.num_layers, -1, -1)
        states = tuple(torch.tanh(projection(features)) for projection in self.projections)
        return states[0] if len(states) == 1 else states
