"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): gates that read the input only.

Without h_{t-1} in the gates, the recurrence is linear in the state,

    h_t = a_t * h_{t-1} + b_t     (a_t, b_t functions of x_t alone),

so a whole sequence is a prefix scan instead of a loop. It is computed in log
space for stability, with the paper's g(x) = x + 0.5 for x >= 0 and sigmoid(x)
otherwise (positive, so log g exists):

    log h_t = A_t + logcumsumexp_{s <= t}(log b_s - A_s),   A_t = sum_{s <= t} log a_s

and a non-zero h_0 adds exp(A_t) * h_0 (linearity), so any initial state works.
``step`` and one-step sequences run the same recurrence directly; the two modes
agree to float precision (the scan accumulates in float64, see :func:`log_space_scan`).

minGRU:  z = sigmoid(W_z x),  h~ = g(W_h x),  h_t = (1 - z) * h_{t-1} + z * h~
minLSTM: f = sigmoid(W_f x),  i = sigmoid(W_i x),  h~ = g(W_h x),
         f' = f / (f + i),  i' = i / (f + i),  h_t = f' * h_{t-1} + i' * h~
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnzoo.cells.backbone import RecurrentBackbone
from rnnzoo.cells.registry import register_cell

Mode = Literal["scan", "sequential"]


def g(x: Tensor) -> Tensor:
    """The paper's positive activation: ``x + 0.5`` for ``x >= 0``, ``sigmoid(x)`` below."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """``log(g(x))`` computed without taking the log of a small number."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def log_space_scan(log_a: Tensor, log_b: Tensor, h0: Tensor) -> Tensor:
    """All states of h_t = a_t * h_{t-1} + b_t from ``log a``, ``log b`` ``[B, T, H]`` and ``h0 [B, H]``.

    Raises:
        ValueError: when ``log a``, ``log b`` or ``h0`` hold NaN or inf (from non-finite inputs).
    """
    for name, tensor in (("log a", log_a), ("log b", log_b), ("h0", h0)):
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"the log-space scan got NaN or inf in {name}: a minGRU/minLSTM layer needs finite inputs "
                "and state. Check the inputs (or the layer below, or the state passed in) for NaN or inf."
            )
    # In float64: A_t sums t log-gates, and log h_t = A_t + (...) cancels it again, so in float32
    # the rounding of A_t (about 1e-3 at |A_t| = 1e4) would become the relative error of h_t.
    a_star = torch.cumsum(log_a.double(), dim=1)
    log_h = a_star + torch.logcumsumexp(log_b.double() - a_star, dim=1)
    return (torch.exp(log_h) + torch.exp(a_star) * h0.unsqueeze(1)).to(log_b.dtype)


