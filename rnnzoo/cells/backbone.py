"""The one backbone contract that every task uses, and the stacking that implements it.

A backbone computes h_t = f_W(h_{t-1}, x_t) over a batch of sequences:

    outputs, final_state = backbone(inputs, lengths=None, state=None)
    output_t, state = backbone.step(input_t, state)

``inputs`` is ``[B, T, input_size]`` (batch first), ``lengths`` the number of real
steps of each sequence (None when none is padded), ``state`` what a previous call
returned or None for h_0 = 0. ``outputs`` is ``[B, T, output_size]`` with
``output_size = directions * hidden_size`` and zeros at padded steps. A state
follows torch's own layout: one ``[layers * directions, B, H]`` tensor for RNN and
GRU, an ``(h, c)`` pair of them for LSTM.

:class:`RecurrentBackbone` does the stacking (layers, directions, dropout between
layers) and the padding once; a concrete cell only says how to build one
single-direction layer (:meth:`RecurrentBackbone.make_layer`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnzoo.nn.masking import check_lengths, reverse_padded

State = Tensor | tuple[Tensor, ...]
"""A backbone state: one tensor, or a tuple of them (LSTM's ``(h, c)``)."""

_OUTPUTS = "__outputs__"  # key of a layer's outputs among its per-step tensors (gates use their own names)

LayerRun = Callable[[Tensor, tuple[Tensor, ...]], tuple[dict[str, Tensor], tuple[Tensor, ...]]]


def map_state(fn: Callable[[Tensor], Tensor], state: State) -> State:
    """Apply ``fn`` to every tensor of a state (e.g. ``Tensor.detach`` between TBPTT chunks)."""
    if isinstance(state, Tensor):
        return fn(state)
    return tuple(fn(tensor) for tensor in state)


class RecurrentBackbone(nn.Module):
    """Stacked, optionally bidirectional recurrent layers behind the backbone contract.

    Subclasses set :attr:`state_names` and :attr:`layer_class` (or override
    :meth:`make_layer`). A layer
    maps ``inputs [B, T, I]`` and a state tuple of ``[B, H]`` tensors to
    ``(outputs [B, T, H], final state tuple)`` for sequences without padding;
    this class handles padding by running each layer up to each distinct length
    in turn (never on padded steps), and the reverse direction by reversing every
    sequence within its own length.

    Args:
        input_size: features of each input step.
        hidden_size: features of the hidden state of each direction.
        num_layers: stacked layers; layer ``l > 0`` reads layer ``l - 1``'s outputs.
        dropout: dropout on the outputs of every layer but the last (as in torch).
        bidirectional: add a layer reading each sequence backwards.
    """

    state_names: ClassVar[tuple[str, ...]] = ("h",)
    layer_class: ClassVar[Callable[..., nn.Module]]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            nn.ModuleList(
                self.make_layer(input_size if layer == 0 else self.output_size, hidden_size)
                for _ in range(self.num_directions)
            )
            for layer in range(num_layers)
        )

    def make_layer(self, input_size: int, hidden_size: int) -> nn.Module:
        """Build one single-direction layer (see the class docstring): ``layer_class(input_size, hidden_size)``."""
        if not hasattr(self, "layer_class"):
            raise NotImplementedError(f"{type(self).__name__} must set layer_class or implement make_layer()")
        return self.layer_class(input_size, hidden_size)

    @property
    def output_size(self) -> int:
        """Features of each output step: ``directions * hidden_size``."""
        return self.num_directions * self.hidden_size

    def initial_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> State:
        """The zero state h_0 = 0 (and c_0 = 0 for LSTM) for ``batch_size`` sequences."""
        shape = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        zeros = tuple(torch.zeros(shape, device=device, dtype=dtype) for _ in self.state_names)
        return zeros[0] if len(zeros) == 1 else zeros

    def forward(
        self, inputs: Tensor, lengths: Tensor | None = None, state: State | None = None
    ) -> tuple[Tensor, State]:
        """Run the whole sequences; see the module docstring for shapes."""
        outputs, final_state, _ = self._run(inputs, lengths, state, record_gates=False)
        return outputs, final_state

    def step(self, input_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Advance one step: ``input_t [B, I] -> (output_t [B, output_size], state)``.

        Equal to :meth:`forward` on a one-step sequence, so a model trained on whole
        sequences generates token by token with the same numbers.
        """
        if self.bidirectional:
            raise ValueError(
                "step() cannot run a bidirectional backbone: its reverse direction needs the "
                "whole sequence. Call forward() on the full input instead."
            )
        if input_t.dim() != 2:
            raise ValueError(f"step() takes input_t of shape [batch, features], got {list(input_t.shape)}")
        outputs, state = self(input_t.unsqueeze(1), None, state)
        return outputs.squeeze(1), state

    def _run(
        self, inputs: Tensor, lengths: Tensor | None, state: State | None, record_gates: bool
    ) -> tuple[Tensor, State, list[dict[str, Tensor]]]:
        batch, steps = self._check_inputs(inputs)
        if torch.onnx.is_in_onnx_export():  # traced: no checks that read values, no per-length Python loop
            outputs, final_state = self._run_exported(inputs, lengths, self._check_state(state, batch, inputs))
            return outputs, final_state, []
        if lengths is not None:
            lengths = check_lengths(lengths, batch, steps)
            if bool((lengths == steps).all()):
                lengths = None
        states = self._check_state(state, batch, inputs)
        if lengths is None and not record_gates:
            stacked = self._run_stacked(inputs, states)
            if stacked is not None:
                return stacked[0], stacked[1], []
        layer_input, finals, gates = inputs, [], []
        for index, directions in enumerate(self.layers):
            if index > 0:
                layer_input = self._drop_between_layers(layer_input)
            direction_outputs = []
            for direction, layer in enumerate(directions):
                position = index * self.num_directions + direction
                start_state = tuple(tensor[position] for tensor in states)
                reverse = direction == 1
                sequence = reverse_padded(layer_input, lengths) if reverse else layer_input
                run = _layer_runner(layer, record_gates)
                step_outputs, final = _run_padded(run, sequence, lengths, start_state)
                if reverse:
                    step_outputs = {k: reverse_padded(v, lengths) for k, v in step_outputs.items()}
                direction_outputs.append(step_outputs.pop(_OUTPUTS))
                finals.append(final)
                gates.append(step_outputs)
            layer_input = torch.cat(direction_outputs, dim=-1)
        final_state = tuple(torch.stack([final[k] for final in finals]) for k in range(len(self.state_names)))
        return layer_input, final_state[0] if len(final_state) == 1 else final_state, gates

    def _drop_between_layers(self, outputs: Tensor) -> Tensor:
        """:attr:`dropout` on a layer's ``[B, T, F]`` outputs, with torch's multi-layer kernels' masks.

        Those kernels drop out time-major ``[T, B, F]`` outputs, so the mask is drawn
        in that order here too: for the same seed, layer by layer and one kernel call
        (and ``nn.LSTM(num_layers=L)``) drop the same units. The result is a
        ``[B, T, F]`` view of time-major memory, which the next layer's kernel reads
        without a copy.
        """
        dropout = self.dropout
        if type(dropout) is not nn.Dropout or not dropout.training or dropout.p == 0:
            return dropout(outputs)
        return dropout(outputs.transpose(0, 1).contiguous()).transpose(0, 1)

    def _run_stacked(self, inputs: Tensor, states: tuple[Tensor, ...]) -> tuple[Tensor, State] | None:
        """Hook: run every layer and direction of an unpadded batch in one call, or None to go layer by layer.

        Called only when no sequence is padded and no gates are recorded; ``states``
        are the checked ``[layers * directions, B, H]`` start tensors. An override
        must give what the layer-by-layer path gives (the fused cells call torch's
        multi-layer kernel).
        """
        return None

    def _run_exported(self, inputs: Tensor, lengths: Tensor | None, states: tuple[Tensor, ...]) -> tuple[Tensor, State]:
        """Hook: :meth:`forward` as ONNX export traces it, any batch and number of steps, padding read from ``lengths``.

        The layer-by-layer path loops in Python over the distinct lengths, and a cell's own
        layers loop over the steps: a trace would freeze both. The fused cells override this
        with ONNX's recurrent operators (:mod:`rnnzoo.cells.fused`).

        Raises:
            NotImplementedError: for a cell that has no such path.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot be exported to ONNX: its layers loop over time in Python, which a trace "
            "freezes to the example's length. Export models built on the fused cells (lstm, gru, rnn)"
        )

    def _check_inputs(self, inputs: Tensor) -> tuple[int, int]:
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expects inputs of shape [batch, steps, {self.input_size}], "
                f"got {list(inputs.shape)}"
            )
        if inputs.shape[1] == 0:
            raise ValueError("inputs have no steps (shape [batch, 0, features]); give at least one step")
        return inputs.shape[0], inputs.shape[1]

    def _check_state(self, state: State | None, batch: int, inputs: Tensor) -> tuple[Tensor, ...]:
        if state is None:
            state = self.initial_state(batch, inputs.device, inputs.dtype)
        states = (state,) if isinstance(state, Tensor) else tuple(state)
        expected = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if len(states) != len(self.state_names) or any(tuple(s.shape) != expected for s in states):
            got = [list(s.shape) for s in states]
            raise ValueError(
                f"{type(self).__name__} expects a state of {len(self.state_names)} tensor(s) "
                f"({', '.join(self.state_names)}) of shape {list(expected)}, got {got}"
            )
        return states


