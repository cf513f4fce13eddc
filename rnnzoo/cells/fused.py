"""Fused cells: torch's RNN, LSTM and GRU kernels (oneDNN on CPU, cuDNN on GPU)."""

from __future__ import annotations

from torch import Tensor, nn

from rnnzoo.cells.backbone import ElmanRNN, RecurrentBackbone
from rnnzoo.cells.registry import register_cell


class _FusedLayer:
    """Adapts a single-layer, batch-first torch kernel to the layer contract.

    Parameters keep torch's names (``weight_ih_l0`` ...), so a state dict moves
    unchanged between these layers and the reference ones.
    """

    def forward(self, inputs: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Run the kernel: ``inputs [B, T, I]``, state tensors ``[B, H]``."""
        hx = tuple(tensor.unsqueeze(0) for tensor in state)
        outputs, final = super().forward(inputs, hx if len(hx) > 1 else hx[0])  # type: ignore[misc]
        final = final if isinstance(final, tuple) else (final,)
        return outputs, tuple(tensor.squeeze(0) for tensor in final)


class FusedRNNLayer(_FusedLayer, nn.RNN):
    """One direction of one layer of ``torch.nn.RNN``."""

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        nn.RNN.__init__(self, input_size, hidden_size, nonlinearity=nonlinearity, batch_first=True)


class FusedLSTMLayer(_FusedLayer, nn.LSTM):
    """One direction of one layer of ``torch.nn.LSTM``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        nn.LSTM.__init__(self, input_size, hidden_size, batch_first=True)


class FusedGRULayer(_FusedLayer, nn.GRU):
    """One direction of one layer of ``torch.nn.GRU``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        nn.GRU.__init__(self, input_size, hidden_size, batch_first=True)


@register_cell("rnn")
class FusedRNN(ElmanRNN):
    """Vanilla RNN (``nonlinearity`` tanh or relu) on torch's kernel."""

    layer_class = FusedRNNLayer


@register_cell("lstm")
class FusedLSTM(RecurrentBackbone):
    """LSTM (forget, input, gate and output gates over a cell state) on torch's kernel."""

    state_names = ("h", "c")
    layer_class = FusedLSTMLayer


@register_cell("gru")
class FusedGRU(RecurrentBackbone):
    """GRU (update gate z, reset gate r) on torch's kernel."""

    layer_class = FusedGRULayer
