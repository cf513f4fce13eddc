"""Checkpoints a run can trust: last.ckpt is the final step whatever the metric did, and no save is half-written."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import RECIPES
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnzoo import Checkpoint


class WorseningModel(LightningModule):
    """A linear model whose logged val_loss gets worse at every validation, so only the first one is the best."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        inputs, targets = batch
        return nn.functional.mse_loss(self.layer(inputs).squeeze(-1), targets)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", float(self.global_step))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def loader():
    return DataLoader(TensorDataset(torch.randn(40, 2), torch.randn(40)), batch_size=4)  # 10 steps an epoch


def fit(tmp_path, callback, **options):
    trainer = Trainer(
        default_root_dir=tmp_path, logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[callback], num_sanity_val_steps=0, accelerator="cpu", **options,
    )  # fmt: skip
    trainer.fit(WorseningModel(), loader(), loader())
    return trainer


def last_step(tmp_path) -> int:
    return torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


@pytest.mark.parametrize(
    "options",
    [{"max_epochs": 3}, {"max_steps": 25}, {"max_steps": 25, "val_check_interval": 4}],
    ids=["epochs", "max_steps_mid_epoch", "mid_epoch_validation"],
)
def test_last_checkpoint_is_the_final_step_when_the_metric_stops_improving(tmp_path, options):
    trainer = fit(tmp_path, Checkpoint(dirpath=tmp_path / "checkpoints", monitor="val_loss"), **options)
    assert trainer.global_step in (25, 30)
    assert last_step(tmp_path) == trainer.global_step
    best = trainer.checkpoint_callback.best_model_path
    assert torch.load(best, weights_only=True)["global_step"] < trainer.global_step  # the best is still the best


def test_lightning_alone_leaves_last_checkpoint_behind(tmp_path):
    """What rnnzoo.Checkpoint fixes (if Lightning fixes it, this test says Checkpoint may go)."""
    trainer = fit(
        tmp_path, ModelCheckpoint(dirpath=tmp_path / "checkpoints", monitor="val_loss", save_last=True), max_epochs=3
    )
    assert last_step(tmp_path) < trainer.global_step


def test_last_every_n_steps_refreshes_last_between_validations(tmp_path):
    steps = []

    class Spy(Checkpoint):
        def _save_last_checkpoint(self, trainer, candidates):
            super()._save_last_checkpoint(trainer, candidates)
            steps.append(trainer.global_step)

    trainer = fit(
        tmp_path, Spy(dirpath=tmp_path / "checkpoints", monitor="val_loss", last_every_n_steps=3), max_steps=20
    )
    assert {3, 6, 9, 10, 12, 15, 18, 20} <= set(steps)
    assert last_step(tmp_path) == trainer.global_step == 20
    # the refresh at step 9 did not hide the top-k check at step 10's validation, nor at 20
    assert torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)["global_step"] == 10


def test_a_crash_while_saving_leaves_the_previous_last_checkpoint_readable(tmp_path, monkeypatch):
    callback = Checkpoint(dirpath=tmp_path / "checkpoints", monitor="val_loss", last_every_n_steps=1)
    trainer = fit(tmp_path, callback, max_steps=3)
    assert last_step(tmp_path) == 3

    def crash_half_way(checkpoint, path, storage_options=None):
        with open(path, "wb") as file:
            file.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(trainer.strategy.checkpoint_io, "save_checkpoint", crash_half_way)
    with pytest.raises(KeyboardInterrupt):
        callback.refresh_last(trainer, again=True)
    assert last_step(tmp_path) == 3
    for path in (tmp_path / "checkpoints").glob("*.ckpt"):
        torch.load(path, weights_only=True)  # only the temporary file is half-written


def test_checkpoint_refuses_link_and_bad_intervals():
    with pytest.raises(ValueError, match="save_last must be true or false"):
        Checkpoint(save_last="link")
    with pytest.raises(ValueError, match="last_every_n_steps must be a positive"):
        Checkpoint(last_every_n_steps=0)


@pytest.mark.parametrize("recipe", sorted(RECIPES.rglob("*.yaml")), ids=lambda path: path.stem)
def test_every_recipe_keeps_its_last_checkpoint_with_rnnzoo_checkpoint(recipe):
    callbacks = yaml.safe_load(recipe.read_text())["trainer"]["callbacks"]
    paths = [callback["class_path"] for callback in callbacks]
    assert "rnnzoo.Checkpoint" in paths and "lightning.pytorch.callbacks.ModelCheckpoint" not in paths


def test_the_end_of_training_says_where_the_best_and_last_checkpoints_are(tmp_path, caplog):
    folder = tmp_path / "checkpoints"
    with caplog.at_level("INFO"):
        fit(tmp_path, Checkpoint(dirpath=folder, monitor="val_loss"), max_epochs=3)
    said = [record.getMessage() for record in caplog.records if "this run's checkpoints" in record.getMessage()]
    best, last = folder / "epoch=0-step=10.ckpt", folder / "last.ckpt"
    assert said == [f"rnnzoo: this run's checkpoints are in {folder}; best val_loss 10: {best}; last: {last}"]
    assert best.is_file() and last.is_file()
