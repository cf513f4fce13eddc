"""The task contract, for all six tasks alike: fit, checkpoint and artifact round trips, predict from
Python, from ``predict_step`` and from the command line, and a subclass that overrides one documented hook."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import TINY_TEXT, quiet_trainer, write_jsonl
from lightning import LightningDataModule

from rnnzoo import (
    AddingProblemDataModule,
    Captioner,
    CategorySequenceDataModule,
    ClassificationDataModule,
    Classifier,
    LanguageModel,
    LanguageModelDataModule,
    RNNTask,
    Seq2Seq,
    SequencePredictor,
    Tagger,
    TaggingDataModule,
    TranslationDataModule,
    load_task,
)
from rnnzoo.cli import VERBS, main

WORDS = ["good", "bad", "film", "plot", "the", "a", "very", "dull", "fun"]


@dataclass
class Case:
    """One task: how to make its data and model, what to predict, and the command line that predicts it."""

    data: Any
    model: Any
    inputs: list[Any]
    options: dict[str, Any]
    command: list[str] | None


def language_model(folder: Path) -> Case:
    folder.mkdir(parents=True)
    for split in ("train", "validation", "test"):
        (folder / f"{split}.txt").write_text(TINY_TEXT, encoding="utf-8")
    data = LanguageModelDataModule(str(folder), batch_size=4, eval_batch_size=2, tbptt_steps=16)
    return Case(
        data,
        lambda data: LanguageModel(data.vocab_size, hidden_size=16, num_layers=1),
        ["All:", "First"],
        {"max_length": 8, "greedy": True},
        ["generate", "--prompt", "All:", "--max_new_tokens", "8", "--temperature", "0"],
    )


def classifier(folder: Path) -> Case:
    rng = random.Random(0)
    rows = [{"text": " ".join(rng.choices(WORDS, k=5)), "label": rng.choice(["neg", "pos"])} for _ in range(64)]
    write_jsonl(folder, {"train": rows[:48], "validation": rows[48:57], "test": rows[57:]})
    data = ClassificationDataModule(str(folder), batch_size=8)
    return Case(
        data,
        lambda data: Classifier(data.vocab_size, 2, hidden_size=8),
        ["a good film", "the plot"],
        {},
        ["classify", "--text", "a good film", "--text+", "the plot"],
    )


def seq2seq(folder: Path) -> Case:
    rng = random.Random(0)
    rows = []
    for _ in range(64):
        words = rng.choices(WORDS, k=4)
        rows.append({"de": " ".join(words), "en": " ".join(reversed(words))})
    write_jsonl(folder, {"train": rows[:48], "validation": rows[48:57], "test": rows[57:]})
    data = TranslationDataModule(str(folder), min_freq=1, batch_size=8)
    return Case(
        data,
        lambda data: Seq2Seq(data.vocab_size, embedding_size=8, hidden_size=8, max_decode_length=8),
        ["good film", "the dull plot"],
        {"beam_size": 2, "n_best": 2},
        ["translate", "--text", "good film", "--text+", "the dull plot", "--beam_size", "2", "--n_best", "2"],
    )


def tagger(folder: Path) -> Case:
    rng = random.Random(0)
    rows = []
    for _ in range(64):
        tokens = rng.choices(WORDS, k=5)
        rows.append({"tokens": tokens, "tags": ["ADJ" if w in ("good", "bad", "dull") else "X" for w in tokens]})
    write_jsonl(folder, {"train": rows[:48], "validation": rows[48:57], "test": rows[57:]})
    data = TaggingDataModule(str(folder), batch_size=8)
    return Case(
        data,
        lambda data: Tagger(2, data.vocab_size, data.char_vocab_size, hidden_size=8, embedding_size=8),
        ["a good film", ["Unseen", "words"]],
        {},
        ["tag", "--text", "a good film", "--text+", "Unseen words"],
    )


def captioner(folder: Path) -> Case:
    rng = random.Random(0)
    names = {"Irish": ["Murphy", "Kelly", "Byrne"], "Russian": ["Ivanov", "Petrov", "Sokolov"]}
    rows = [{"label": lang, "text": rng.choice(names[lang])} for lang in rng.choices(list(names), k=64)]
    write_jsonl(folder, {"train": rows[:48], "validation": rows[48:57], "test": rows[57:]})
    data = CategorySequenceDataModule(str(folder), batch_size=8)
    return Case(
        data,
        lambda data: Captioner(data.vocab_size, num_categories=2, hidden_size=16, max_decode_length=10),
        ["Irish", "Russian"],
        {"beam_size": 2},
        ["caption", "--condition", "Irish", "--condition+", "Russian", "--beam_size", "2"],
    )


def sequence_predictor(folder: Path) -> Case:
    data = AddingProblemDataModule(length=6, train_size=64, val_size=15, test_size=16, batch_size=8)
    return Case(
        data,
        lambda data: SequencePredictor(data.frame_size, hidden_size=8),
        [torch.rand(6, 2, generator=torch.Generator().manual_seed(0)), torch.zeros(6, 2)],
        {},
        None,
    )


CASES = {
    "language_model": language_model,
    "classifier": classifier,
    "seq2seq": seq2seq,
    "tagger": tagger,
    "captioner": captioner,
    "sequence_predictor": sequence_predictor,
}


def fitted(name: str, tmp_path: Path) -> tuple[Case, RNNTask, LightningDataModule, Path]:
    """A model of the task fitted a few steps, and the checkpoint it wrote."""
    case = CASES[name](tmp_path / "data")
    torch.manual_seed(0)
    model = case.model(case.data)
    trainer = quiet_trainer(tmp_path, max_steps=4, val_check_interval=4, limit_val_batches=1)
    trainer.fit(model, datamodule=case.data)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    return case, model, case.data, path


@pytest.fixture(params=list(CASES))
def task(request, tmp_path):
    return (request.param, *fitted(request.param, tmp_path))


def test_fit_logs_the_validation_loss(task):
    name, case, model, data, path = task
    assert model.trainer.callback_metrics["val_loss"].isfinite()
    assert "grad_norm" in model.trainer.callback_metrics


def test_predict_gives_one_json_dict_per_input(task):
    name, case, model, data, path = task
    outputs = model.predict(case.inputs, **case.options)
    assert len(outputs) == len(case.inputs)
    assert all(isinstance(output, dict) for output in outputs)
    json.dumps(outputs)  # servable as it is
    assert model.predict(case.inputs[:1], **case.options) == outputs[:1]  # a row does not depend on the batch
    assert model.predict([]) == []


def test_checkpoint_round_trip_predicts_the_same(task):
    name, case, model, data, path = task
    restored = load_task(path)
    assert type(restored) is type(model)
    assert restored.data_state == model.data_state
    assert restored.predict(case.inputs, **case.options) == model.predict(case.inputs, **case.options)


def test_artifact_round_trip_predicts_the_same(task, tmp_path):
    name, case, model, data, path = task
    model.save_pretrained(tmp_path / "artifact")
    restored = RNNTask.from_pretrained(tmp_path / "artifact")
    assert type(restored) is type(model) and restored.data_state == model.data_state
    assert restored.predict(case.inputs, **case.options) == model.predict(case.inputs, **case.options)


def test_predict_step_answers_like_predict(task, tmp_path):
    name, case, model, data, path = task
    batches = quiet_trainer(tmp_path).predict(model, datamodule=data)
    rows = [row for batch in batches for row in batch]
    assert rows and all(isinstance(row, dict) for row in rows)


def test_the_command_line_answers_like_predict(task, capsys):
    name, case, model, data, path = task
    if case.command is None:
        pytest.skip("SequencePredictor reads frames: it has no inference command, only predict() and predict_step")
    expected = model.predict(case.inputs, **case.options)
    capsys.readouterr()
    main([*case.command, "--ckpt_path", str(path)])
    printed = capsys.readouterr().out
    if name == "language_model":
        assert printed == expected[0]["text"] + "\n"
        return
    echo = VERBS[case.command[0]].echo
    lines = [json.loads(line) for line in printed.splitlines()]
    assert [{key: value for key, value in line.items() if key != echo} for line in lines] == expected


def test_unknown_options_are_one_clear_error(task):
    name, case, model, data, path = task
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['no_such_option'\]"):
        model.predict(case.inputs, no_such_option=1)


def test_a_subclass_overrides_one_hook(task):
    """``derived_metrics`` is a documented hook: a subclass adds a figure, the base class logs it."""
    name, case, model, data, path = task

    class Doubled(type(model)):
        def derived_metrics(self, stage: str, values: dict) -> dict:
            return {**super().derived_metrics(stage, values), f"{stage}_loss_x2": 2 * values[f"{stage}_loss"]}

    sub = Doubled(**model.hparams)
    sub.load_state_dict(model.state_dict())
    result = quiet_trainer(path.parent).validate(sub, datamodule=data, verbose=False)[0]
    assert result["val_loss_x2"] == pytest.approx(2 * result["val_loss"])
