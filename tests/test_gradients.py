"""The gradient lab: recorded ||dL/dh_t|| equals autograd's, vanishes for a small tanh RNN, clipping is seen."""

from __future__ import annotations

import copy
import csv
import itertools
import json
from pathlib import Path

import pytest
import torch
from lightning import LightningModule, Trainer
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from rnnzoo import GradientRecorder, build_cell
from rnnzoo.gradients import global_grad_norm, run_step_by_step


class LastStepRegressor(LightningModule):
    """backbone -> linear head on the last step -> MSE: the adding problem's shape."""

    def __init__(self, cell: str = "rnn", hidden_size: int = 5, **options):
        super().__init__()
        self.backbone = build_cell(cell, 2, hidden_size, **options)
        self.head = nn.Linear(self.backbone.output_size, 1)

    def training_step(self, batch, batch_idx):
        inputs, targets = batch
        outputs, _ = self.backbone(inputs)
        return F.mse_loss(self.head(outputs[:, -1]).squeeze(-1), targets)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(model, inputs, targets, tmp_path, recorder, **trainer_options):
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=len(inputs))
    trainer = Trainer(
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[recorder],
        **trainer_options,
    )
    trainer.fit(model, loader)
    return trainer


def test_recorded_norms_equal_autograd(tmp_path):
    torch.manual_seed(0)
    model = LastStepRegressor("rnn", hidden_size=5)
    before = copy.deepcopy(model)
    inputs, targets = torch.randn(4, 12, 2), torch.randn(4)
    recorder = GradientRecorder(every_n_steps=1, dirpath=tmp_path)
    fit(model, inputs, targets, tmp_path, recorder, max_steps=1)
    recorded = recorder.norms_over_time[0]

    # Oracle: the tanh RNN written out by hand, each h_t a retained node of the graph.
    layer = before.backbone.layers[0][0]
    inputs.requires_grad_(True)
    h, hidden = torch.zeros(4, 5), []
    for t in range(12):
        h = torch.tanh(
            F.linear(inputs[:, t], layer.weight_ih_l0, layer.bias_ih_l0)
            + F.linear(h, layer.weight_hh_l0, layer.bias_hh_l0)
        )
        h.retain_grad()
        hidden.append(h)
    F.mse_loss(before.head(h).squeeze(-1), targets).backward()
    expected = [float(h.grad.norm()) for h in hidden]
    assert recorded == pytest.approx(expected, rel=1e-5, abs=1e-9)
    assert expected[0] > 0
    expected_inputs = [float(inputs.grad[:, t].norm()) for t in range(12)]
    assert recorder.input_norms_over_time[0] == pytest.approx(expected_inputs, rel=1e-5, abs=1e-9)


def test_tanh_rnn_with_small_recurrent_weights_loses_gradient_with_distance(tmp_path):
    torch.manual_seed(1)
    model = LastStepRegressor("rnn", hidden_size=8)
    with torch.no_grad():
        model.backbone.layers[0][0].weight_hh_l0.mul_(0.3)
    recorder = GradientRecorder(every_n_steps=1, dirpath=tmp_path, plot=False)
    fit(model, torch.randn(16, 20, 2), torch.randn(16), tmp_path, recorder, max_steps=1)
    norms = recorder.norms_over_time[0]
    assert all(earlier < later for earlier, later in itertools.pairwise(norms))  # decays with distance
    assert norms[0] < 1e-6 * norms[-1]


def test_clipping_is_recorded_and_files_are_written(tmp_path):
    torch.manual_seed(2)
    model = LastStepRegressor("lstm", hidden_size=6)
    recorder = GradientRecorder(every_n_steps=2, dirpath=tmp_path)
    fit(model, torch.randn(8, 10, 2), torch.randn(8) * 10, tmp_path, recorder, max_steps=3, gradient_clip_val=1e-3)
    assert sorted(recorder.norms_over_time) == [0, 2]
    assert [step for step, _, _ in recorder.clipping] == [0, 1, 2]
    for _, before, after in recorder.clipping:
        assert before > 1e-3 and after == pytest.approx(1e-3, rel=1e-4)
    rows = list(csv.DictReader((tmp_path / "gradient_norms_over_time.csv").open()))
    assert len(rows) == 2 * 10 and float(rows[-1]["grad_norm_h_t"]) == pytest.approx(recorder.norms_over_time[2][-1])
    saved = json.loads((tmp_path / "gradients.json").read_text())
    assert saved["clipping"][0]["before"] == pytest.approx(recorder.clipping[0][1])
    assert len(list(csv.DictReader((tmp_path / "gradient_clipping.csv").open()))) == 3
    pytest.importorskip("matplotlib")
    assert (tmp_path / "gradient_norms_over_time.png").stat().st_size > 0


