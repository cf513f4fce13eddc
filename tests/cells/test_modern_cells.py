"""minGRU/minLSTM, IndRNN, LayerNorm cells: equations, scan == sequential, fast path == autograd loop, errors."""

from __future__ import annotations

import pytest
import torch
from lightning import Trainer
from torch.nn import functional as F

from rnnzoo import LanguageModel, LanguageModelDataModule, build_cell
from rnnzoo.cells.minimal import GateMath, Interpolation, g, g_backward, log_g, log_space_scan

LENGTHS = torch.tensor([9, 4, 1, 6, 9])
LOOP_CELLS = [  # cells on the RecurrentLayer contract: trained by the whole-sequence autograd function
    ("reference_rnn", {}),
    ("reference_rnn", {"nonlinearity": "relu"}),
    ("reference_lstm", {}),
    ("reference_gru", {}),
    ("indrnn", {}),
    ("layernorm_lstm", {}),
    ("layernorm_gru", {}),
]


def as_tuple(state):
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


def run_with_grads(backbone, run, inputs, state):
    """Outputs, final state, and the gradients of a fixed random loss w.r.t. inputs, state and parameters."""
    backbone.zero_grad()
    inputs = inputs.clone().requires_grad_(True)
    state = tuple(s.clone().requires_grad_(True) for s in as_tuple(state))
    outputs, final = run(inputs, LENGTHS, state if len(state) > 1 else state[0])
    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(outputs.shape, generator=generator)
    loss = (outputs * weights).sum() + sum(s.sin().sum() for s in as_tuple(final))
    loss.backward()
    grads = [inputs.grad, *(s.grad for s in state), *(p.grad.clone() for p in backbone.parameters())]
    return outputs, as_tuple(final), grads


def assert_all_close(first, second, atol=1e-5, rtol=1e-5):
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol)


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_scan_equals_sequential(name, bidirectional):
    torch.manual_seed(0)
    backbone = build_cell(name, 3, 5, num_layers=2, bidirectional=bidirectional)
    inputs = torch.randn(5, 9, 3) * 3
    state = torch.randn(backbone.num_layers * backbone.num_directions, 5, 5)  # any sign: not only log-able h0
    results = {}
    for mode in ("scan", "sequential"):
        backbone.set_mode(mode)
        results[mode] = run_with_grads(backbone, backbone, inputs, state)
    (out_s, final_s, grads_s), (out_q, final_q, grads_q) = results["scan"], results["sequential"]
    torch.testing.assert_close(out_s, out_q, atol=1e-5, rtol=1e-5)
    assert_all_close(final_s, final_q)
    assert_all_close(grads_s, grads_q)


def test_scan_is_stable_on_long_sequences():
    torch.manual_seed(1)
    backbone = build_cell("mingru", 2, 4, mode="scan")
    inputs = torch.randn(2, 2000, 2) * 5
    outputs, _ = backbone(inputs)
    backbone.set_mode("sequential")
    expected, _ = backbone(inputs)
    assert torch.isfinite(outputs).all()
    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=1e-5)


