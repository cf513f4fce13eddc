"""Pretrained word vectors in the tasks: rows from the file, frozen or trained, projected, saved, clear errors."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch
from conftest import quiet_trainer, write_jsonl, write_vectors_file

from rnnzoo import (
    ClassificationDataModule,
    Classifier,
    LanguageModel,
    LanguageModelDataModule,
    RNNTask,
    Seq2Seq,
    Tagger,
    TaggingDataModule,
    TextTokenizer,
    TranslationDataModule,
    load_task,
)

WORDS = ["good", "bad", "film", "plot", "the", "a", "very", "dull", "fun"]
DIM = 4


def vector_of(index: int) -> list[float]:
    """Values exact in float32 (multiples of 1/8), different for every word."""
    return [((index * DIM + j) % 29 - 14) / 8 for j in range(DIM)]


VECTORS = {word: vector_of(i) for i, word in enumerate(["good", "film", "the", "Plot", "superb", "unrelated"])}


@pytest.fixture
def vectors_file(tmp_path) -> Path:
    return write_vectors_file(tmp_path / "vectors" / "tiny.50d.txt", VECTORS)


def sentences(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [rng.choices(WORDS, k=5) for _ in range(count)]


def classification(folder: Path, **options) -> ClassificationDataModule:
    rows = [{"text": " ".join(words), "label": "pos" if "good" in words else "neg"} for words in sentences(64, 0)]
    write_jsonl(folder, {"train": rows[:48], "validation": rows[48:56], "test": rows[56:]})
    return ClassificationDataModule(str(folder), batch_size=8, **options)


def tagging(folder: Path, **options) -> TaggingDataModule:
    tag = {"good": "ADJ", "bad": "ADJ", "dull": "ADJ", "fun": "ADJ"}
    rows = [{"tokens": words, "tags": [tag.get(w, "X") for w in words]} for words in sentences(64, 1)]
    write_jsonl(folder, {"train": rows[:48], "validation": rows[48:56], "test": rows[56:]})
    return TaggingDataModule(str(folder), batch_size=8, **options)


def translation(folder: Path) -> TranslationDataModule:
    rows = [{"de": " ".join(words), "en": " ".join(reversed(words))} for words in sentences(64, 2)]
    write_jsonl(folder, {"train": rows[:48], "validation": rows[48:56], "test": rows[56:]})
    return TranslationDataModule(str(folder), min_freq=1, batch_size=8)


def build(task: str, folder: Path, **vectors) -> tuple[RNNTask, object]:
    """A data module and a small model of ``task`` given ``vectors`` options."""
    if task == "classifier":
        data = classification(folder)
        return Classifier(data.vocab_size, 2, hidden_size=8, embedding_size=DIM, **vectors), data
    if task == "tagger":
        data = tagging(folder)
        return Tagger(2, data.vocab_size, data.char_vocab_size, hidden_size=8, embedding_size=DIM, **vectors), data
    data = translation(folder)
    return Seq2Seq(data.vocab_size, embedding_size=DIM, hidden_size=8, max_decode_length=6, **vectors), data


def word_id(model: RNNTask, word: str) -> int:
    tokenizer = model.tokenizer.source if isinstance(model, Seq2Seq) else model.tokenizer
    if hasattr(tokenizer, "tokenizer"):
        return tokenizer.tokenizer.token_to_id(word)
    return tokenizer.ids[word]


def fit(model: RNNTask, data, tmp_path: Path, steps: int = 3, **options):
    trainer = quiet_trainer(tmp_path, max_steps=steps, limit_val_batches=1, **options)
    trainer.fit(model, datamodule=data)
    return trainer


# The vectors reach the embedding rows, frozen or trained.


@pytest.mark.parametrize("task", ["classifier", "tagger", "seq2seq"])
@pytest.mark.parametrize("freeze", [True, False], ids=["frozen", "trained"])
def test_fit_fills_the_rows_of_known_words_with_their_vectors(task, freeze, vectors_file, tmp_path):
    torch.manual_seed(0)
    model, data = build(task, tmp_path / "data", embeddings=str(vectors_file), freeze_embeddings=freeze)
    trainer = fit(model, data, tmp_path, steps=3)
    embedding, _ = model.embedding_vocabulary()
    rows = {word: embedding.weight[word_id(model, word)].detach() for word in ("good", "film", "plot")}
    same = [torch.equal(rows[word], torch.tensor(VECTORS[word.replace("plot", "Plot")])) for word in rows]
    assert all(same) if freeze else not any(same)  # 'plot' matched 'Plot' lower-cased
    record = model.data_state.options["embeddings"]
    assert record["file"] == "tiny.50d.txt" and record["dim"] == DIM and record["frozen"] is freeze
    assert record["coverage"]["exact"] + record["coverage"]["lowercased"] >= 4
    optimized = [p for group in trainer.optimizers[0].param_groups for p in group["params"]]
    assert any(p is embedding.weight for p in optimized) is not freeze


def test_the_language_model_takes_the_vectors_too(vectors_file):
    tokenizer = TextTokenizer.train_word_level([" ".join(words) for words in sentences(20, 3)])
    model = LanguageModel(len(tokenizer), hidden_size=8, embedding_size=DIM, embeddings=str(vectors_file))
    model.tokenizer = tokenizer
    coverage = model.load_pretrained_vectors()
    assert coverage.covered == 4  # good, film, the, plot
    good = tokenizer.tokenizer.token_to_id("good")
    torch.testing.assert_close(model.embedding.weight[good].detach(), torch.tensor(VECTORS["good"]))
    assert model.load_pretrained_vectors() is None  # once only


def test_a_frozen_table_stays_fixed_while_its_projection_trains(vectors_file, tmp_path):
    torch.manual_seed(0)
    data = classification(tmp_path / "data")
    model = Classifier(
        data.vocab_size, 2, hidden_size=8, embedding_size=16, embeddings=str(vectors_file), vectors_size=DIM,
        freeze_embeddings=True,
    )  # fmt: skip
    model.tokenizer = data.tokenizer
    model.load_pretrained_vectors()
    table, projection = model.embedding.weight.detach().clone(), model.embedding.projection.weight.detach().clone()
    fit(model, data, tmp_path, steps=4)
    assert torch.equal(model.embedding.weight, table)
    assert not torch.allclose(model.embedding.projection.weight, projection)
    assert model.embedding.weight.shape == (data.vocab_size, DIM) and model.embedding.output_size == 16


def test_a_trained_table_joins_the_frozen_vectors_in_the_backbones_input(vectors_file, tmp_path):
    torch.manual_seed(0)
    data = tagging(tmp_path / "data")
    model = Tagger(
        2, data.vocab_size, data.char_vocab_size, hidden_size=8, embedding_size=DIM, embeddings=str(vectors_file),
        freeze_embeddings=True, trained_embedding_size=6,
    )  # fmt: skip
    assert model.backbone.input_size == DIM + 6 + model.char_encoder.output_size
    model.tokenizer = data.tokenizer
    model.load_pretrained_vectors()
    table, trained = model.embedding.weight.detach().clone(), model.embedding.trained.weight.detach().clone()
    fit(model, data, tmp_path, steps=3)
    assert torch.equal(model.embedding.weight, table) and not torch.equal(model.embedding.trained.weight, trained)


# Checkpoints and artifacts hold what the vectors gave: loading never needs the file.


def test_checkpoint_and_artifact_load_and_fine_tune_without_the_vectors_file(vectors_file, tmp_path):
    torch.manual_seed(0)
    data = classification(tmp_path / "data", extend_vocabulary=str(vectors_file))
    model = Classifier(data.vocab_size, 2, hidden_size=8, embedding_size=DIM, embeddings=str(vectors_file))
    trainer = fit(model, data, tmp_path, steps=3)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    model.save_pretrained(tmp_path / "artifact")
    texts = ["a good film", "superb"]  # 'superb' is only in the vectors file
    expected = model.predict(texts)
    shutil.rmtree(vectors_file.parent)

    loaded = load_task(tmp_path / "model.ckpt")
    assert loaded.predict(texts) == expected
    assert loaded.data_state.options["embeddings"]["file"] == "tiny.50d.txt"
    assert loaded.data_state.options["vocabulary_extension"] == {"file": "tiny.50d.txt", "new_words": 2}
    pretrained = RNNTask.from_pretrained(tmp_path / "artifact")
    assert pretrained.predict(texts) == expected
    config = json.loads((tmp_path / "artifact" / "config.json").read_text())
    coverage = config["data_state"]["options"]["embeddings"]["coverage"]
    assert coverage["exact"] + coverage["lowercased"] == 6  # good, film, the, plot, and the 2 words added
    assert "`tiny.50d.txt` (4 dimensions" in (tmp_path / "artifact" / "README.md").read_text()
    # A second fit (fine-tuning the loaded model) keeps its rows: it would fail reading the deleted file.
    fit(loaded, data, tmp_path / "again", steps=1)


# One clear error for each option that cannot work.


def test_a_width_that_differs_from_embedding_size_without_a_projection_is_one_clear_error(vectors_file, tmp_path):
    data = classification(tmp_path / "data")
    model = Classifier(data.vocab_size, 2, hidden_size=8, embedding_size=8, embeddings=str(vectors_file))
    with pytest.raises(ValueError, match="are 4 wide but the embedding table is 8 wide: set embedding_size to 4"):
        fit(model, data, tmp_path)


def test_a_vocabulary_with_no_word_in_the_file_is_one_clear_error(tmp_path):
    path = write_vectors_file(tmp_path / "other.txt", {"zebra": vector_of(0), "quokka": vector_of(1)})
    data = classification(tmp_path / "data")
    model = Classifier(data.vocab_size, 2, hidden_size=8, embedding_size=DIM, embeddings=str(path))
    with pytest.raises(ValueError, match="no word of the vocabulary .* has a vector in .*other.txt"):
        fit(model, data, tmp_path)


@pytest.mark.parametrize(
    ("kind", "message"), [("char", "this model reads characters"), ("bpe", "splits text into BPE pieces")]
)
def test_vectors_for_characters_or_bpe_pieces_are_one_clear_error_before_the_file_is_read(kind, message, tmp_path):
    data = classification(tmp_path / "data", tokenizer=kind, bpe_vocab_size=300)
    model = Classifier(data.vocab_size, 2, hidden_size=8, embedding_size=DIM, embeddings=str(tmp_path / "absent.txt"))
    with pytest.raises(ValueError, match=message):
        fit(model, data, tmp_path)


def test_a_character_language_model_refuses_word_vectors(tiny_corpus, tmp_path):
    data = LanguageModelDataModule(str(tiny_corpus), batch_size=4, tbptt_steps=8)
    model = LanguageModel(data.vocab_size, hidden_size=8, embeddings=str(tmp_path / "absent.txt"))
    with pytest.raises(ValueError, match="word vectors need word tokens, but this model reads characters"):
        fit(model, data, tmp_path)


def test_options_that_cannot_work_are_clear_errors(vectors_file):
    with pytest.raises(ValueError, match="give embeddings .* too, or drop them"):
        Classifier(20, 2, vectors_size=50)
    with pytest.raises(ValueError, match="give embeddings .* too, or drop them"):
        Tagger(2, 20, 10, freeze_embeddings=True)
    with pytest.raises(ValueError, match="a tagger of frames has no words"):
        Tagger(2, frame_size=3, embeddings=str(vectors_file))
    with pytest.raises(ValueError, match="tie_weights shares the embedding table"):
        LanguageModel(20, hidden_size=8, tie_weights=True, embeddings=str(vectors_file), vectors_size=DIM)
    with pytest.raises(ValueError, match="tie_weights shares the embedding table"):
        LanguageModel(20, hidden_size=8, tie_weights=True, embeddings=str(vectors_file), freeze_embeddings=True)
    with pytest.raises(ValueError, match="tie_weights shares the embedding table"):
        LanguageModel(20, hidden_size=8, tie_weights=True, embeddings=str(vectors_file), trained_embedding_size=2)
    with pytest.raises(ValueError, match="give embeddings .* too, or drop them"):
        Seq2Seq({"source": 10, "target": 10}, trained_embedding_size=8)


def test_the_file_is_read_only_when_a_fit_starts(tmp_path):
    model = Classifier(20, 2, embedding_size=DIM, embeddings=str(tmp_path / "absent.txt"))  # no file: fine here
    assert model.embedding.weight.shape == (20, DIM)