@pytest.mark.parametrize("cell", ["lstm", "mingru", "indrnn", "reference_gru"])
def test_step_by_step_recording_run_equals_the_backbone(cell):
    torch.manual_seed(3)
    backbone = build_cell(cell, 2, 5, num_layers=2)
    inputs, lengths = torch.randn(3, 6, 2), torch.tensor([6, 2, 4])
    state = backbone(torch.randn(3, 2, 2))[1]
    expected, expected_state = backbone(inputs, lengths, state)
    outputs, final_state, hidden, probes = run_step_by_step(backbone, inputs, lengths, state)
    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=1e-5)
    for a, b in zip(
        final_state if isinstance(final_state, tuple) else (final_state,),
        expected_state if isinstance(expected_state, tuple) else (expected_state,),
        strict=True,
    ):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert len(hidden) == 6 and hidden[0].shape == (3, 5) and probes[0].shape == (3, 2)


def test_recorder_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="every_n_steps must be a positive integer"):
        GradientRecorder(every_n_steps=0)
    with pytest.raises(ValueError, match="unidirectional backbone"):
        run_step_by_step(build_cell("gru", 2, 3, bidirectional=True), torch.randn(1, 4, 2))
    model = LastStepRegressor("rnn")
    model.recurrent = model.backbone
    del model.backbone
    with pytest.raises(ValueError, match="no attribute 'backbone'.*backbone_attr"):
        fit(model, torch.randn(2, 3, 2), torch.randn(2), tmp_path, GradientRecorder(dirpath=tmp_path), max_steps=1)


def test_global_grad_norm_equals_clip_grad_norm_total():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Linear(2, 2))
    model(torch.randn(5, 3))[:, :1].sum().backward()
    model[3].weight.grad = None  # parameters without a gradient are skipped
    expected = copy.deepcopy(model)
    for ours, theirs in zip(model.parameters(), expected.parameters(), strict=True):
        theirs.grad = None if ours.grad is None else ours.grad.clone()
    norm = global_grad_norm(model)
    assert isinstance(norm, torch.Tensor) and norm.dim() == 0 and norm.dtype == torch.float32
    total = torch.nn.utils.clip_grad_norm_(expected.parameters(), max_norm=1e-3)
    torch.testing.assert_close(norm, total)
    torch.testing.assert_close(global_grad_norm(list(model.parameters())), total)
    for ours, clipped in zip(model.parameters(), expected.parameters(), strict=True):
        assert (ours.grad is None) == (clipped.grad is None)  # measuring leaves the gradients alone
        if ours.grad is not None:
            assert not torch.equal(ours.grad, clipped.grad)
    assert float(global_grad_norm(nn.Linear(2, 2))) == 0.0  # no gradients yet


def test_each_run_writes_its_gradients_into_its_own_folder(tmp_path):
    """By default the files go to ``<log_dir>/gradients``: a second run of a recipe keeps the first one's."""
    from lightning.pytorch.loggers import CSVLogger

    folders = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        recorder = GradientRecorder(every_n_steps=1, plot=False)
        loader = DataLoader(TensorDataset(torch.randn(4, 6, 2), torch.randn(4)), batch_size=4)
        trainer = Trainer(
            logger=CSVLogger(tmp_path, name="recipe"),
            max_steps=1,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            callbacks=[recorder],
        )
        trainer.fit(LastStepRegressor("gru", hidden_size=3), loader)
        folders.append(Path(trainer.log_dir) / "gradients")
    assert folders == [tmp_path / "recipe" / "version_0" / "gradients", tmp_path / "recipe" / "version_1" / "gradients"]
    first, second = (json.loads((folder / "gradients.json").read_text()) for folder in folders)
    assert first["norms_over_time"]["0"] != second["norms_over_time"]["0"]  # two runs, two records
