"""Fused cells: torch's RNN, LSTM and GRU kernels (oneDNN on CPU, cuDNN on GPU).

Each layer and direction is its own single-layer torch module, so padding and the
reverse direction can be handled exactly (:class:`~rnnzoo.cells.RecurrentBackbone`).
When no sequence of a batch is padded, on the CPU, the whole stack runs in one call
of torch's multi-layer kernel instead (the same call as ``nn.LSTM(num_layers=L)``),
with the layers' own weights: same parameters, same results, less per-call work.
"""

from __future__ import annotations

import torch
from torch import _VF, Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnzoo.cells.backbone import ElmanRNN, RecurrentBackbone, State
from rnnzoo.cells.registry import register_cell
from rnnzoo.nn.masking import reverse_padded


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


_KERNELS = {"RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu, "LSTM": _VF.lstm, "GRU": _VF.gru}
_LAYER_CLASSES = (FusedRNNLayer, FusedLSTMLayer, FusedGRULayer)


class _StackedKernel:
    """Runs an unpadded batch through all layers and directions in one call of torch's kernel.

    Only when every layer is a plain fused layer of one kind (no subclass, no hooks),
    the inputs are on the CPU and the dropout is ``nn.Dropout``; otherwise the
    backbone goes layer by layer. Weights are passed in torch's order (layer, then
    direction, then ``w_ih, w_hh, b_ih, b_hh``) and the kernel drops out every
    layer's outputs but the last, as the layer-by-layer path does.
    """

    def _run_stacked(self, inputs: Tensor, states: tuple[Tensor, ...]) -> tuple[Tensor, State] | None:
        """One kernel call for the whole stack, or None when the layer-by-layer path must run."""
        backbone: RecurrentBackbone = self  # type: ignore[assignment]
        layers = [layer for directions in backbone.layers for layer in directions]
        kind = type(layers[0])
        if (
            not inputs.is_cpu
            or kind not in _LAYER_CLASSES
            or type(backbone.dropout) is not nn.Dropout
            or any(type(layer) is not kind or layer.mode != layers[0].mode for layer in layers)
            or any(layer._forward_hooks or layer._forward_pre_hooks for layer in layers)
        ):
            return None
        weights = []
        for layer in layers:
            layer._update_flat_weights()  # as nn.RNNBase.forward does (e.g. under torch.func.functional_call)
            weights.extend(layer._flat_weights)
        dropout = backbone.dropout
        outputs, *final = _KERNELS[layers[0].mode](
            inputs,
            states if len(states) > 1 else states[0],
            weights,
            True,  # has_biases
            backbone.num_layers,
            dropout.p,
            dropout.training,
            backbone.bidirectional,
            True,  # batch_first
        )
        return outputs, tuple(final) if len(final) > 1 else final[0]

    def _run_exported(self, inputs: Tensor, lengths: Tensor | None, states: tuple[Tensor, ...]) -> tuple[Tensor, State]:
        """Every layer and direction over a packed batch, which ONNX export turns into its recurrent operators.

        ONNX's ``LSTM`` / ``GRU`` / ``RNN`` read the real lengths (``sequence_lens``): each row stops at
        its last real step, as on the layer-by-layer path, for any batch and number of steps. The
        reverse direction reads each row reversed within its length.
        """
        backbone: RecurrentBackbone = self  # type: ignore[assignment]
        layer_input, finals = inputs, []
        for index, directions in enumerate(backbone.layers):
            if index > 0:
                layer_input = backbone.dropout(layer_input)
            outputs = []
            for direction, layer in enumerate(directions):
                position = index * backbone.num_directions + direction
                start = tuple(state[position : position + 1] for state in states)
                sequence = reverse_padded(layer_input, lengths) if direction else layer_input
                output, final = _packed_layer(layer, sequence, lengths, start)
                outputs.append(reverse_padded(output, lengths) if direction else output)
                finals.append(final)
            layer_input = torch.cat(outputs, dim=-1)
        final_state = tuple(torch.cat([final[k] for final in finals]) for k in range(len(states)))
        return layer_input, final_state if len(final_state) > 1 else final_state[0]


def _packed_layer(
    layer: nn.RNNBase, inputs: Tensor, lengths: Tensor | None, state: tuple[Tensor, ...]
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Torch's own kernel of one layer over ``inputs [B, T, I]`` packed by ``lengths``; state ``[1, B, H]`` tensors."""
    kernel = super(_FusedLayer, layer).forward  # torch's nn.RNN / LSTM / GRU forward, past the adapter
    hx = state if len(state) > 1 else state[0]
    if lengths is None:
        outputs, final = kernel(inputs, hx)
    else:
        packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
        outputs, final = kernel(packed, hx)
        outputs = pad_packed_sequence(outputs, batch_first=True, total_length=inputs.shape[1])[0]
    return outputs, final if isinstance(final, tuple) else (final,)


@register_cell("rnn")
class FusedRNN(_StackedKernel, ElmanRNN):
    """Vanilla RNN (``nonlinearity`` tanh or relu) on torch's kernel."""

    layer_class = FusedRNNLayer


@register_cell("lstm")
class FusedLSTM(_StackedKernel, RecurrentBackbone):
    """LSTM (forget, input, gate and output gates over a cell state) on torch's kernel."""

    state_names = ("h", "c")
    layer_class = FusedLSTMLayer


@register_cell("gru")
class FusedGRU(_StackedKernel, RecurrentBackbone):
    """GRU (update gate z, reset gate r) on torch's kernel."""

    layer_class = FusedGRULayer
