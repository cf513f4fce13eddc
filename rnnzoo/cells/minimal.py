"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): gates that read the input only.

Without h_{t-1} in the gates, the recurrence is linear in the state,

    h_t = a_t * h_{t-1} + b_t     (a_t, b_t functions of x_t alone),

so a and b are computed for all steps at once and only this multiply-add runs
over time. Two ways to run it, same numbers (to 1e-5):

* ``"scan"``: the paper's parallel prefix scan in log space, with
  g(x) = x + 0.5 for x >= 0 and sigmoid(x) otherwise (positive, so log g exists):
  ``log h_t = A_t + logcumsumexp_{s <= t}(log b_s - A_s)``, ``A_t = sum_{s <= t} log a_s``;
  a non-zero h_0 adds ``exp(A_t) * h_0`` (linearity), so any initial state works.
  Parallel over time: the choice on a GPU.
* ``"sequential"``: the recurrence one step at a time, as one autograd function
  (:class:`Interpolation`) whose backward is the reverse recurrence. On a CPU
  this is far faster than the scan (whose logcumsumexp costs more than T
  multiply-adds; see benchmarks/README.md).

``mode="auto"`` (the default) picks the scan on accelerators and the loop on the CPU.

minGRU:  z = sigmoid(W_z x),  h~ = g(W_h x),  h_t = (1 - z) * h_{t-1} + z * h~
minLSTM: f = sigmoid(W_f x),  i = sigmoid(W_i x),  h~ = g(W_h x),
         f' = f / (f + i),  i' = i / (f + i),  h_t = f' * h_{t-1} + i' * h~
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnzoo.cells.backbone import RecurrentBackbone
from rnnzoo.cells.registry import register_cell

Mode = Literal["auto", "scan", "sequential"]
MODES = ("auto", "scan", "sequential")


def g(x: Tensor) -> Tensor:
    """The paper's positive activation: ``x + 0.5`` for ``x >= 0``, ``sigmoid(x)`` below.

    Written as ``sigmoid(min(x, 0)) + max(x, 0)`` (the same function, no ``torch.where``,
    which costs more than the rest of the cell on a CPU).
    """
    return torch.sigmoid(x.clamp(max=0)) + x.clamp(min=0)


def g_backward(grad: Tensor, g_of_x: Tensor, out: Tensor | None = None) -> Tensor:
    """``grad * g'(x)``, read back from ``g(x)``: ``s (1 - s)`` with ``s = min(g, 0.5)``, plus 1 where ``g > 0.5``.

    The same numbers as autograd through :func:`g` except at exactly x = 0, where this takes the
    left derivative 0.25 (autograd through both clamps would add both sides); three passes.
    """
    sigmoid_part = torch.ops.aten.sigmoid_backward(grad, g_of_x.clamp(max=0.5))
    linear_part = torch.ops.aten.threshold_backward(grad, g_of_x, 0.5)  # grad where g > 0.5, else 0
    return torch.add(sigmoid_part, linear_part, alpha=0.75, out=out)  # 0.25 of it is in the sigmoid part


class GateMath(torch.autograd.Function):
    """A layer's :meth:`MinimalLayer.interpolation` with its hand-written backward, as one autograd node.

    Autograd through the gate formulas would split the gradient by ``chunk`` and glue it back
    with a copy, and keep every intermediate; here each gate's gradient is written straight into
    its slice of one contiguous ``[B, T, G*H]`` tensor, the layout the input projection's
    backward matmul wants.
    """

    @staticmethod
    def forward(ctx: Any, layer: MinimalLayer, projected: Tensor) -> tuple[Tensor, Tensor]:
        """``(w, v)`` of every step."""
        w, v = layer.interpolation(projected)
        ctx.layer = layer
        ctx.save_for_backward(projected, w, v)
        return w, v

    @staticmethod
    def backward(ctx: Any, grad_w: Tensor, grad_v: Tensor) -> Any:
        """The gradient for ``projected``."""
        projected, w, v = ctx.saved_tensors
        grad = torch.empty_like(projected)
        ctx.layer.interpolation_backward(projected, w, v, grad_w, grad_v, out=grad.chunk(len(ctx.layer.gate_names), -1))
        return None, grad


def log_g(x: Tensor) -> Tensor:
    """``log(g(x))``: ``log(x + 0.5)`` for ``x >= 0``, ``-softplus(-x)`` below, without logs of small numbers."""
    return torch.log(F.relu(x) + 0.5) - F.softplus(-x.clamp(max=0)) + math.log(2.0)


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