def test_mingru_and_minlstm_follow_the_paper():
    torch.manual_seed(2)
    x = torch.randn(2, 6, 3)
    mingru = build_cell("mingru", 3, 4, mode="scan")
    k, candidate = mingru.layers[0][0].linear(x).chunk(2, dim=-1)
    h = torch.zeros(2, 4)
    outputs, _ = mingru(x)
    for t in range(6):
        z = torch.sigmoid(k[:, t])
        h = (1 - z) * h + z * g(candidate[:, t])
        torch.testing.assert_close(outputs[:, t], h)
    minlstm = build_cell("minlstm", 3, 4, mode="scan")
    f, i, candidate = minlstm.layers[0][0].linear(x).chunk(3, dim=-1)
    f, i = torch.sigmoid(f), torch.sigmoid(i)
    h = torch.zeros(2, 4)
    outputs, _ = minlstm(x)
    for t in range(6):
        h = f[:, t] / (f[:, t] + i[:, t]) * h + i[:, t] / (f[:, t] + i[:, t]) * g(candidate[:, t])
        torch.testing.assert_close(outputs[:, t], h)


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_hand_written_backwards_equal_autograd_of_the_plain_formulas(name):
    """GateMath and Interpolation carry their own backward: gradcheck them in float64, and match
    autograd through the textbook recurrence h_t = (1 - w_t) h_{t-1} + w_t v_t."""
    torch.manual_seed(0)
    layer = build_cell(name, 3, 3, mode="sequential").double().layers[0][0]
    projected = (torch.randn(2, 5, len(layer.gate_names) * 3, dtype=torch.float64) * 2).requires_grad_()
    projected.data[projected.data.abs() < 1e-3] = 0.5  # off the kink of g at 0, where g' jumps from 0.25 to 1
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: GateMath.apply(layer, p), (projected,))
    w, v = layer.interpolation(projected.detach())
    assert torch.autograd.gradcheck(Interpolation.apply, (w.requires_grad_(), v.requires_grad_(), h0))

    w, v = layer.interpolation(projected)  # plain autograd through the gate formulas and the loop
    h, states = h0, []
    for t in range(w.shape[1]):
        h = (1 - w[:, t]) * h + w[:, t] * v[:, t]
        states.append(h)
    weights = torch.randn(2, 5, 3, dtype=torch.float64)
    expected = torch.autograd.grad((torch.stack(states, 1) * weights).sum(), (projected, h0))
    got = torch.autograd.grad(
        (Interpolation.apply(*GateMath.apply(layer, projected), h0) * weights).sum(), (projected, h0)
    )
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)


def test_g_backward_matches_autograd_through_g():
    x = torch.tensor([-30.0, -2.0, -1e-4, 1e-4, 3.0], requires_grad=True)
    (expected,) = torch.autograd.grad(g(x).sum(), x)
    torch.testing.assert_close(g_backward(torch.ones(5), g(x.detach())), expected)
    # at the kink, the left derivative (autograd through the two clamps would add both sides: 1.25)
    torch.testing.assert_close(g_backward(torch.ones(1), g(torch.zeros(1))), torch.tensor([0.25]))


def test_g_is_positive_continuous_and_log_g_is_its_log():
    x = torch.linspace(-30, 30, 1001)
    assert (g(x) > 0).all()
    torch.testing.assert_close(g(torch.tensor([0.0])), torch.tensor([0.5]))
    torch.testing.assert_close(log_g(x), torch.log(g(x)))


@pytest.mark.parametrize("name,options", LOOP_CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_fast_training_path_equals_the_autograd_loop(name, options, bidirectional):
    """Oracle: the plain step-by-step loop under autograd (forward_with_gates) gives the same numbers."""
    torch.manual_seed(3)
    backbone = build_cell(name, 3, 5, num_layers=2, bidirectional=bidirectional, **options)
    inputs = torch.randn(5, 9, 3)
    state = map(torch.randn_like, as_tuple(backbone.initial_state(5)))
    state = tuple(state)
    fast = run_with_grads(backbone, backbone, inputs, state)
    loop = run_with_grads(backbone, lambda *args: backbone.forward_with_gates(*args)[:2], inputs, state)
    torch.testing.assert_close(fast[0], loop[0], atol=1e-5, rtol=1e-5)
    assert_all_close(fast[1], loop[1])
    assert_all_close(fast[2], loop[2])


def test_indrnn_is_independently_recurrent_and_clamped():
    torch.manual_seed(4)
    backbone = build_cell("indrnn", 3, 4, recurrent_max=0.9)
    layer = backbone.layers[0][0]
    with torch.no_grad():
        layer.weight_hh_l0.copy_(torch.tensor([0.5, -0.2, 3.0, -5.0]))  # the last two beyond the cap
    x = torch.randn(2, 5, 3)
    outputs, _ = backbone(x)
    u = torch.tensor([0.5, -0.2, 0.9, -0.9])
    h = torch.zeros(2, 4)
    for t in range(5):
        h = torch.relu(F.linear(x[:, t], layer.weight_ih_l0, layer.bias_ih_l0) + u * h)
        torch.testing.assert_close(outputs[:, t], h)
    outputs.sum().backward()
    assert layer.weight_hh_l0.grad[2:].abs().max() == 0  # clamped weights get no gradient
    assert build_cell("indrnn", 3, 4, max_length=100).recurrent_max == pytest.approx(2 ** (1 / 100))


def test_layernorm_lstm_normalises_the_gate_pre_activations():
    torch.manual_seed(5)
    backbone = build_cell("layernorm_lstm", 3, 4)
    layer = backbone.layers[0][0]
    with torch.no_grad():
        layer.norm_hh.weight.uniform_(0.5, 1.5)
        layer.norm_ih.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 5, 3)
    outputs, _, gates = backbone.forward_with_gates(x)
    assert set(gates[0]) == {"input", "forget", "gate", "output"}
    h, c = torch.zeros(2, 4), torch.zeros(2, 4)
    for t in range(5):
        pre = layer.norm_ih(x[:, t] @ layer.weight_ih_l0.T) + F.layer_norm(
            h @ layer.weight_hh_l0.T, (16,), layer.norm_hh.weight
        )
        i, f, gg, o = pre.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
        h = torch.sigmoid(o) * torch.tanh(c)
        torch.testing.assert_close(outputs[:, t], h)


