"""The data-module base: one missing-column message, labels derived once, no I/O in __init__, data_state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_jsonl
from datasets import ClassLabel, DatasetDict

import rnnzoo.data.base
import rnnzoo.data.long_range
from rnnzoo.batches import (
    CaptionBatch,
    ClassificationBatch,
    FrameBatch,
    TaggingBatch,
    TokenChunk,
    TranslationBatch,
)
from rnnzoo.data import (
    AddingProblemDataModule,
    CategorySequenceDataModule,
    ClassificationDataModule,
    ImageCaptionDataModule,
    LanguageModelDataModule,
    PixelSequenceDataModule,
    TaggingDataModule,
    TranslationDataModule,
    derive_labels,
)
from rnnzoo.data.shapes import shapes_dataset
from rnnzoo.data_state import DataState
from rnnzoo.tokenizers import PairTokenizer

TEXTS = ["a good film", "a bad plot", "good fun", "dull and bad", "lovely", "awful"]


def rows(count: int) -> list[dict]:
    """``count`` toy rows, with a column for every data module."""
    made = []
    for i in range(count):
        text = TEXTS[i % len(TEXTS)]
        words = text.split()
        made.append(
            {
                "text": text,
                "label": ["neg", "pos"][i % 2],
                "tokens": words,
                "tags": ["O", "B-X", "I-X"][: len(words)],
                "frames": [[float(i), 1.0]] * len(words),
                "de": f"ein {text}",
                "en": text,
                "pixels": [i % 256, 0, 255, 7],
                "digit": i % 3,
            }
        )
    return made


@pytest.fixture
def toy(tmp_path) -> Path:
    """One folder dataset whose rows hold a column for every data module."""
    return write_jsonl(tmp_path / "toy", {"train": rows(12), "validation": rows(6), "test": rows(6)})


def shapes_module(caption_column: str | list[str] = "captions", **options) -> ImageCaptionDataModule:
    """A generated-shapes captioning module small enough for a test."""
    data = ImageCaptionDataModule("generated:shapes", caption_column=caption_column, image_size=16, **options)
    data.raw_splits = lambda: shapes_dataset(8, 4, 4, size=16)
    return data


MODULES = {
    "language_model": lambda folder, **kw: LanguageModelDataModule(folder, batch_size=2, eval_batch_size=2, **kw),
    "classification": lambda folder, **kw: ClassificationDataModule(folder, batch_size=4, **kw),
    "tagging": lambda folder, **kw: TaggingDataModule(folder, batch_size=4, **kw),
    "tagging_frames": lambda folder, **kw: TaggingDataModule(folder, batch_size=4, **{"frames_column": "frames", **kw}),
    "translation": lambda folder, **kw: TranslationDataModule(folder, min_freq=1, batch_size=4, **kw),
    "category": lambda folder, **kw: CategorySequenceDataModule(folder, batch_size=4, **kw),
    "pixels": lambda folder, **kw: PixelSequenceDataModule(
        folder, split="train", sizes=(6, 3, 3), batch_size=4, **{"label_column": "digit", **kw}
    ),
}
BATCHES = {
    "language_model": TokenChunk,
    "classification": ClassificationBatch,
    "tagging": TaggingBatch,
    "tagging_frames": TaggingBatch,
    "translation": TranslationBatch,
    "category": CaptionBatch,
    "pixels": FrameBatch,
}


# One missing-column message, naming the option to set.


@pytest.mark.parametrize(
    ("kind", "option"),
    [
        ("language_model", "text_column"),
        ("classification", "text_column"),
        ("classification", "label_column"),
        ("tagging", "tokens_column"),
        ("tagging", "tags_column"),
        ("tagging_frames", "frames_column"),
        ("translation", "source_column"),
        ("translation", "target_column"),
        ("category", "label_column"),
        ("category", "text_column"),
        ("pixels", "image_column"),
        ("pixels", "label_column"),
    ],
)
def test_a_missing_column_is_one_key_error_naming_the_option(kind, option, toy):
    data = MODULES[kind](str(toy), **{option: "nowhere"})
    with pytest.raises(KeyError) as caught:
        data.setup("fit")
    message = caught.value.args[0]
    assert message.startswith("split 'train' of dataset ") and "has no column 'nowhere'; its columns are [" in message
    assert f". Set {option} to one of them" in message


def test_caption_columns_are_checked_one_by_one():
    data = shapes_module(caption_column=["captions", "caption_1"])
    with pytest.raises(KeyError, match=r"has no column 'caption_1'; .*Set caption_column to one of them\."):
        data.setup("fit")


def test_a_missing_split_is_a_key_error_listing_the_splits(toy):
    with pytest.raises(KeyError, match=r"has no split 'dev'; its splits are \['test', 'train', 'validation'\]"):
        ClassificationDataModule(str(toy), test_split="dev").setup("test")


# Labels: one helper, derived once from the training split.


def test_derive_labels_reads_a_class_label_feature():
    feature = ClassLabel(names=["neg", "pos", "mixed"])
    assert derive_labels([0, 1], feature, "label") == ([0, 1, 2], ["neg", "pos", "mixed"])
    with pytest.raises(ValueError, match="differ from the dataset's own names"):
        derive_labels([0, 1], feature, "label", label_names=["a", "b", "c"])


def test_derive_labels_sorts_ints_and_skips_hidden_ones():
    assert derive_labels([3, 1, -1, None, 1, 10], None, "label") == ([1, 3, 10], ["1", "3", "10"])
    assert derive_labels([0, 2, 1], None, "tags", label_names=["O", "B", "I"]) == ([0, 1, 2], ["O", "B", "I"])


def test_derive_labels_sorts_strings_or_takes_the_order_of_label_names():
    assert derive_labels(["pos", "neg", "pos"], None, "label") == (["neg", "pos"], ["neg", "pos"])
    assert derive_labels(["O", "B-X"], None, "tags", label_names=["O", "B-X", "I-X"]) == (
        ["O", "B-X", "I-X"],
        ["O", "B-X", "I-X"],
    )
    with pytest.raises(ValueError, match=r"column 'label' must hold ints or strings.*\['float'\]"):
        derive_labels([0.5, 1.5], None, "label")


def test_per_step_tags_are_flattened_and_read_with_the_feature_of_one_step(toy):
    data = TaggingDataModule(str(toy))
    assert (data.labels, data.label_names) == (["B-X", "I-X", "O"], ["B-X", "I-X", "O"])
    assert data.encoded_split("train").tags[0].tolist() == [2, 0, 1]  # "a good film": O B-X I-X


@pytest.mark.parametrize("kind", ["classification", "tagging", "category"])
def test_labels_are_derived_once(kind, toy, monkeypatch):
    calls = []
    real = rnnzoo.data.base.derive_labels
    monkeypatch.setattr(rnnzoo.data.base, "derive_labels", lambda *args, **kw: calls.append(1) or real(*args, **kw))
    data = MODULES[kind](str(toy))
    data.setup("fit")
    data.labels, data.label_names, data.data_state()
    data.setup("test")
    assert len(calls) == 1


# No I/O in __init__.


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_constructing_reads_nothing_until_first_use(kind, tmp_path):
    data = MODULES[kind](str(tmp_path / "not_there"))  # no error yet
    assert data.encoded == {}
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.setup("fit")


def test_the_image_module_reads_nothing_until_first_use(tmp_path):
    data = ImageCaptionDataModule(str(tmp_path / "not_there"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.vocab_size


def test_the_adding_problem_is_generated_at_setup_not_in_init(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("generated")

    monkeypatch.setattr(rnnzoo.data.long_range, "adding_problem", refuse)
    data = AddingProblemDataModule(length=10, train_size=8, val_size=4, test_size=4, batch_size=4)
    assert data.frame_size == 2 and data.encoded == {}
    with pytest.raises(AssertionError, match="generated"):
        data.setup("fit")


def test_pixel_frame_size_is_known_before_setup(tmp_path):
    data = PixelSequenceDataModule(str(tmp_path / "not_there"))
    assert data.frame_size == 1


# Every loader yields the batch types of rnnzoo.batches.


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_loaders_yield_the_batch_types_of_rnnzoo_batches(kind, toy):
    data = MODULES[kind](str(toy))
    data.setup("fit")
    for loader in (data.train_dataloader(), data.val_dataloader()):
        assert type(next(iter(loader))) is BATCHES[kind]


def test_the_image_loader_yields_caption_batches():
    data = shapes_module(batch_size=4)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert type(batch) is CaptionBatch and batch.condition.shape == (4, 3, 16, 16)


def test_the_adding_loader_yields_frame_batches():
    data = AddingProblemDataModule(length=10, train_size=8, val_size=4, test_size=4, batch_size=4)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert type(batch) is FrameBatch and batch.frames.shape == (4, 10, 2) and batch.targets.shape == (4,)


# data_state(): built from the training split, round-trips through to_dict / from_dict.


def round_trip(state: DataState) -> DataState:
    return DataState.from_dict(json.loads(json.dumps(state.to_dict())))


def test_language_model_data_state(toy):
    data = MODULES["language_model"](str(toy))
    state = data.data_state()
    assert state == DataState(tokenizer=data.tokenizer) and state.tokenizer is not None
    assert round_trip(state) == state


def test_classification_data_state(toy):
    data = MODULES["classification"](str(toy), max_length=7)
    state = data.data_state()
    assert (state.tokenizer, state.char_tokenizer) == (data.tokenizer, None)
    assert (state.labels, state.label_names) == (data.labels, data.label_names) == (["neg", "pos"], ["neg", "pos"])
    assert state.options == {"max_length": 7}
    assert round_trip(state) == state


@pytest.mark.parametrize("kind", ["tagging", "tagging_frames"])
def test_tagging_data_state(kind, toy):
    data = MODULES[kind](str(toy), max_word_length=5)
    state = data.data_state()
    assert (state.tokenizer, state.char_tokenizer) == (data.tokenizer, data.char_tokenizer)
    assert (state.tokenizer is None) == (kind == "tagging_frames")
    assert (state.labels, state.label_names) == (data.labels, data.label_names)
    frames = {"frame_mean", "frame_std"} if kind == "tagging_frames" else set()  # the normalisation statistics
    assert set(state.options) == {"max_word_length", *frames} and state.options["max_word_length"] == 5
    assert round_trip(state) == state


def test_translation_data_state(toy):
    data = MODULES["translation"](str(toy))
    state = data.data_state()
    assert isinstance(state.tokenizer, PairTokenizer) and state == DataState(tokenizer=data.tokenizer)
    assert round_trip(state) == state


def test_category_data_state(toy):
    data = MODULES["category"](str(toy))
    state = data.data_state()
    assert state.tokenizer == data.tokenizer
    assert state.labels == state.label_names == data.categories == ["neg", "pos"]
    assert round_trip(state) == state


def test_image_caption_data_state():
    data = shapes_module(image_channels=3, std=[0.5, 0.5, 0.5])
    state = data.data_state()
    assert state.tokenizer == data.tokenizer and state.labels is None
    assert state.options == {
        "image_size": 16,
        "image_channels": 3,
        "mean": [0.485, 0.456, 0.406],  # the default, resolved
        "std": [0.5, 0.5, 0.5],
    }
    assert round_trip(state) == state


def test_frame_modules_have_an_empty_data_state(toy):
    assert AddingProblemDataModule(length=4).data_state() == DataState()
    assert MODULES["pixels"](str(toy)).data_state() == DataState()
    assert round_trip(DataState()) == DataState()


def test_a_carved_validation_split_is_made_once_from_the_loaded_splits(toy, monkeypatch):
    data = ClassificationDataModule(str(toy), val_split="dev", val_fraction=0.25)
    loads = []
    real = data.raw_splits
    monkeypatch.setattr(data, "raw_splits", lambda: loads.append(1) or real())
    data.setup("fit")
    data.setup("test")
    assert len(loads) == 1 and isinstance(data.splits, DatasetDict)
    assert (len(data.splits["train"]), len(data.splits["dev"])) == (9, 3)


# A misspelled validation split is refused, never carved out of train.


@pytest.mark.parametrize("kind", ["classification", "tagging", "category"])
def test_a_misspelled_val_split_is_refused_not_carved(kind, toy):
    data = MODULES[kind](str(toy), val_split="valdation")
    with pytest.raises(
        KeyError, match=r"no split 'valdation' \(val_split\).*Did you mean 'validation'\?.*val_fraction"
    ):
        data.setup("fit")


@pytest.mark.parametrize("kind", ["classification", "tagging", "category"])
def test_an_absent_val_split_is_carved_when_asked_or_when_none_was_named(kind, tmp_path):
    folder = write_jsonl(tmp_path / "no_validation", {"train": rows(12), "test": rows(6)})
    default = MODULES[kind](str(folder))  # no split named: 10 % of train, as before
    default.setup("fit")
    assert len(default.splits["validation"]) == 2 and len(default.splits["train"]) == 10
    asked = MODULES[kind](str(folder), val_split="holdout", val_fraction=0.25)
    asked.setup("fit")
    assert len(asked.splits["holdout"]) == 3


# NaN or inf in frame inputs: refused when the split is encoded.


def test_nan_or_inf_in_frame_features_is_refused_naming_the_rows(tmp_path):
    train = rows(12)
    train[3]["frames"] = [[float("nan"), 1.0]] * len(train[3]["tokens"])
    train[7]["frames"][0] = [float("inf"), 0.0]
    folder = write_jsonl(tmp_path / "frames", {"train": train, "validation": rows(6), "test": rows(6)})
    data = MODULES["tagging_frames"](str(folder))
    with pytest.raises(
        ValueError, match=r"split 'train' has NaN or infinite frame features in 2 row\(s\), by position \[3, 7\]"
    ):
        data.setup("fit")


def test_nan_in_generated_frames_is_refused(monkeypatch):
    data = AddingProblemDataModule(length=4, train_size=8, val_size=4, test_size=4)
    real = data.make_splits

    def with_a_nan():
        splits = real()
        splits["validation"].tensors[0][2, 1, 0] = float("nan")
        return splits

    monkeypatch.setattr(data, "make_splits", with_a_nan)
    with pytest.raises(
        ValueError, match=r"split 'validation' has NaN or infinite frame features in 1 row\(s\), by position \[2\]"
    ):
        data.setup("fit")


# Error messages built from data are capped.


def test_a_text_column_taken_for_labels_gives_a_short_message(tmp_path):
    """Every text is a label: the validation texts are all unknown labels, and the message stays short."""

    def long_rows(start, count):
        return [{"text": f"review {i} " + "word " * 200, "label": i % 2} for i in range(start, start + count)]

    splits = {"train": long_rows(0, 300), "validation": long_rows(300, 50), "test": long_rows(350, 5)}
    folder = write_jsonl(tmp_path / "long", splits)
    data = ClassificationDataModule(str(folder), label_column="text")
    with pytest.raises(ValueError, match=r"has label\(s\) \[.*\.\.\. and \d+ more\] that the training split") as error:
        data.setup("fit")
    assert len(str(error.value)) < 1500


@pytest.mark.parametrize(
    ("kind", "option"),
    [("classification", "text_column"), ("translation", "source_column"), ("category", "text_column")],
)
def test_a_column_of_numbers_given_as_text_is_one_clear_error(kind, option, toy):
    data = MODULES[kind](str(toy), **{option: "digit"})
    with pytest.raises(ValueError, match=rf"column 'digit' \({option}\) of split 'train' holds int values, not text"):
        data.setup("fit")
