"""NTAveraging: AWD-LSTM's non-monotonic trigger, and averaging that starts only when triggered."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from conftest import quiet_trainer
from lightning import Callback

from rnnzoo import LanguageModel, LanguageModelDataModule, NTAveraging


class Recorder(Callback):
    """The weights after every optimizer step."""

    def __init__(self) -> None:
        self.weights: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.weights.append({name: value.detach().clone() for name, value in pl_module.named_parameters()})


def fit(tiny_corpus, tmp_path, *callbacks, steps: int = 12) -> tuple[LanguageModel, dict]:
    data = LanguageModelDataModule(str(tiny_corpus), batch_size=2, eval_batch_size=2, tbptt_steps=12)
    torch.manual_seed(0)
    model = LanguageModel(data.vocab_size, hidden_size=16, num_layers=1, dropout=0.0)
    trainer = quiet_trainer(tmp_path, max_steps=steps, callbacks=list(callbacks), val_check_interval=4)
    trainer.fit(model, data)
    trainer.save_checkpoint(tmp_path / "end.ckpt")
    return model, torch.load(tmp_path / "end.ckpt", weights_only=False)


def test_nothing_changes_until_averaging_starts(tiny_corpus, tmp_path):
    plain, _ = fit(tiny_corpus, tmp_path / "plain")
    never = NTAveraging(start_step=10**6)
    watched, checkpoint = fit(tiny_corpus, tmp_path / "watched", never)
    assert not never.averaging
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(watched.state_dict()[name], value, rtol=0, atol=0, msg=name)
        torch.testing.assert_close(checkpoint["state_dict"][name], value, rtol=0, atol=0, msg=name)


def test_the_model_ends_with_the_mean_of_the_weights_since_the_start(tiny_corpus, tmp_path):
    recorder, averaging = Recorder(), NTAveraging(start_step=5)
    model, checkpoint = fit(tiny_corpus, tmp_path, recorder, averaging)
    assert averaging.started_at == 5 and len(recorder.weights) == 12
    for name, value in model.named_parameters():
        mean = torch.stack([step[name] for step in recorder.weights[4:]]).mean(0)
        torch.testing.assert_close(value, mean, msg=name)
        assert not torch.allclose(value, recorder.weights[-1][name])  # not simply the last weights
        torch.testing.assert_close(checkpoint["state_dict"][name], mean, msg=name)


def validations(callback: NTAveraging, values: list[float]) -> list[bool]:
    """Feed ``values`` as successive validations; whether averaging had started after each."""
    started = []
    for step, value in enumerate(values):
        trainer = SimpleNamespace(sanity_checking=False, callback_metrics={"val_loss": torch.tensor(value)})
        trainer.global_step = step
        callback.on_validation_end(trainer, None)
        started.append(callback.averaging)
    return started


def test_the_trigger_compares_with_the_best_value_older_than_patience():
    # 1.1 and 1.2 are worse than 1.0, but 1.0 is among the last two; 1.3 is compared with it.
    assert validations(NTAveraging(patience=2), [3.0, 2.0, 1.0, 1.1, 1.2, 1.3]) == [False] * 5 + [True]
    assert not any(validations(NTAveraging(patience=2), [3.0, 2.0, 1.0, 0.9, 0.8, 0.7]))


def test_bad_settings_get_clear_errors():
    with pytest.raises(ValueError, match="patience must be at least 1"):
        NTAveraging(patience=0)
    trainer = SimpleNamespace(sanity_checking=False, callback_metrics={"val_ppl": torch.tensor(1.0)})
    with pytest.raises(KeyError, match="monitors 'val_loss'.*logged: val_ppl"):
        NTAveraging().on_validation_end(trainer, None)