class MinimalLayer(nn.Module):
    """One direction of one minGRU/minLSTM layer: an input projection, then a linear recurrence.

    Subclasses compute ``log a`` and ``log b`` of the recurrence ``h_t = a_t * h_{t-1} + b_t``
    from the projected inputs (:meth:`log_coefficients`), and the same step without logs
    (:meth:`step`).

    Args:
        input_size: features of each input step.
        hidden_size: features of the hidden state.
        mode: ``"scan"`` (parallel, log space) or ``"sequential"`` (a loop over :meth:`step`);
            one-step sequences always run sequentially.
    """

    gate_names: ClassVar[tuple[str, ...]]

    def __init__(self, input_size: int, hidden_size: int, mode: Mode = "scan") -> None:
        super().__init__()
        if mode not in ("scan", "sequential"):
            raise ValueError(f"mode must be 'scan' or 'sequential', got {mode!r}")
        self.mode = mode
        self.linear = nn.Linear(input_size, len(self.gate_names) * hidden_size)

    def log_coefficients(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        """``(log a, log b)`` of every step from the projected inputs ``[B, T, G*H]``."""
        raise NotImplementedError

    def step(self, projected_t: Tensor, h: Tensor) -> Tensor:
        """One step ``h_{t-1} -> h_t`` from the projected input ``[B, G*H]``."""
        raise NotImplementedError

    def forward(self, inputs: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Run ``inputs [B, T, I]`` from ``state = (h0,)``: ``(outputs [B, T, H], (h_T,))``."""
        projected = self.linear(inputs)
        (h,) = state
        if self.mode == "scan" and inputs.shape[1] > 1:
            outputs = log_space_scan(*self.log_coefficients(projected), h)
            return outputs, (outputs[:, -1],)
        outputs = []
        for t in range(inputs.shape[1]):
            h = self.step(projected[:, t], h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h,)


class MinGRULayer(MinimalLayer):
    """minGRU: h_t = (1 - z_t) * h_{t-1} + z_t * g(W_h x_t), z_t = sigmoid(W_z x_t)."""

    gate_names = ("update", "candidate")

    def log_coefficients(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        """``log(1 - z) = -softplus(k)``, ``log(z * h~) = -softplus(-k) + log g(.)``."""
        k, candidate = projected.chunk(2, dim=-1)
        return -F.softplus(k), -F.softplus(-k) + log_g(candidate)

    def step(self, projected_t: Tensor, h: Tensor) -> Tensor:
        """``(1 - z) * h + z * g(candidate)``."""
        k, candidate = projected_t.chunk(2, dim=-1)
        z = torch.sigmoid(k)
        return (1 - z) * h + z * g(candidate)


class MinLSTMLayer(MinimalLayer):
    """minLSTM: h_t = f'_t * h_{t-1} + i'_t * g(W_h x_t), with f', i' the normalised forget and input gates."""

    gate_names = ("forget", "input", "candidate")

    def log_coefficients(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        """``log f' = -softplus(d)``, ``log i' = -softplus(-d) + log g(.)`` with ``d = log i - log f``."""
        f, i, candidate = projected.chunk(3, dim=-1)
        difference = F.softplus(-f) - F.softplus(-i)  # log sigmoid(i) - log sigmoid(f)
        return -F.softplus(difference), -F.softplus(-difference) + log_g(candidate)

    def step(self, projected_t: Tensor, h: Tensor) -> Tensor:
        """``f' * h + i' * g(candidate)``."""
        f, i, candidate = projected_t.chunk(3, dim=-1)
        f, i = torch.sigmoid(f), torch.sigmoid(i)
        return (f * h + i * g(candidate)) / (f + i)


class _MinimalBackbone(RecurrentBackbone):
    """Stacked minimal layers; ``mode`` picks the parallel scan or the sequential loop for training."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        mode: Mode = "scan",
    ) -> None:
        if mode not in ("scan", "sequential"):
            raise ValueError(f"mode must be 'scan' or 'sequential', got {mode!r}")
        self.mode = mode
        super().__init__(input_size, hidden_size, num_layers, dropout, bidirectional)

    def make_layer(self, input_size: int, hidden_size: int) -> nn.Module:
        """``layer_class(input_size, hidden_size, mode)``."""
        return self.layer_class(input_size, hidden_size, self.mode)

    def set_mode(self, mode: Mode) -> None:
        """Switch every layer between the parallel scan and the sequential loop (same weights)."""
        if mode not in ("scan", "sequential"):
            raise ValueError(f"mode must be 'scan' or 'sequential', got {mode!r}")
        self.mode = mode
        for directions in self.layers:
            for layer in directions:
                layer.mode = mode


@register_cell("mingru")
class MinGRU(_MinimalBackbone):
    """Stacked minGRU; trains as a parallel scan, generates step by step."""

    layer_class = MinGRULayer


@register_cell("minlstm")
class MinLSTM(_MinimalBackbone):
    """Stacked minLSTM; trains as a parallel scan, generates step by step."""

    layer_class = MinLSTMLayer
