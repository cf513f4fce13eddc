"""Backbones: the registry, reference == fused, padding exactness, step == forward, clear errors."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from rnnzoo.cells import RecurrentBackbone, build_cell, list_cells, map_state, register_cell
from rnnzoo.cells import fused as fused_cells
from rnnzoo.cells.fused import FusedLSTMLayer

LENGTHS = torch.tensor([7, 3, 1, 5, 7])
CELL_CASES = [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("gru", {})]
NEW_CELL_CASES = [
    ("mingru", {}),  # "auto": the sequential loop on the CPU
    ("mingru", {"mode": "scan"}),
    ("minlstm", {}),
    ("minlstm", {"mode": "scan"}),
    ("indrnn", {}),
    ("indrnn", {"recurrent_max": 0.5}),
    ("layernorm_lstm", {}),
    ("layernorm_gru", {}),
]
# Every registered built-in, fused and reference, old and new: the backbone contract holds for all.
CONTRACT_CASES = [(p + n, o) for p in ("", "reference_") for n, o in CELL_CASES] + NEW_CELL_CASES
CONTRACT_IDS = [name + "".join(f"-{v}" for v in options.values()) for name, options in CONTRACT_CASES]


def as_tuple(state):
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


def make_pair(name, options, num_layers, bidirectional, seed=0):
    torch.manual_seed(seed)
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional, **options)
    fused = build_cell(name, 4, 6, **kwargs)
    reference = build_cell(f"reference_{name}", 4, 6, **kwargs)
    reference.load_state_dict(fused.state_dict())
    return fused, reference


def test_registry_lists_builtins_and_filters():
    assert {"rnn", "lstm", "gru", "reference_rnn", "reference_lstm", "reference_gru"} <= set(list_cells())
    assert list_cells("reference_*") == ["reference_gru", "reference_lstm", "reference_rnn"]


def test_unknown_cell_names_the_available_ones():
    with pytest.raises(ValueError, match=r"unknown cell 'lstn'.*gru.*lstm"):
        build_cell("lstn", 4, 6)


def test_unknown_cell_option_is_a_clear_error():
    with pytest.raises(ValueError, match="cell 'lstm'.*does not accept.*nonlinearity"):
        build_cell("lstm", 4, 6, nonlinearity="relu")


@pytest.mark.parametrize("name,options", CELL_CASES)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_reference_matches_fused(name, options, num_layers, bidirectional):
    fused, reference = make_pair(name, options, num_layers, bidirectional)
    inputs = torch.randn(5, 7, 4)
    grad_out = torch.randn(5, 7, fused.output_size)
    results = []
    for backbone in (fused, reference):
        x = inputs.clone().requires_grad_(True)
        outputs, state = backbone(x, LENGTHS)
        loss = (outputs * grad_out).sum() + sum(s.pow(2).sum() for s in as_tuple(state))
        loss.backward()
        grads = [p.grad for p in backbone.parameters()]
        results.append((outputs, as_tuple(state), x.grad, grads))
    (out_f, state_f, dx_f, grads_f), (out_r, state_r, dx_r, grads_r) = results
    torch.testing.assert_close(out_r, out_f, atol=1e-5, rtol=1e-5)
    for a, b in zip(state_r, state_f, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dx_r, dx_f, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads_r, grads_f, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,options", CONTRACT_CASES, ids=CONTRACT_IDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batch_equals_each_sequence_alone(name, options, bidirectional):
    torch.manual_seed(1)
    backbone = build_cell(name, 4, 6, num_layers=2, bidirectional=bidirectional, **options)
    inputs = torch.randn(5, 7, 4)
    # Garbage in the padding must not leak anywhere.
    padded = inputs.clone()
    for row, length in enumerate(LENGTHS):
        padded[row, length:] = 1e3
    outputs, state = backbone(padded, LENGTHS)
    for row, length in enumerate(LENGTHS.tolist()):
        alone_out, alone_state = backbone(inputs[row : row + 1, :length])
        # 1e-5: a matmul over 5 rows and over 1 row may round differently (layer norm amplifies that)
        torch.testing.assert_close(outputs[row, :length], alone_out[0], atol=1e-5, rtol=1e-5)
        if length < 7:
            assert outputs[row, length:].abs().max() == 0  # padded steps output zeros
        for batched, single in zip(as_tuple(state), as_tuple(alone_state), strict=True):
            torch.testing.assert_close(batched[:, row], single[:, 0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_padded_batch_matches_torch_packed_sequence(name):
    """Oracle: torch's own multi-layer bidirectional kernel over a PackedSequence."""
    torch.manual_seed(2)
    ours = build_cell(name, 4, 6, num_layers=2, bidirectional=True)
    torch_cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[name]
    oracle = torch_cls(4, 6, num_layers=2, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for layer in range(2):
            for direction, suffix in enumerate(["", "_reverse"]):
                for param in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    source = getattr(ours.layers[layer][direction], f"{param}_l0")
                    getattr(oracle, f"{param}_l{layer}{suffix}").copy_(source)
    inputs = torch.randn(5, 7, 4)
    packed = nn.utils.rnn.pack_padded_sequence(inputs, LENGTHS, batch_first=True, enforce_sorted=False)
    expected_packed, expected_state = oracle(packed)
    expected, _ = nn.utils.rnn.pad_packed_sequence(expected_packed, batch_first=True, total_length=7)
    outputs, state = ours(inputs, LENGTHS)
    torch.testing.assert_close(outputs, expected, atol=1e-6, rtol=1e-5)
    for a, b in zip(as_tuple(state), as_tuple(expected_state), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name,options", CONTRACT_CASES, ids=CONTRACT_IDS)
def test_step_by_step_equals_whole_sequence(name, options):
    torch.manual_seed(3)
    backbone = build_cell(name, 4, 6, num_layers=2, **options)
    inputs = torch.randn(3, 5, 4)
    outputs, final = backbone(inputs)
    state = None
    for t in range(5):
        output_t, state = backbone.step(inputs[:, t], state)
        torch.testing.assert_close(output_t, outputs[:, t], atol=1e-6, rtol=1e-5)
    for a, b in zip(as_tuple(state), as_tuple(final), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name,options", CONTRACT_CASES, ids=CONTRACT_IDS)
def test_default_state_is_zero_and_state_carries_over(name, options):
    torch.manual_seed(4)
    backbone = build_cell(name, 4, 6, num_layers=2, **options)
    inputs = torch.randn(2, 8, 4)
    out_default, state = backbone(inputs)
    expected_shape = (2, 2, 6)  # [layers * directions, batch, hidden]
    assert all(tuple(s.shape) == expected_shape for s in as_tuple(state))
    assert len(as_tuple(state)) == len(as_tuple(backbone.initial_state(2)))
    out_zeros, _ = backbone(inputs, state=backbone.initial_state(2))
    torch.testing.assert_close(out_default, out_zeros)
    first, state = backbone(inputs[:, :3])
    second, _ = backbone(inputs[:, 3:], state=state)
    torch.testing.assert_close(torch.cat([first, second], 1), out_default, atol=1e-6, rtol=1e-5)
    assert map_state(torch.Tensor.detach, state)[0].requires_grad is False


@pytest.mark.parametrize("name,options", CONTRACT_CASES, ids=CONTRACT_IDS)
def test_state_dict_round_trip(name, options):
    torch.manual_seed(7)
    backbone = build_cell(name, 4, 6, num_layers=2, bidirectional=True, **options)
    buffer = io.BytesIO()
    torch.save(backbone.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(8)  # the copy starts from different weights
    copy = build_cell(name, 4, 6, num_layers=2, bidirectional=True, **options)
    copy.load_state_dict(torch.load(buffer))
    inputs = torch.randn(5, 7, 4)
    expected, expected_state = backbone(inputs, LENGTHS)
    outputs, state = copy(inputs, LENGTHS)
    torch.testing.assert_close(outputs, expected, atol=0, rtol=0)
    for a, b in zip(as_tuple(state), as_tuple(expected_state), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_lstm_gates_follow_the_equations():
    torch.manual_seed(5)
    backbone = build_cell("reference_lstm", 4, 6)
    inputs = torch.randn(2, 5, 4)
    outputs, (h, c), gates = backbone.forward_with_gates(inputs)
    g = gates[0]
    assert set(g) == {"input", "forget", "gate", "output"}
    cell = torch.zeros(2, 6)
    for t in range(5):
        cell = g["forget"][:, t] * cell + g["input"][:, t] * g["gate"][:, t]
        torch.testing.assert_close(outputs[:, t], g["output"][:, t] * torch.tanh(cell))
    torch.testing.assert_close(c[0], cell)


def test_gru_update_gate_mixes_with_one_minus_z():
    torch.manual_seed(6)
    backbone = build_cell("reference_gru", 4, 6)
    inputs = torch.randn(2, 5, 4)
    outputs, _, gates = backbone.forward_with_gates(inputs, torch.tensor([5, 3]))
    z, n = gates[0]["update"], gates[0]["candidate"]
    previous = torch.zeros(2, 6)
    for t in range(3):
        expected = (1 - z[:, t]) * n[:, t] + z[:, t] * previous
        torch.testing.assert_close(outputs[:, t], expected)
        previous = expected
    assert z[1, 3:].abs().max() == 0  # padded steps report no gates


def test_bad_inputs_get_clear_errors():
    backbone = build_cell("gru", 4, 6, bidirectional=True)
    with pytest.raises(ValueError, match=r"inputs of shape \[batch, steps, 4\]"):
        backbone(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="state of 1 tensor"):
        backbone(torch.randn(2, 3, 4), state=torch.zeros(1, 2, 6))
    with pytest.raises(ValueError, match="lie in"):
        backbone(torch.randn(2, 3, 4), torch.tensor([4, 1]))
    with pytest.raises(ValueError, match="bidirectional"):
        backbone.step(torch.randn(2, 4))
    with pytest.raises(ValueError, match="dropout"):
        build_cell("lstm", 4, 6, dropout=1.5)


def test_user_registered_cell_is_built_by_name():
    @register_cell("test_tiny_lstm")
    class TinyLSTM(RecurrentBackbone):
        state_names = ("h", "c")

        def make_layer(self, input_size, hidden_size):
            return FusedLSTMLayer(input_size, hidden_size)

    backbone = build_cell("test_tiny_lstm", 3, 5, num_layers=2)
    assert isinstance(backbone, TinyLSTM)
    outputs, (h, c) = backbone(torch.randn(2, 4, 3), torch.tensor([4, 2]))
    assert outputs.shape == (2, 4, 5) and h.shape == c.shape == (2, 2, 5)


# One kernel call: an unpadded batch through a fused backbone runs torch's multi-layer kernel once.


def run_with_grads(backbone, inputs, state, grad_out):
    x = inputs.clone().requires_grad_(True)
    start = None if state is None else tuple(s.clone().requires_grad_(True) for s in state)
    outputs, final = backbone(x, None, None if start is None else (start if len(start) > 1 else start[0]))
    loss = (outputs * grad_out).sum() + sum(s.pow(2).sum() for s in as_tuple(final))
    backbone.zero_grad()
    loss.backward()
    grads = [x.grad] + ([] if start is None else [s.grad for s in start]) + [p.grad for p in backbone.parameters()]
    return [outputs, *as_tuple(final)], grads


def one_call_and_layer_by_layer(monkeypatch, backbone, run):
    """``run()`` through the one-call path (a layer's own forward would fail), then layer by layer."""

    def no_layer_calls(*args, **kwargs):
        raise AssertionError("the unpadded batch should not run layer by layer")

    with monkeypatch.context() as patch:
        patch.setattr(fused_cells._FusedLayer, "forward", no_layer_calls)
        one_call = run()
    with monkeypatch.context() as patch:
        patch.setattr(backbone, "_run_stacked", lambda inputs, states: None)
        layer_by_layer = run()
    return one_call, layer_by_layer


@pytest.mark.parametrize("name,options", CELL_CASES)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_one_kernel_call_equals_layer_by_layer(monkeypatch, name, options, num_layers, bidirectional, with_state):
    torch.manual_seed(4)
    backbone = build_cell(name, 4, 6, num_layers=num_layers, bidirectional=bidirectional, dropout=0.3, **options)
    backbone.eval()  # dropout off: the two paths compute the same numbers
    inputs, grad_out = torch.randn(5, 7, 4), torch.randn(5, 7, backbone.output_size)
    shape = (num_layers * backbone.num_directions, 5, 6)
    state = tuple(torch.randn(shape) for _ in backbone.state_names) if with_state else None
    one_call, layer_by_layer = one_call_and_layer_by_layer(
        monkeypatch, backbone, lambda: run_with_grads(backbone, inputs, state, grad_out)
    )
    for ours, expected in zip(one_call, layer_by_layer, strict=True):  # outputs and state, then gradients
        for a, b in zip(ours, expected, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_one_kernel_call_drops_out_between_layers_as_layer_by_layer(monkeypatch, name, bidirectional):
    torch.manual_seed(5)
    backbone = build_cell(name, 4, 6, num_layers=3, bidirectional=bidirectional, dropout=0.5)
    inputs, grad_out = torch.randn(5, 7, 4), torch.randn(5, 7, backbone.output_size)

    def run():
        torch.manual_seed(6)  # the same dropout masks for both paths
        return run_with_grads(backbone, inputs, None, grad_out)

    one_call, layer_by_layer = one_call_and_layer_by_layer(monkeypatch, backbone, run)
    for ours, expected in zip(one_call, layer_by_layer, strict=True):
        for a, b in zip(ours, expected, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    backbone.eval()
    torch.manual_seed(6)
    assert not torch.allclose(run()[0][0], one_call[0][0])  # dropout did act in training


# torch's CPU autocast runs LSTM and RNN in bf16 (LSTM on oneDNN) and GRU in fp32
@pytest.mark.parametrize("name,dtype", [("lstm", torch.bfloat16), ("rnn", torch.bfloat16), ("gru", torch.float32)])
def test_one_kernel_call_under_bf16_autocast(monkeypatch, name, dtype):
    torch.manual_seed(7)
    backbone = build_cell(name, 4, 6, num_layers=2).eval()
    inputs = torch.randn(5, 7, 4)

    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs, state = backbone(inputs)
        return [outputs, *as_tuple(state)]

    one_call, layer_by_layer = one_call_and_layer_by_layer(monkeypatch, backbone, run)
    for a, b in zip(one_call, layer_by_layer, strict=True):
        assert a.dtype == b.dtype == dtype
        # bf16 matmuls over batch-first and time-major inputs may round one step apart
        torch.testing.assert_close(a, b, atol=4e-3, rtol=1.6e-2)


def test_padded_batch_runs_layer_by_layer_and_full_lengths_in_one_call(monkeypatch):
    backbone = build_cell("lstm", 4, 6, num_layers=2, bidirectional=True)
    calls = []
    original = type(backbone)._run_stacked
    monkeypatch.setattr(type(backbone), "_run_stacked", lambda self, *args: calls.append(1) or original(self, *args))
    inputs = torch.randn(5, 7, 4)
    padded, _ = backbone(inputs, LENGTHS)
    assert calls == []  # padding: the exact path, one kernel call per distinct length
    full, _ = backbone(inputs, torch.full((5,), 7))
    assert calls == [1]
    torch.testing.assert_close(full, backbone(inputs)[0])
    torch.testing.assert_close(padded[0], full[0])  # row 0 has all 7 steps


def test_layer_with_a_hook_runs_layer_by_layer():
    backbone = build_cell("gru", 4, 6, num_layers=2)
    seen = []
    backbone.layers[1][0].register_forward_hook(lambda module, args, output: seen.append(output[0].shape))
    backbone(torch.randn(5, 7, 4))
    assert seen == [torch.Size([5, 7, 6])]


def test_hand_written_gru_cell_backward_equals_autograd_of_the_cell():
    """The reference GRU's cell_backward against autograd through its cell, in float64."""
    torch.manual_seed(0)
    layer = build_cell("reference_gru", 3, 4).double().layers[0][0]
    width = len(layer.gate_names) * 4
    x_projected, h_projected = (torch.randn(5, width, dtype=torch.float64, requires_grad=True) for _ in range(2))
    state = (torch.randn(5, 4, dtype=torch.float64, requires_grad=True),)
    new_state, _ = layer.cell(x_projected, h_projected, state)
    grad_new = tuple(torch.randn_like(s) for s in new_state)
    inputs = (x_projected, h_projected, *state)
    expected = torch.autograd.grad(new_state, inputs, grad_new)
    grad_x, grad_h, grad_state = layer.cell_backward(grad_new, x_projected, h_projected, state, new_state)
    # h_{t-1} reaches the GRU's cell directly (z h_{t-1}) as well as through h_projected (W_hh h)
    for got, want in zip((grad_x, grad_h, *grad_state), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