class Interpolation(torch.autograd.Function):
    """``h_t = h_{t-1} + w_t * (v_t - h_{t-1})`` (a lerp) over ``w, v [B, T, H]`` from ``h0 [B, H]``, as one node.

    Both cells are this recurrence (minGRU: ``w = z``; minLSTM: ``w = i'``), the linear
    ``h_t = a_t h_{t-1} + b_t`` with ``a = 1 - w`` and ``b = w v``, one ``torch.lerp`` per step
    and no ``a`` or ``b`` in memory. The backward runs the reverse recurrence
    ``lambda_t = dL/dh_t + (1 - w_{t+1}) lambda_{t+1}`` (the total gradient reaching h_t); then
    ``dL/dv_t = lambda_t w_t`` and ``dL/dw_t = lambda_t (v_t - h_{t-1})`` for all steps at once.
    """

    @staticmethod
    def forward(ctx: Any, w: Tensor, v: Tensor, h0: Tensor) -> Tensor:
        """All states ``[B, T, H]``."""
        outputs, h = torch.empty_like(v), h0
        for t in range(v.shape[1]):
            h = torch.lerp(h, v[:, t], w[:, t], out=outputs[:, t])
        ctx.save_for_backward(w, v, outputs, h0)
        return outputs

    @staticmethod
    def backward(ctx: Any, grad_outputs: Tensor) -> Any:
        """Gradients for ``w``, ``v`` and ``h0``."""
        w, v, outputs, h0 = ctx.saved_tensors
        total = torch.empty_like(outputs)
        carried = torch.zeros_like(h0)  # (1 - w_{t+1}) * lambda_{t+1}
        for t in reversed(range(v.shape[1])):
            lam = torch.add(grad_outputs[:, t], carried, out=total[:, t])
            carried = torch.addcmul(lam, w[:, t], lam, value=-1)
        grad_w = torch.empty_like(v)  # lambda_t * (v_t - h_{t-1})
        torch.sub(v[:, 1:], outputs[:, :-1], out=grad_w[:, 1:])
        torch.sub(v[:, 0], h0, out=grad_w[:, 0])
        return grad_w.mul_(total), total.mul_(w), carried


