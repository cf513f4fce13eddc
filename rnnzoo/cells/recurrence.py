"""The layer contract of the cells we write ourselves, and the fast way to train them.

A recurrent layer splits one step into three parts:

* ``project_input(inputs)``: everything that depends on the input only,
  computed for all steps at once (one big matmul, not one per step);
* ``project_state(h)``: the recurrent projection of the previous hidden state
  (``W_hh h + b_hh``; IndRNN's ``u * h + b``);
* ``cell(x_projected, h_projected, state)``: the point-wise gate equations,
  written out as in the textbook, returning the new state and the gates.

:meth:`RecurrentLayer.forward` runs them two ways. Asked for the gates, it is a
plain Python loop under autograd (readable, slow). Otherwise it calls
:class:`_Recurrence`, an autograd function over the whole sequence: the forward
loop runs without building a graph, and the backward loop replays one step at a
time (``torch.autograd.grad`` of ``cell``, so no derivative need be written by
hand; a cell may supply one, :meth:`RecurrentLayer.cell_backward`),
pushes the gradient through the recurrent projection, and computes the
recurrent weights' gradients at the end in one matmul over all steps. This
keeps a hand-written LSTM within reach of torch's fused kernel on CPU.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

StateTuple = tuple[Tensor, ...]


class RecurrentLayer(nn.Module):
    """One direction of one recurrent layer: input projection, recurrent projection, point-wise cell.

    Subclasses name their gates (:attr:`gate_names`) and implement
    :meth:`project_input`, :meth:`project_state` and :meth:`cell`; layers whose
    recurrent projection is not ``F.linear(h, weight_hh_l0, bias_hh_l0)`` also
    override :meth:`recurrent_parameters`, :meth:`project_state_backward` and
    :meth:`recurrent_parameter_grads`. Parameters used inside :meth:`cell` (for
    example a layer norm's gain) are listed by :meth:`cell_parameters`.
    """

    gate_names: ClassVar[tuple[str, ...]]

    def project_input(self, inputs: Tensor) -> Tensor:
        """The input-only part of every step, for all steps at once: ``[B, T, I] -> [B, T, G*H]``."""
        raise NotImplementedError

    def project_state(self, h: Tensor) -> Tensor:
        """The recurrent projection of the previous hidden state ``h [B, H]``."""
        raise NotImplementedError

    def cell(self, x_projected: Tensor, h_projected: Tensor, state: StateTuple) -> tuple[StateTuple, StateTuple]:
        """One step's point-wise equations: ``(new state, gate activations)``."""
        raise NotImplementedError

    def cell_backward(
        self,
        grad_new_state: StateTuple,
        x_projected: Tensor,
        h_projected: Tensor,
        state: StateTuple,
        new_state: StateTuple,
    ) -> tuple[Tensor, Tensor, StateTuple] | None:
        """Optional hand-written derivative of :meth:`cell`, used only when :meth:`cell_parameters` is empty.

        Returns the gradients w.r.t. ``(x_projected, h_projected, state)`` given the gradient
        w.r.t. the new state, or None (the default): the backward then replays :meth:`cell`
        under autograd. Worth writing where autograd's per-step overhead (a forward replay and a
        graph per step) is a large part of the step; the tests check each one against the replay.
        """
        return None

    def recurrent_parameters(self) -> tuple[Tensor, ...]:
        """The parameters of :meth:`project_state` (default ``weight_hh_l0`` and ``bias_hh_l0`` if any)."""
        bias = getattr(self, "bias_hh_l0", None)
        return (self.weight_hh_l0,) if bias is None else (self.weight_hh_l0, bias)

    def cell_parameters(self) -> tuple[Tensor, ...]:
        """Parameters used inside :meth:`cell` (none by default)."""
        return ()

    def project_state_backward(self, grad_h_projected: Tensor) -> Tensor:
        """Gradient through :meth:`project_state` to ``h``: ``grad [B, G*H] -> [B, H]``."""
        return grad_h_projected @ self.weight_hh_l0

    def recurrent_parameter_grads(self, grad_h_projected: Tensor, h_previous: Tensor) -> tuple[Tensor, ...]:
        """Gradients of :meth:`recurrent_parameters` from all steps at once.

        Args:
            grad_h_projected: ``[T, B, G*H]`` gradient of every step's recurrent projection.
            h_previous: ``[T, B, H]`` the hidden state each step read.
        """
        grad = grad_h_projected.reshape(-1, grad_h_projected.shape[-1])
        grads = (grad.t() @ h_previous.reshape(-1, h_previous.shape[-1]),)
        return grads if len(self.recurrent_parameters()) == 1 else (*grads, grad.sum(0))

    def forward(
        self, inputs: Tensor, state: StateTuple, return_gates: bool = False
    ) -> tuple[Tensor, StateTuple] | tuple[Tensor, StateTuple, dict[str, Tensor]]:
        """Run ``inputs [B, T, I]`` from ``state``; optionally return gates as ``{name: [B, T, H]}``."""
        projected = self.project_input(inputs)
        if not return_gates:
            outputs, *final = _Recurrence.apply(self, len(state), projected, *state, *self._backward_parameters())
            return outputs, tuple(final)
        outputs, gates = [], []
        for t in range(inputs.shape[1]):
            state, step_gates = self.cell(projected[:, t], self.project_state(state[0]), state)
            outputs.append(state[0])
            gates.append(step_gates)
        stacked = {name: torch.stack([g[k] for g in gates], dim=1) for k, name in enumerate(self.gate_names)}
        return torch.stack(outputs, dim=1), state, stacked

    def _backward_parameters(self) -> tuple[Tensor, ...]:
        return (*self.recurrent_parameters(), *self.cell_parameters())


class _Recurrence(torch.autograd.Function):
    """The whole sequence of a :class:`RecurrentLayer` as one autograd node (see the module docstring).

    ``apply(layer, num_states, x_projected [B, T, G*H], *state, *recurrent_params, *cell_params)``
    returns ``(outputs [B, T, H], *final_state)``.
    """

    @staticmethod
    def forward(ctx: Any, layer: RecurrentLayer, num_states: int, x_projected: Tensor, *rest: Tensor) -> Any:
        x_projected = x_projected.transpose(0, 1).contiguous()  # time-major: every step's slice is contiguous
        state = tuple(rest[:num_states])
        states, h_projections = [state], []
        for x_t in x_projected:
            h_projected = layer.project_state(state[0])
            state, _ = layer.cell(x_t, h_projected, state)
            states.append(state)
            h_projections.append(h_projected)
        # every state tensor over time, [T + 1, B, H]: step t reads index t and writes t + 1
        history = [torch.stack([s[k] for s in states]) for k in range(num_states)]
        ctx.layer, ctx.num_states = layer, num_states
        device = x_projected.device.type
        ctx.autocast = (device, torch.get_autocast_dtype(device), torch.is_autocast_enabled(device))
        ctx.save_for_backward(x_projected, torch.stack(h_projections), *history)
        return (history[0][1:].transpose(0, 1).contiguous(), *state)

    @staticmethod
    def backward(ctx: Any, grad_outputs: Tensor | None, *grad_final: Tensor | None) -> Any:
        device, dtype, enabled = ctx.autocast
        with torch.autocast(device, dtype=dtype, enabled=enabled):  # replay the steps as the forward ran them
            return _Recurrence._backward(ctx, grad_outputs, *grad_final)

    @staticmethod
    def _backward(ctx: Any, grad_outputs: Tensor | None, *grad_final: Tensor | None) -> Any:
        layer, num_states = ctx.layer, ctx.num_states
        x_projected, h_projected, *history = ctx.saved_tensors
        if grad_outputs is not None:
            grad_outputs = grad_outputs.transpose(0, 1).contiguous()
        cell_parameters = layer.cell_parameters()
        grad_state = [torch.zeros_like(h[0]) if g is None else g for g, h in zip(grad_final, history, strict=True)]
        grad_x = torch.empty_like(x_projected)
        grad_h_projected = torch.empty_like(h_projected)
        grad_cell = [torch.zeros_like(p) for p in cell_parameters]
        for t in reversed(range(x_projected.shape[0])):
            if grad_outputs is not None:
                grad_state[0] = grad_state[0] + grad_outputs[t]
            previous = tuple(h[t] for h in history)
            new_state = tuple(h[t + 1] for h in history)
            # a cell with parameters of its own (a layer norm's gain) needs their gradients too: the replay gives them
            by_hand = None
            if not cell_parameters:
                by_hand = layer.cell_backward(tuple(grad_state), x_projected[t], h_projected[t], previous, new_state)
            if by_hand is not None:
                grads = (*by_hand[:2], *by_hand[2])
            else:
                with torch.enable_grad():
                    x_t = x_projected[t].detach().requires_grad_()
                    h_t = h_projected[t].detach().requires_grad_()
                    previous = tuple(h.detach().requires_grad_() for h in previous)
                    new_state, _ = layer.cell(x_t, h_t, previous)
                    grads = torch.autograd.grad(
                        new_state, (x_t, h_t, *previous, *cell_parameters), grad_state, allow_unused=True
                    )
            grad_x[t] = _or_zeros(grads[0], x_projected[t])
            grad_h_projected[t] = _or_zeros(grads[1], h_projected[t])
            grad_state = [_or_zeros(g, h) for g, h in zip(grads[2 : 2 + num_states], previous, strict=True)]
            grad_state[0] = grad_state[0] + layer.project_state_backward(grad_h_projected[t])
            for total, g in zip(grad_cell, grads[2 + num_states :], strict=True):
                if g is not None:
                    total += g
        # time-major [T, B, *] works as well as [B, T, *] here: both are flattened over steps and rows
        recurrent = layer.recurrent_parameter_grads(grad_h_projected, history[0][:-1])
        return (None, None, grad_x.transpose(0, 1), *grad_state, *recurrent, *grad_cell)


def _or_zeros(grad: Tensor | None, like: Tensor) -> Tensor:
    return torch.zeros_like(like) if grad is None else grad
