"""Gate-level reference cells: the textbook equations, one time step at a time.

They use torch's parameter names, shapes and gate order, so given the same
weights they match the fused kernels (outputs, final states and gradients), and
they can return every gate's activation at every step so you can look inside:

    backbone = build_cell("reference_lstm", input_size=8, hidden_size=16)
    outputs, state, gates = backbone.forward_with_gates(inputs)
    gates[0]["forget"]  # [B, T, 16]: layer 0, forward direction

Each layer's :meth:`cell` is the point-wise step, given the input projection
``W_ih x_t + b_ih`` (computed for all steps at once) and the recurrent projection
``W_hh h_{t-1} + b_hh``. Training goes through the whole-sequence autograd
function of :mod:`rnnzoo.cells.recurrence`, which replays these same equations
backwards; ``forward_with_gates`` runs the plain step-by-step loop.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnzoo.cells.backbone import ElmanRNN, RecurrentBackbone, State
from rnnzoo.cells.recurrence import RecurrentLayer, StateTuple
from rnnzoo.cells.registry import register_cell


class ReferenceLayer(RecurrentLayer):
    """A recurrent layer with torch's parameters: ``W_ih x_t + b_ih`` and ``W_hh h_{t-1} + b_hh`` feed the gates.

    Subclasses name their gates (:attr:`gate_names`, in torch's order) and
    implement :meth:`cell`.

    Args:
        input_size: features of each input step.
        hidden_size: features of the hidden state.
        bias: add the biases ``b_ih`` and ``b_hh`` (layers that normalise the projections drop them).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        rows = len(self.gate_names) * hidden_size
        # Named like torch's single-layer kernels so state dicts are interchangeable.
        self.weight_ih_l0 = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(rows)) if bias else None
        self.bias_hh_l0 = nn.Parameter(torch.empty(rows)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(H), 1/sqrt(H)) for the weights and biases, as torch initialises its kernels."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0):
            if parameter is not None:
                nn.init.uniform_(parameter, -bound, bound)

    def project_input(self, inputs: Tensor) -> Tensor:
        """``W_ih x_t + b_ih`` for every step."""
        return F.linear(inputs, self.weight_ih_l0, self.bias_ih_l0)

    def project_state(self, h: Tensor) -> Tensor:
        """``W_hh h_{t-1} + b_hh``."""
        return F.linear(h, self.weight_hh_l0, self.bias_hh_l0)


class ReferenceRNNLayer(ReferenceLayer):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) (or relu)."""

    gate_names = ("pre_activation",)

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        super().__init__(input_size, hidden_size)
        self.activation = torch.tanh if nonlinearity == "tanh" else torch.relu

    def cell(self, x_projected: Tensor, h_projected: Tensor, state: StateTuple) -> tuple[StateTuple, StateTuple]:
        """h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""
        pre_activation = x_projected + h_projected
        return (self.activation(pre_activation),), (pre_activation,)

    def cell_backward(
        self,
        grad_new_state: StateTuple,
        x_projected: Tensor,
        h_projected: Tensor,
        state: StateTuple,
        new_state: StateTuple,
    ) -> tuple[Tensor, Tensor, StateTuple]:
        """dh_t/d(pre-activation) is ``1 - h_t^2`` for tanh, ``[h_t > 0]`` for relu; h_{t-1} enters only via W_hh."""
        (grad_h,), (h,) = grad_new_state, new_state
        grad_pre = grad_h * (1 - h * h) if self.activation is torch.tanh else grad_h * (h > 0)
        return grad_pre, grad_pre, (torch.zeros_like(h),)


class ReferenceLSTMLayer(ReferenceLayer):
    """The LSTM: four gates computed from x_t and h_{t-1}, a cell state c_t that they edit.

    i = sigmoid(.)  input gate: how much of the candidate to write
    f = sigmoid(.)  forget gate: how much of c_{t-1} to keep
    g = tanh(.)     "gate" gate: the candidate values
    o = sigmoid(.)  output gate: how much of the cell to reveal
    c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)
    """

    gate_names = ("input", "forget", "gate", "output")

    def cell(self, x_projected: Tensor, h_projected: Tensor, state: StateTuple) -> tuple[StateTuple, StateTuple]:
        """One LSTM step over ``(h, c)``."""
        _, c = state
        i, f, g, o = (x_projected + h_projected).chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return (h, c), (i, f, g, o)