class MinimalLayer(nn.Module):
    """One direction of one minGRU/minLSTM layer: an input projection, then a linear recurrence.

    Subclasses compute the recurrence ``h_t = a_t * h_{t-1} + b_t`` from the projected inputs,
    as an interpolation ``a = 1 - w``, ``b = w * v`` (:meth:`interpolation`, the sequential
    loop) and as log coefficients (:meth:`log_coefficients`, the scan).

    Args:
        input_size: features of each input step.
        hidden_size: features of the hidden state.
        mode: ``"scan"`` (parallel, log space), ``"sequential"`` (one step at a time) or
            ``"auto"`` (the scan on accelerators, sequential on the CPU).
    """

    gate_names: ClassVar[tuple[str, ...]]

    def __init__(self, input_size: int, hidden_size: int, mode: Mode = "auto") -> None:
        super().__init__()
        self.mode = check_mode(mode)
        self.linear = nn.Linear(input_size, len(self.gate_names) * hidden_size)

    def interpolation(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        """``(w, v)`` of every step from the projected inputs ``[B, T, G*H]``: h_t = lerp(h_{t-1}, v_t, w_t)."""
        raise NotImplementedError

    def interpolation_backward(
        self, projected: Tensor, w: Tensor, v: Tensor, grad_w: Tensor, grad_v: Tensor, out: tuple[Tensor, ...]
    ) -> None:
        """Write the gradient of each gate's pre-activation into ``out`` (one ``[B, T, H]`` slice per gate)."""
        raise NotImplementedError

    def log_coefficients(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        """``(log a, log b)`` of every step, computed without taking logs of small numbers."""
        raise NotImplementedError

    def forward(self, inputs: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Run ``inputs [B, T, I]`` from ``state = (h0,)``: ``(outputs [B, T, H], (h_T,))``."""
        projected = self.linear(inputs)
        (h0,) = state
        scan = self.mode == "scan" or (self.mode == "auto" and inputs.device.type != "cpu")
        if scan and inputs.shape[1] > 1:
            outputs = log_space_scan(*self.log_coefficients(projected), h0)
        else:
            w, v = GateMath.apply(self, projected)
            # lerp wants one dtype; under autocast the state h0 may be float32 and v bf16
            outputs = Interpolation.apply(w.to(v.dtype), v, h0.to(v.dtype))
        return outputs, (outputs[:, -1],)


class MinGRULayer(MinimalLayer):
    """minGRU: h_t = (1 - z_t) * h_{t-1} + z_t * g(W_h x_t), z_t = sigmoid(W_z x_t)."""

    gate_names = ("update", "candidate")

    def interpolation(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        """``w = z = sigmoid(k)``, ``v = g(candidate)``: h_t = (1 - z) * h_{t-1} + z * g(candidate)."""
        k, candidate = projected.chunk(2, dim=-1)
        return torch.sigmoid(k), g(candidate)

    def interpolation_backward(
        self, projected: Tensor, w: Tensor, v: Tensor, grad_w: Tensor, grad_v: Tensor, out: tuple[Tensor, ...]
    ) -> None:
        """``dk = dz * z (1 - z)``, ``dcandidate = dv * g'(candidate)``."""
        grad_k, grad_candidate = out
        torch.ops.aten.sigmoid_backward(grad_w, w, grad_input=grad_k)
        g_backward(grad_v, v, out=grad_candidate)

    def log_coefficients(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        """``log(1 - z) = -softplus(k)``, ``log(z * g(.)) = -softplus(-k) + log g(.)``."""
        k, candidate = projected.chunk(2, dim=-1)
        return -F.softplus(k), -F.softplus(-k) + log_g(candidate)


class MinLSTMLayer(MinimalLayer):
    """minLSTM: h_t = f'_t * h_{t-1} + i'_t * g(W_h x_t), with f', i' the normalised forget and input gates."""

    gate_names = ("forget", "input", "candidate")

    def interpolation(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        """``w = i' = i / (f + i)`` (so ``1 - w = f'``), ``v = g(candidate)``."""
        f, i, candidate = projected.chunk(3, dim=-1)
        f, i = torch.sigmoid(f), torch.sigmoid(i)
        return i / (f + i), g(candidate)

    def interpolation_backward(
        self, projected: Tensor, w: Tensor, v: Tensor, grad_w: Tensor, grad_v: Tensor, out: tuple[Tensor, ...]
    ) -> None:
        """With ``w = i / (f + i)``: ``dw/df = -w / (f + i)``, ``dw/di = (1 - w) / (f + i)``; then the sigmoids'."""
        grad_f, grad_i, grad_candidate = out
        f, i = (
            torch.sigmoid(projected[..., : w.shape[-1]]),
            torch.sigmoid(projected[..., w.shape[-1] : 2 * w.shape[-1]]),
        )
        scaled = grad_w / (f + i)
        torch.ops.aten.sigmoid_backward(scaled * w, f, grad_input=grad_f).neg_()
        torch.ops.aten.sigmoid_backward(scaled.mul_(1 - w), i, grad_input=grad_i)
        g_backward(grad_v, v, out=grad_candidate)

    def log_coefficients(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        """``log f' = -softplus(d)``, ``log i' = -softplus(-d)`` with ``d = log i - log f``; plus ``log g(.)``."""
        f, i, candidate = projected.chunk(3, dim=-1)
        difference = F.softplus(-f) - F.softplus(-i)  # log sigmoid(i) - log sigmoid(f)
        return -F.softplus(difference), -F.softplus(-difference) + log_g(candidate)


def check_mode(mode: str) -> Mode:
    """Return ``mode`` if it is one of :data:`MODES`, else raise a ValueError naming them."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(repr(m) for m in MODES)}, got {mode!r}")
    return mode  # type: ignore[return-value]


class _MinimalBackbone(RecurrentBackbone):
    """Stacked minimal layers; ``mode`` picks the parallel scan or the sequential loop (see the module docstring)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        mode: Mode = "auto",
    ) -> None:
        self.mode = check_mode(mode)
        super().__init__(input_size, hidden_size, num_layers, dropout, bidirectional)

    def make_layer(self, input_size: int, hidden_size: int) -> nn.Module:
        """``layer_class(input_size, hidden_size, mode)``."""
        return self.layer_class(input_size, hidden_size, self.mode)

    def set_mode(self, mode: Mode) -> None:
        """Switch every layer between the parallel scan and the sequential loop (same weights)."""
        self.mode = check_mode(mode)
        for directions in self.layers:
            for layer in directions:
                layer.mode = mode


@register_cell("mingru")
class MinGRU(_MinimalBackbone):
    """Stacked minGRU: a linear recurrence whose gates read the input only."""

    layer_class = MinGRULayer


@register_cell("minlstm")
class MinLSTM(_MinimalBackbone):
    """Stacked minLSTM: a linear recurrence with normalised forget and input gates that read the input only."""

    layer_class = MinLSTMLayer
