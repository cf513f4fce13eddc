"""What every task shares: schedules that follow the run, a run stopped when its loss is not finite."""

from __future__ import annotations

import pytest
import torch
from conftest import RECIPES, quiet_trainer

from rnnzoo import Checkpoint, LanguageModel, LanguageModelDataModule
from rnnzoo.cli import main

LM_RECIPE = RECIPES / "language_model" / "tiny_shakespeare-lstm_small.yaml"


TINY_LM = (
    "--data.batch_size 2 --data.tbptt_steps 4 --model.hidden_size 8 --model.num_layers 1 --trainer.precision 32 "
    "--trainer.enable_progress_bar false --trainer.val_check_interval 1.0 --trainer.check_val_every_n_epoch 1 "
    "--trainer.limit_val_batches 2 --trainer.max_time null"
).split()


def tiny_lm_fit(tiny_corpus, *extra: str) -> None:
    main(["fit", "--config", str(LM_RECIPE), "--data.dataset", str(tiny_corpus), *TINY_LM, *extra])


def final_checkpoint(tmp_path) -> dict:
    (path,) = tmp_path.rglob("last.ckpt")
    return torch.load(path, weights_only=True)


def test_one_cycle_schedule_follows_max_steps_past_a_hand_written_total(tiny_corpus, tmp_path, monkeypatch):
    """The recipe names no total_steps, so the schedule is as long as the run, whatever max_steps is."""
    monkeypatch.chdir(tmp_path)
    tiny_lm_fit(tiny_corpus, "--trainer.max_steps", "30")
    checkpoint = final_checkpoint(tmp_path)
    assert checkpoint["global_step"] == 30
    assert checkpoint["lr_schedulers"][0]["total_steps"] == 30


def test_one_cycle_schedule_shorter_than_the_run_fails_before_the_first_step(
    tiny_corpus, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        tiny_lm_fit(tiny_corpus, "--trainer.max_steps", "60", "--model.scheduler.init_args.total_steps", "40")
    error = capsys.readouterr().err
    assert "OneCycleLR's total_steps (40) is shorter than this run (60 optimizer steps)" in error
    assert "drop total_steps" in error and "Traceback" not in error
    assert not list(tmp_path.rglob("*.ckpt"))  # not one step was taken


def test_one_cycle_schedule_of_a_run_without_a_length_is_refused(tiny_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        tiny_lm_fit(
            tiny_corpus, "--trainer.max_steps", "-1", "--trainer.max_epochs", "-1", "--trainer.max_time", "00:00:00:05"
        )
    assert "OneCycleLR needs its total_steps, but this run has no known length" in capsys.readouterr().err


class Diverging(LanguageModel):
    """A language model whose loss turns NaN at its fourth step (as a too-high learning rate would make it)."""

    def training_loss(self, batch):
        loss = super().training_loss(batch)
        return loss * float("nan") if self.global_step == 3 else loss


def test_a_non_finite_loss_stops_the_run_with_a_clear_message(tiny_corpus, tmp_path):
    data = LanguageModelDataModule(str(tiny_corpus), batch_size=2, tbptt_steps=8)
    model = Diverging(data.vocab_size, hidden_size=8, num_layers=1)
    trainer = quiet_trainer(tmp_path, max_steps=10, enable_checkpointing=True, callbacks=[Checkpoint(dirpath=tmp_path)])
    with pytest.raises(RuntimeError, match=r"the training loss is nan at step 3 \(batch 3 of epoch 0\): the run stops"):
        trainer.fit(model, datamodule=data)
    assert all(torch.isfinite(p).all() for p in model.parameters())  # stopped before the NaN reached the weights
    assert not list(tmp_path.glob("*.ckpt"))  # and wrote no checkpoint of it


def test_no_checkpoint_is_written_while_an_unread_loss_was_not_finite():
    """On an accelerator the losses are read every 50 steps; a checkpoint reads them first."""
    model = LanguageModel(10, hidden_size=4, num_layers=1)
    model._losses_finite = torch.tensor(False)
    with pytest.raises(RuntimeError, match="the training loss turned NaN or infinite by step 0: the run stops"):
        model.on_save_checkpoint({})
    model.on_save_checkpoint(checkpoint := {})  # read and cleared: the next save is not refused
    assert "rnnzoo" in checkpoint