def test_bad_options_and_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="cell 'mingru'.*does not accept.*nonlinearity"):
        build_cell("mingru", 3, 4, nonlinearity="relu")
    with pytest.raises(ValueError, match="cell 'lstm'.*does not accept.*recurrent_max"):
        build_cell("lstm", 3, 4, recurrent_max=1.0)
    with pytest.raises(ValueError, match="recurrent_max must be positive"):
        build_cell("indrnn", 3, 4, recurrent_max=-1.0)
    with pytest.raises(ValueError, match="mode must be one of 'auto', 'scan', 'sequential'"):
        build_cell("minlstm", 3, 4, mode="parallel")
    backbone = build_cell("mingru", 3, 4, mode="scan")
    bad = torch.randn(2, 5, 3)
    bad[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf.*finite inputs"):
        backbone(bad)
    with pytest.raises(ValueError, match="NaN or inf"):
        log_space_scan(torch.full((1, 2, 1), float("inf")), torch.zeros(1, 2, 1), torch.zeros(1, 1))


@pytest.mark.parametrize("cell", ["mingru", "minlstm", "indrnn", "layernorm_lstm", "layernorm_gru"])
def test_new_cells_train_in_a_task_and_survive_a_checkpoint(cell, tmp_path, tiny_corpus):
    data = LanguageModelDataModule(str(tiny_corpus), batch_size=4, tbptt_steps=16)
    torch.manual_seed(0)
    model = LanguageModel(data.vocab_size, cell=cell, hidden_size=16, num_layers=2, dropout=0.0)
    trainer = Trainer(
        max_steps=3,
        limit_val_batches=1,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    before = [p.detach().clone() for p in model.backbone.parameters()]
    trainer.fit(model, datamodule=data)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.backbone.parameters(), strict=True))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    restored = LanguageModel.load_from_checkpoint(path)
    tokens = data.tokenizer.encode("Speak, speak.").unsqueeze(0)
    model.eval()
    restored.eval()
    torch.testing.assert_close(restored(tokens)[0], model(tokens)[0], rtol=0, atol=0)
    assert restored.generate("All:", 10, seed=1) == model.generate("All:", 10, seed=1)


@pytest.mark.parametrize("name", ["reference_lstm", "reference_rnn", "indrnn", "layernorm_gru", "mingru", "minlstm"])
def test_cells_train_under_bf16_autocast(name):
    """The recipes train in bf16-mixed: the whole-sequence backward must replay the steps under the same autocast."""
    torch.manual_seed(6)
    backbone = build_cell(name, 3, 8, num_layers=2)
    inputs = torch.randn(4, 10, 3)
    expected, _ = backbone(inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs, _ = backbone(inputs, torch.tensor([10, 3, 5, 10]))
    outputs.float().square().mean().backward()
    assert all(p.grad.dtype == p.dtype and torch.isfinite(p.grad).all() for p in backbone.parameters())
    torch.testing.assert_close(outputs[0].float(), expected[0], atol=0.05, rtol=0.05)
