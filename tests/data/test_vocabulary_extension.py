"""Vocabulary extension in the data modules: words unseen in training get an id, and the model their vector."""

from __future__ import annotations

import pytest
import torch
from conftest import quiet_trainer, write_jsonl, write_vectors_file

from rnnzoo import ClassificationDataModule, Classifier, Tagger, TaggingDataModule

TRAIN = [["a", "good", "film"], ["a", "dull", "plot"], ["the", "good", "plot"]] * 6
TEST = [["a", "superb", "film"], ["an", "Awful", "plot"]]  # superb, awful: never seen in training
VECTORS = {
    "the": [0.5, -0.25, 0.125],
    "superb": [1.0, 0.75, -0.5],
    "Awful": [-1.0, -0.5, 0.25],
    "film": [0.25, 0.0, 1.5],
    "zebra": [0.0, 2.0, 0.0],
}


@pytest.fixture
def vectors_file(tmp_path):
    return write_vectors_file(tmp_path / "vectors.txt", VECTORS)


def classification_folder(tmp_path):
    def rows(sentences):
        return [{"text": " ".join(words), "label": int("good" in words or "superb" in words)} for words in sentences]

    return write_jsonl(tmp_path / "reviews", {"train": rows(TRAIN), "validation": rows(TRAIN[:4]), "test": rows(TEST)})


def tagging_folder(tmp_path):
    def rows(sentences):
        return [
            {"tokens": words, "tags": ["DET" if w in ("a", "an", "the") else "X" for w in words]} for words in sentences
        ]

    return write_jsonl(tmp_path / "tags", {"train": rows(TRAIN), "validation": rows(TRAIN[:4]), "test": rows(TEST)})


def test_a_word_vocabulary_takes_the_files_words_after_its_own(vectors_file, tmp_path):
    plain = ClassificationDataModule(str(classification_folder(tmp_path)))
    data = ClassificationDataModule(str(classification_folder(tmp_path)), extend_vocabulary=str(vectors_file))
    before, after = plain.tokenizer, data.tokenizer
    assert len(after) == len(before) + 3  # superb, awful (lower-cased), zebra; the and film are known
    assert [after.tokenizer.token_to_id(w) for w in ("good", "plot")] == [
        before.tokenizer.token_to_id(w) for w in ("good", "plot")
    ]
    assert before.unk_id in plain.encoded_split("test").ids[0].tolist()
    assert after.unk_id not in data.encoded_split("test").ids[0].tolist()
    assert data.data_state().options["vocabulary_extension"] == {"file": "vectors.txt", "new_words": 3}
    assert "vocabulary_extension" not in plain.data_state().options
    capped = ClassificationDataModule(
        str(classification_folder(tmp_path)), extend_vocabulary=str(vectors_file), max_new_words=1
    )
    assert len(capped.tokenizer) == len(before) + 1 and capped.tokenizer.tokenizer.token_to_id("superb") is not None


def test_an_unseen_test_word_reads_its_vector_in_the_classifier(vectors_file, tmp_path):
    data = ClassificationDataModule(
        str(classification_folder(tmp_path)), batch_size=4, extend_vocabulary=str(vectors_file)
    )
    model = Classifier(
        data.vocab_size, 2, hidden_size=4, embedding_size=3, embeddings=str(vectors_file), freeze_embeddings=True
    )
    quiet_trainer(tmp_path, max_steps=2, limit_val_batches=1).fit(model, datamodule=data)
    superb = data.tokenizer.tokenizer.token_to_id("superb")
    assert model.encode_inputs(["a superb film"]).tokens[0, 1] == superb
    assert torch.equal(model.embedding.weight[superb], torch.tensor(VECTORS["superb"]))
    awful = data.tokenizer.tokenizer.token_to_id("awful")  # lower-cased by the tokenizer, matched to 'Awful'
    assert torch.equal(model.embedding.weight[awful], torch.tensor(VECTORS["Awful"]))


def test_an_unseen_test_word_reads_its_vector_in_the_tagger(vectors_file, tmp_path):
    data = TaggingDataModule(str(tagging_folder(tmp_path)), batch_size=4, extend_vocabulary=str(vectors_file))
    words = data.tokenizer
    assert words.encode_words(["Superb", "AWFUL"]).tolist() == [words.ids["superb"], words.ids["awful"]]
    assert data.data_state().options["vocabulary_extension"]["new_words"] == 3
    model = Tagger(
        2,
        data.vocab_size,
        data.char_vocab_size,
        hidden_size=4,
        embedding_size=3,
        embeddings=str(vectors_file),
        freeze_embeddings=True,
    )
    quiet_trainer(tmp_path, max_steps=2, limit_val_batches=1).fit(model, datamodule=data)
    assert torch.equal(model.embedding.weight[words.ids["superb"]], torch.tensor(VECTORS["superb"]))
    assert model.tag("a superb film")[0]["tags"][0] in ("DET", "X")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tokenizer": "bpe"}, "but this data reads BPE pieces: use tokenizer: word"),
        ({"tokenizer": "char"}, "but this data reads characters: use tokenizer: word"),
        ({"pretrained_tokenizer": "sst2-gru_small"}, "cannot change a pretrained tokenizer"),
        ({"max_new_words": -1}, "max_new_words must be at least 0"),
    ],
)
def test_an_extension_that_cannot_work_is_one_clear_error(options, message, vectors_file, tmp_path):
    with pytest.raises(ValueError, match=message):
        ClassificationDataModule(str(tmp_path), extend_vocabulary=str(vectors_file), **options)


def test_frames_have_no_vocabulary_to_extend(vectors_file, tmp_path):
    with pytest.raises(ValueError, match=r"this data reads frames \(frames_column\)"):
        TaggingDataModule(str(tmp_path), frames_column="frames", extend_vocabulary=str(vectors_file))
