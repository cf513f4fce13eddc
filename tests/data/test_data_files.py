"""Local data files: paths, globs and split dicts read by csv/json/text builders, with clear errors."""

from __future__ import annotations

import csv
import json
import logging

import pytest

from rnnzoo import ClassificationDataModule, LanguageModelDataModule
from rnnzoo.data.hf import infer_builder, load_splits

REVIEWS = [("a lovely film", "pos"), ("dull and long", "neg"), ("great acting", "pos"), ("awful plot", "neg")] * 10


def write_csv(path, rows, header=("text", "label")):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_classification_from_one_csv_with_string_labels(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", REVIEWS)
    data = ClassificationDataModule(data_files=str(path), val_fraction=0.25, tokenizer="char")
    assert data.label_names == ["neg", "pos"]
    assert sorted(data.splits) == ["train", "validation"]
    assert len(data.splits["train"]) + len(data.splits["validation"]) == len(REVIEWS)
    assert len(data.splits["validation"]) == len(REVIEWS) // 4
    encoded = data.encode("train")
    texts = data.splits["train"]["text"]
    expected = [data.label_names.index(label) for label in data.splits["train"]["label"]]
    assert list(encoded.targets) == expected and len(encoded) == len(texts)


def test_classification_json_and_csv_labels_agree(tmp_path):
    write_csv(tmp_path / "reviews.csv", REVIEWS)
    lines = [json.dumps({"text": text, "label": label}) for text, label in REVIEWS]
    (tmp_path / "reviews.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from_csv = ClassificationDataModule(data_files=str(tmp_path / "reviews.csv"), val_fraction=0.25)
    from_json = ClassificationDataModule(data_files=str(tmp_path / "reviews.jsonl"), val_fraction=0.25)
    assert from_csv.labels == from_json.labels == ["neg", "pos"]
    assert from_csv.splits["validation"]["text"] == from_json.splits["validation"]["text"]


def test_language_model_from_text_files_by_split_and_glob(tmp_path):
    for split, text in (("train", "to be or not\nto be\n"), ("validation", "that is\n"), ("test", "the question\n")):
        (tmp_path / f"{split}.txt").write_text(text, encoding="utf-8")
    files = {split: str(tmp_path / f"{split}.txt") for split in ("train", "validation", "test")}
    data = LanguageModelDataModule(data_files=files, tbptt_steps=4, batch_size=1, eval_batch_size=1)
    assert data.text("train") == "to be or not\nto be"
    assert data.text("validation") == "that is"
    assert data.vocab_size == len(set("to be or not\nto be"))
    globbed = LanguageModelDataModule(data_files={"train": str(tmp_path / "t*.txt")}, builder="text")
    assert sorted(globbed.text("train").split("\n")) == sorted(["the question", "to be or not", "to be"])


def test_glob_matching_nothing_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'.*nothing\*\.csv' \(split 'train'\) matches no file"):
        ClassificationDataModule(data_files=str(tmp_path / "nothing*.csv")).splits


def test_unknown_extension_and_unreadable_file_are_clear_errors(tmp_path):
    (tmp_path / "notes.md").write_text("# hello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"extension\(s\) \['.md'\]; set builder"):
        load_splits(None, data_files=str(tmp_path / "notes.md"))
    (tmp_path / "broken.json").write_text("{not json at all\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"could not load dataset '.*broken.json'.*Check that the files are json"):
        load_splits(None, data_files=str(tmp_path / "broken.json"))
    assert infer_builder({"train": ["a.csv", "b.CSV"]}) == "csv"
    with pytest.raises(ValueError, match=r"mix \['csv', 'json'\]"):
        infer_builder({"train": ["a.csv"], "test": ["b.json"]})


def test_csv_without_the_text_column_names_its_columns(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", REVIEWS, header=("review", "label"))
    data = ClassificationDataModule(data_files=str(path), val_fraction=0.25)
    with pytest.raises(KeyError) as error:
        data.tokenizer
    assert "has no column 'text'; its columns are ['review', 'label']. Set text_column" in error.value.args[0]


def test_neither_dataset_nor_data_files_is_an_error():
    with pytest.raises(ValueError, match="give the data module a dataset .* or data_files"):
        ClassificationDataModule().splits


def test_local_folder_with_hub_options_warns(tmp_path, caplog):
    write_csv(tmp_path / "train.csv", REVIEWS)
    write_csv(tmp_path / "validation.csv", REVIEWS[:4])
    with caplog.at_level(logging.WARNING, logger="rnnzoo.data.hf"):
        data = ClassificationDataModule(str(tmp_path), name="en_ewt", revision="refs/convert/parquet")
        assert sorted(data.splits) == ["train", "validation"]
    assert "ignoring the hub-only option name='en_ewt' for local data" in caplog.text
    assert "ignoring the hub-only option revision='refs/convert/parquet'" in caplog.text


def test_a_config_the_local_folders_readme_declares_is_used_not_ignored(tmp_path, caplog):
    """gesture_phase's local copy holds two configs (ltc_windows, videos): name picks one, as on the hub."""
    for config, rows in (("small", REVIEWS[:4]), ("large", REVIEWS)):
        (tmp_path / config).mkdir()
        write_csv(tmp_path / config / "train.csv", rows)
    header = ["---", "configs:"]
    for config, default in (("small", True), ("large", False)):
        header += [f"- config_name: {config}", f"  default: {str(default).lower()}", "  data_files:"]
        header += [f"  - {{split: train, path: {config}/train.csv}}"]
    (tmp_path / "README.md").write_text("\n".join([*header, "---", "# two configs", ""]))
    with caplog.at_level(logging.WARNING, logger="rnnzoo.data.hf"):
        large = ClassificationDataModule(str(tmp_path), name="large", val_fraction=0.25)
        default = ClassificationDataModule(str(tmp_path), val_fraction=0.25)
        assert len(large.raw_splits()["train"]) == len(REVIEWS) and len(default.raw_splits()["train"]) == 4
    assert "ignoring" not in caplog.text


def test_the_gesture_phase_video_recipes_read_the_videos_config_of_the_local_copy():
    from conftest import shared_dataset

    folder = str(shared_dataset("gesture_phase"))
    videos, windows = (
        load_splits(folder, "videos", None, None, None),
        load_splits(folder, "ltc_windows", None, None, None),
    )
    assert (len(videos["train"]), len(windows["train"])) == (5, 455)  # five whole videos; 455 windows of 32 frames