def _layer_runner(layer: nn.Module, record_gates: bool) -> LayerRun:
    """Adapt a layer to return its per-step tensors as a dict (outputs, and gates if asked)."""

    def run(inputs: Tensor, state: tuple[Tensor, ...]) -> tuple[dict[str, Tensor], tuple[Tensor, ...]]:
        if record_gates:
            outputs, final, gates = layer(inputs, state, return_gates=True)
            return {_OUTPUTS: outputs, **gates}, final
        outputs, final = layer(inputs, state)
        return {_OUTPUTS: outputs}, final

    return run


def _run_padded(
    run: LayerRun, inputs: Tensor, lengths: Tensor | None, state: tuple[Tensor, ...]
) -> tuple[dict[str, Tensor], tuple[Tensor, ...]]:
    """Run one layer over a left-aligned padded batch without touching padded steps.

    Sequences are sorted longest first and the layer runs from one distinct length
    to the next on the rows still going, carrying the state: each sequence's final
    state is the one at its own last real step, as if it ran alone. This keeps the
    fused kernel on long stretches of time (``PackedSequence`` is up to 17x slower on
    CPU, pytorch issue 149194) and costs one kernel call per distinct length.
    """
    if lengths is None:
        return run(inputs, state)
    batch, steps = inputs.shape[:2]
    order = torch.argsort(lengths, descending=True, stable=True)
    sorted_lengths = lengths[order].tolist()
    order = order.to(inputs.device)
    inputs = inputs.index_select(0, order)
    state = tuple(tensor.index_select(0, order) for tensor in state)
    pieces: dict[str, list[Tensor]] = {}
    start = 0
    for end in sorted(set(sorted_lengths)):
        if end == start:
            continue
        active = sum(1 for length in sorted_lengths if length >= end)
        step_outputs, new_state = run(inputs[:active, start:end], tuple(t[:active] for t in state))
        state = tuple(torch.cat([new, old[active:]]) for new, old in zip(new_state, state, strict=True))
        for name, tensor in step_outputs.items():
            pieces.setdefault(name, []).append(F.pad(tensor, (0, 0, 0, 0, 0, batch - active)))
        start = end
    inverse = torch.argsort(order)
    merged = {}
    for name, tensors in pieces.items():
        if start < steps:
            tensors.append(tensors[0].new_zeros(batch, steps - start, tensors[0].shape[-1]))
        merged[name] = torch.cat(tensors, dim=1).index_select(0, inverse)
    return merged, tuple(tensor.index_select(0, inverse) for tensor in state)


class ElmanRNN(RecurrentBackbone):
    """The vanilla (Elman) RNN, h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), any layer implementation.

    Args:
        nonlinearity: ``"tanh"`` (the classic) or ``"relu"``.
        other arguments: see :class:`RecurrentBackbone`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, dropout, bidirectional)

    def make_layer(self, input_size: int, hidden_size: int) -> nn.Module:
        """``layer_class(input_size, hidden_size, nonlinearity)``."""
        return self.layer_class(input_size, hidden_size, self.nonlinearity)
