"""Captioning from precomputed image features: a ``vector`` condition read from a feature column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy
import pytest
import torch
from conftest import quiet_trainer, write_jsonl
from datasets import Dataset, DatasetDict

from rnnzoo import Captioner, ImageCaptionDataModule, load_task
from rnnzoo.cli import main

CAPTIONS = ["a red square", "a blue circle on the left", "two green triangles", "a dog"]
FEATURES = 6


def feature_rows(count: int, seed: int) -> list[dict]:
    """``count`` rows per caption: that caption's own direction in feature space, plus a little noise."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.eye(len(CAPTIONS), FEATURES) * 3.0
    return [
        {"features": (directions[k] + 0.1 * torch.randn(FEATURES, generator=generator)).tolist(), "caption": caption}
        for k, caption in enumerate(CAPTIONS)
        for _ in range(count)
    ]


def feature_folder(folder: Path) -> Path:
    """A folder dataset of generated feature vectors and their captions, three splits."""
    return write_jsonl(
        folder, {"train": feature_rows(8, 0), "validation": feature_rows(1, 1), "test": feature_rows(1, 2)}
    )


def feature_module(folder: Path, **options) -> ImageCaptionDataModule:
    return ImageCaptionDataModule(str(folder), feature_column="features", batch_size=8, **options)


def test_feature_vectors_are_the_conditions_and_the_model_learns_to_caption_them(tmp_path):
    data = feature_module(feature_folder(tmp_path / "features"))
    assert data.feature_size == FEATURES and data.data_state().options == {"feature_size": FEATURES}
    torch.manual_seed(0)
    model = Captioner(data.vocab_size, "vector", feature_size=data.feature_size, hidden_size=32, embedding_size=16)
    trainer = quiet_trainer(tmp_path, max_epochs=40, limit_val_batches=0)
    trainer.fit(model, data)
    rows = feature_rows(1, 3)  # unseen noise around each caption's direction
    assert model.caption([row["features"] for row in rows]) == CAPTIONS
    assert data.encoded_split("test").conditions[0].shape == (FEATURES,)


def test_the_cli_links_feature_size_and_captions_feature_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folder = feature_folder(tmp_path / "features")
    config = {
        "trainer": {"max_steps": 2, "enable_progress_bar": False, "logger": False, "default_root_dir": "runs"},
        "model": {"class_path": "rnnzoo.Captioner", "init_args": {"condition": "vector", "hidden_size": 8}},
        "data": {
            "class_path": "rnnzoo.ImageCaptionDataModule",
            "init_args": {"dataset": str(folder), "feature_column": "features", "batch_size": 8},
        },
    }
    (tmp_path / "config.yaml").write_text(json.dumps(config), encoding="utf-8")
    main(["fit", "--config", str(tmp_path / "config.yaml")])
    checkpoint = str(next(tmp_path.rglob("*.ckpt")))
    model = load_task(checkpoint)
    assert model.hparams.feature_size == FEATURES
    vector = torch.tensor(feature_rows(1, 4)[0]["features"])
    numpy.save(tmp_path / "photo.npy", vector.numpy())
    torch.save(vector, tmp_path / "photo.pt")
    capsys.readouterr()
    main(
        [
            "caption",
            "--ckpt_path",
            checkpoint,
            "--features+",
            str(tmp_path / "photo.npy"),
            "--features+",
            str(tmp_path / "photo.pt"),
        ]
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == model.caption([vector, vector])
    numpy.save(tmp_path / "map.npy", numpy.zeros((2, FEATURES), dtype=numpy.float32))
    with pytest.raises(SystemExit):
        main(["caption", "--ckpt_path", checkpoint, "--features", str(tmp_path / "map.npy")])
    assert "holds an array of shape [2, 6]: a feature vector is 1-D" in capsys.readouterr().err


def test_feature_vectors_of_another_length_or_not_finite_are_one_clear_error(tmp_path, monkeypatch):
    rows = feature_rows(2, 0)
    bad_length = [*rows, {"features": [1.0, 2.0], "caption": "short"}]
    data = feature_module(write_jsonl(tmp_path / "length", {"train": bad_length, "validation": rows}))
    with pytest.raises(ValueError, match=r"row 8 of feature column 'features' of split 'train' holds 2 features"):
        data.setup("fit")
    not_finite = [*rows, {"features": [float("nan")] * FEATURES, "caption": "nan"}]
    data = feature_module(tmp_path / "nan")  # JSON has no NaN: the splits are given as they load
    splits = DatasetDict({"train": Dataset.from_list(not_finite), "validation": Dataset.from_list(rows)})
    monkeypatch.setattr(data, "raw_splits", lambda: splits)
    with pytest.raises(ValueError, match="image features"):
        data.setup("fit")
    text = [{"features": "resnet", "caption": "a dog"}] * 2
    data = feature_module(write_jsonl(tmp_path / "text", {"train": text, "validation": text}))
    with pytest.raises(ValueError, match="feature column 'features' must hold lists of floats"):
        data.feature_size


def test_a_model_of_another_condition_on_feature_vectors_is_one_clear_error(tmp_path):
    data = feature_module(feature_folder(tmp_path / "features"))
    model = Captioner(data.vocab_size, "image", hidden_size=8)
    with pytest.raises(ValueError, match="set condition='vector' and feature_size=6"):
        quiet_trainer(tmp_path, max_steps=1).fit(model, data)
