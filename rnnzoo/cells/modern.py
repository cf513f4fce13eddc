"""Cells beyond torch's kernels, on the same layer contract: IndRNN, LayerNorm-LSTM and LayerNorm-GRU.

They train through the whole-sequence autograd function of
:mod:`rnnzoo.cells.recurrence` and report their gates with ``forward_with_gates``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnzoo.cells.recurrence import RecurrentLayer, StateTuple
from rnnzoo.cells.reference import ReferenceBackbone, ReferenceGRULayer, ReferenceLSTMLayer
from rnnzoo.cells.registry import register_cell


class IndRNNLayer(RecurrentLayer):
    """Independently recurrent layer (Li et al. 2018): h_t = relu(W x_t + u * h_{t-1} + b).

    Each neuron only sees its own past through one recurrent weight ``u_j``, clamped
    to ``|u_j| <= recurrent_max`` so no neuron's gradient grows faster than
    ``recurrent_max ** T`` over T steps (the paper's constraint).

    Args:
        input_size: features of each input step.
        hidden_size: neurons.
        recurrent_max: the cap on ``|u|``.
    """

    gate_names = ("pre_activation",)

    def __init__(self, input_size: int, hidden_size: int, recurrent_max: float) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.recurrent_max = recurrent_max
        self.weight_ih_l0 = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(hidden_size))  # the vector u
        self.bias_ih_l0 = nn.Parameter(torch.zeros(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """W ~ Uniform(+-1/sqrt(input_size)), u ~ Uniform(0, min(1, recurrent_max)), b = 0."""
        bound = 1.0 / math.sqrt(self.weight_ih_l0.shape[1])
        nn.init.uniform_(self.weight_ih_l0, -bound, bound)
        nn.init.uniform_(self.weight_hh_l0, 0.0, min(1.0, self.recurrent_max))
        nn.init.zeros_(self.bias_ih_l0)

    def recurrent_weight(self) -> Tensor:
        """``u`` clamped to ``[-recurrent_max, recurrent_max]``."""
        return self.weight_hh_l0.clamp(-self.recurrent_max, self.recurrent_max)

    def project_input(self, inputs: Tensor) -> Tensor:
        """``W x_t + b`` for every step."""
        return F.linear(inputs, self.weight_ih_l0, self.bias_ih_l0)

    def project_state(self, h: Tensor) -> Tensor:
        """``u * h_{t-1}``, element-wise."""
        return self.recurrent_weight() * h

    def cell(self, x_projected: Tensor, h_projected: Tensor, state: StateTuple) -> tuple[StateTuple, StateTuple]:
        """h_t = relu(W x_t + b + u * h_{t-1})."""
        pre_activation = x_projected + h_projected
        return (torch.relu(pre_activation),), (pre_activation,)

    def cell_backward(
        self,
        grad_new_state: StateTuple,
        x_projected: Tensor,
        h_projected: Tensor,
        state: StateTuple,
        new_state: StateTuple,
    ) -> tuple[Tensor, Tensor, StateTuple]:
        """The derivative of relu is ``[h_t > 0]``; h_{t-1} enters only via ``u * h_{t-1}``."""
        (grad_h,), (h,) = grad_new_state, new_state
        grad_pre = grad_h * (h > 0)
        return grad_pre, grad_pre, (torch.zeros_like(h),)

    def recurrent_parameters(self) -> tuple[Tensor, ...]:
        """``(u,)``."""
        return (self.weight_hh_l0,)

    def project_state_backward(self, grad_h_projected: Tensor) -> Tensor:
        """``d(u * h) / dh = u``."""
        return grad_h_projected * self.recurrent_weight()

    def recurrent_parameter_grads(self, grad_h_projected: Tensor, h_previous: Tensor) -> tuple[Tensor, ...]:
        """``dL/du``, zero where the clamp is active."""
        inside = self.weight_hh_l0.abs() <= self.recurrent_max
        return ((grad_h_projected * h_previous).sum(dim=(0, 1)) * inside,)


@register_cell("indrnn")
class IndRNN(ReferenceBackbone):
    """Stacked IndRNN (relu, per-neuron recurrent weights, ``|u| <= recurrent_max``).

    Args:
        recurrent_max: cap on the recurrent weights; default ``2 ** (1 / max_length)``,
            which bounds the growth of a gradient over ``max_length`` steps by 2.
        max_length: the longest dependency to keep trainable (used for the default cap).
        other arguments: see :class:`~rnnzoo.cells.RecurrentBackbone`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        recurrent_max: float | None = None,
        max_length: int = 1000,
    ) -> None:
        if not isinstance(max_length, int) or max_length <= 0:
            raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
        if recurrent_max is not None and not recurrent_max > 0:
            raise ValueError(f"recurrent_max must be positive (a cap on |u|), got {recurrent_max!r}")
        self.recurrent_max = recurrent_max if recurrent_max is not None else 2.0 ** (1.0 / max_length)
        super().__init__(input_size, hidden_size, num_layers, dropout, bidirectional)

    def make_layer(self, input_size: int, hidden_size: int) -> nn.Module:
        """``IndRNNLayer(input_size, hidden_size, recurrent_max)``."""
        return IndRNNLayer(input_size, hidden_size, self.recurrent_max)


class _LayerNormGates:
    """Mixin: layer normalisation of both gate pre-activations, ``LN(W_ih x) + LN(W_hh h)``.

    The gain and shift of the input side's norm play the role of the bias; the
    gate equations are the parent layer's own :meth:`cell`.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size, bias=False)  # type: ignore[call-arg]
        rows = len(self.gate_names) * hidden_size  # type: ignore[attr-defined]
        self.norm_ih = nn.LayerNorm(rows)
        self.norm_hh = nn.LayerNorm(rows, bias=False)

    def project_input(self, inputs: Tensor) -> Tensor:
        """``LN(W_ih x_t)`` for every step (the norm is per step, so it runs once over the sequence)."""
        return self.norm_ih(F.linear(inputs, self.weight_ih_l0))  # type: ignore[attr-defined]

    def cell(self, x_projected: Tensor, h_projected: Tensor, state: StateTuple) -> tuple[StateTuple, StateTuple]:
        """The parent's gate equations on ``LN(W_ih x_t)`` and ``LN(W_hh h_{t-1})``."""
        return super().cell(x_projected, self.norm_hh(h_projected), state)  # type: ignore[misc]

    def cell_parameters(self) -> tuple[Tensor, ...]:
        """The gain of the recurrent side's norm."""
        return (self.norm_hh.weight,)


class LayerNormLSTMLayer(_LayerNormGates, ReferenceLSTMLayer):
    """LSTM layer with layer-normalised gate pre-activations (Ba et al. 2016)."""


class LayerNormGRULayer(_LayerNormGates, ReferenceGRULayer):
    """GRU layer with layer-normalised gate pre-activations (the reset gate scales ``LN(W_hn h)``)."""


@register_cell("layernorm_lstm")
class LayerNormLSTM(ReferenceBackbone):
    """Stacked LayerNorm-LSTM: the LSTM's gates computed from ``LN(W_ih x_t) + LN(W_hh h_{t-1})``."""

    state_names = ("h", "c")
    layer_class = LayerNormLSTMLayer


@register_cell("layernorm_gru")
class LayerNormGRU(ReferenceBackbone):
    """Stacked LayerNorm-GRU: the GRU's gates computed from ``LN(W_ih x_t)`` and ``LN(W_hh h_{t-1})``."""

    layer_class = LayerNormGRULayer