class ReferenceGRULayer(ReferenceLayer):
    """The GRU: a reset gate r and an update gate z mixing old state and candidate.

    r = sigmoid(.)                              reset gate
    z = sigmoid(.)                              update gate
    n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))   candidate
    h_t = (1 - z) * n + z * h_{t-1}

    This is torch's convention: z near 1 keeps the old state, (1 - z) lets the
    candidate in (some texts swap the roles of z and 1 - z; the model is the same).
    """

    gate_names = ("reset", "update", "candidate")

    def cell(self, x_projected: Tensor, h_projected: Tensor, state: StateTuple) -> tuple[StateTuple, StateTuple]:
        """One GRU step over ``h``."""
        (h,) = state
        x_r, x_z, x_n = x_projected.chunk(3, dim=-1)
        h_r, h_z, h_n = h_projected.chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        return (h,), (r, z, n)

    def cell_backward(
        self,
        grad_new_state: StateTuple,
        x_projected: Tensor,
        h_projected: Tensor,
        state: StateTuple,
        new_state: StateTuple,
    ) -> tuple[Tensor, Tensor, StateTuple]:
        """:meth:`cell`'s chain rule, the gates recomputed from the step's pre-activations.

        Written out because it is faster than replaying :meth:`cell` under autograd (3-10% of a training
        step at H=512 in three side-by-side runs of four; for the LSTM the two were level, so it keeps
        the replay). A LayerNorm-GRU, whose cell has a norm's gain, still replays (see ``_Recurrence``).
        dz = dh_t (h_{t-1} - n), dn = dh_t (1 - z) (1 - n^2), dr = dn (W_hn h + b_hn); the candidate's
        recurrent part is scaled by r, so its gradient is dn r; h_{t-1} gets dh_t z directly and the
        rest through W_hh.
        """
        ((grad_h,), (h_previous,)) = grad_new_state, state
        x_r, x_z, x_n = x_projected.chunk(3, dim=-1)
        h_r, h_z, h_n = h_projected.chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        grad_n = _tanh_backward(grad_h * (1 - z), n)
        grad_r = _sigmoid_backward(grad_n * h_n, r)
        grad_z = _sigmoid_backward(grad_h * (h_previous - n), z)
        grad_x = torch.cat([grad_r, grad_z, grad_n], dim=-1)
        grad_h_projected = torch.cat([grad_r, grad_z, grad_n * r], dim=-1)
        return grad_x, grad_h_projected, (grad_h * z,)


class ReferenceBackbone(RecurrentBackbone):
    """A backbone of :class:`~rnnzoo.cells.recurrence.RecurrentLayer` layers, which can also report its gates."""

    def forward_with_gates(
        self, inputs: Tensor, lengths: Tensor | None = None, state: State | None = None
    ) -> tuple[Tensor, State, list[dict[str, Tensor]]]:
        """Like ``forward``, plus each layer's gates.

        Returns:
            ``(outputs, final_state, gates)`` where ``gates[layer * directions + direction]``
            maps each gate name to its ``[B, T, H]`` activations (zeros at padded steps,
            reverse directions in input order).
        """
        return self._run(inputs, lengths, state, record_gates=True)


@register_cell("reference_rnn")
class ReferenceRNN(ReferenceBackbone, ElmanRNN):
    """Step-by-step vanilla RNN; matches the fused ``rnn`` cell given the same weights."""

    layer_class = ReferenceRNNLayer


@register_cell("reference_lstm")
class ReferenceLSTM(ReferenceBackbone):
    """Step-by-step LSTM; matches the fused ``lstm`` cell given the same weights."""

    state_names = ("h", "c")
    layer_class = ReferenceLSTMLayer


@register_cell("reference_gru")
class ReferenceGRU(ReferenceBackbone):
    """Step-by-step GRU; matches the fused ``gru`` cell given the same weights."""

    layer_class = ReferenceGRULayer


_sigmoid_backward = torch.ops.aten.sigmoid_backward
"""``grad * s * (1 - s)`` from the sigmoid's output ``s``, in one kernel (what autograd itself calls)."""
_tanh_backward = torch.ops.aten.tanh_backward
"""``grad * (1 - t^2)`` from the tanh's output ``t``, in one kernel."""
