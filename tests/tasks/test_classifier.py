"""Many-to-one classification: padding invariance, labels, tokenizers, bucketing, checkpoints, errors, learning."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch
from conftest import quiet_trainer, shared_dataset, write_jsonl
from datasets import ClassLabel, Dataset, Features, Value
from torch.utils.data import DistributedSampler, RandomSampler, SequentialSampler

from rnnzoo import ClassificationDataModule, Classifier, TextTokenizer, list_cells, load_task
from rnnzoo.data import BucketBatchSampler, pad_sequences
from rnnzoo.nn.pooling import SequencePooling

POOLINGS = ["last", "mean", "max", "attention"]


WORDS = {1: ["good", "great", "fine", "lovely", "fun"], 0: ["bad", "awful", "dull", "poor", "boring"]}


def toy_rows(count: int, seed: int, label=lambda sign: sign) -> list[dict]:
    """Short reviews whose sentiment words decide the label; the rest is shared filler."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        sign = rng.randint(0, 1)
        words = [rng.choice(WORDS[sign]) for _ in range(rng.randint(1, 3))]
        words += rng.choices(["the", "film", "was", "a", "plot", "and", "it"], k=rng.randint(0, 8))
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": label(sign)})
    return rows


@pytest.fixture
def toy_reviews(tmp_path) -> Path:
    return write_jsonl(
        tmp_path / "toy_reviews",
        {"train": toy_rows(400, 0), "validation": toy_rows(80, 1), "test": toy_rows(80, 2)},
    )


# The model: a prediction never depends on the padding of its batch.


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", list_cells())
def test_prediction_does_not_depend_on_padding(cell, pooling, bidirectional):
    torch.manual_seed(0)
    model = Classifier(30, 3, cell=cell, hidden_size=8, num_layers=2, bidirectional=bidirectional, pooling=pooling)
    model.eval()
    sequences = [torch.randint(0, 30, (length,)) for length in (5, 1, 9, 3)]
    tokens, lengths = pad_sequences(sequences, padding_value=7)
    together = model(tokens, lengths)
    alone = torch.cat([model(sequence.unsqueeze(0)) for sequence in sequences])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)
    # More padding, of another value, changes nothing either.
    wider = torch.nn.functional.pad(tokens, (0, 4), value=3)
    torch.testing.assert_close(model(wider, lengths), together, atol=1e-6, rtol=1e-5)


def test_last_pooling_reads_both_directions_at_their_ends():
    outputs = torch.arange(2 * 4 * 4, dtype=torch.float).view(2, 4, 4)
    lengths = torch.tensor([3, 4])
    pooled = SequencePooling("last", 4, bidirectional=True)(outputs, lengths)
    # Forward half at the last real step, backward half at step 0.
    torch.testing.assert_close(pooled[0], torch.cat([outputs[0, 2, :2], outputs[0, 0, 2:]]))
    torch.testing.assert_close(pooled[1], torch.cat([outputs[1, 3, :2], outputs[1, 0, 2:]]))


def test_bad_pooling_is_a_clear_error():
    with pytest.raises(ValueError, match="pooling must be one of last, mean, max, attention"):
        Classifier(10, 2, pooling="sum")


# Tokenizers.


def test_word_tokenizer_options():
    texts = ["The cat sat.", "the cat ran!", "A dog"]
    tokenizer = TextTokenizer.train_word_level(texts, min_freq=2)
    assert tokenizer.tokens("The CAT sat") == ["the", "cat", "<unk>"]  # "sat" is seen once only
    assert len(TextTokenizer.train_word_level(texts, max_vocab_size=6)) == 6  # 4 special tokens + "the", "cat"
    cased = TextTokenizer.train_word_level(texts, lowercase=False)
    assert cased.tokens("The the") == ["The", "the"]
    assert tokenizer.encode("zebra").tolist() == [tokenizer.unk_id]


def test_bpe_round_trips_any_text():
    tokenizer = TextTokenizer.train_bpe(["the cat sat on the mat"] * 20, vocab_size=300)
    text = "The zebra ate crème brûlée, 12 €!"
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.unk_id not in tokenizer.encode(text).tolist()


def test_tokenizers_survive_to_dict():
    from rnnzoo.tokenizers import tokenizer_from_dict

    tokenizer = TextTokenizer.train_word_level(["a b c", "b c d"])
    copy = tokenizer_from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert copy == tokenizer and copy.encode("a d e").tolist() == tokenizer.encode("a d e").tolist()


# Length bucketing.


def test_bucketing_covers_every_index_once_with_little_padding():
    torch.manual_seed(0)
    lengths = torch.randint(1, 200, (1000,)).tolist()
    data = list(range(1000))
    bucketed = list(BucketBatchSampler(RandomSampler(data), 32, False, lengths, pool_batches=10))
    assert sorted(i for batch in bucketed for i in batch) == data
    assert len(bucketed) == len(BucketBatchSampler(RandomSampler(data), 32, False, lengths, pool_batches=10))

    def efficiency(batches):
        real = sum(lengths[i] for batch in batches for i in batch)
        return real / sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)

    shuffled = torch.randperm(1000).split(32)
    assert efficiency(bucketed) > 0.85 > 0.6 > efficiency([batch.tolist() for batch in shuffled])


def test_bucketing_is_random_across_epochs_and_sorted_for_evaluation():
    lengths = list(range(100, 0, -1))
    sampler = BucketBatchSampler(RandomSampler(range(100)), 10, False, lengths, pool_batches=3)
    assert list(sampler) != list(sampler)
    evaluation = BucketBatchSampler(SequentialSampler(range(100)), 10, False, lengths, shuffle=False)
    flat = [i for batch in evaluation for i in batch]
    assert [lengths[i] for i in flat] == sorted(lengths)


def test_bucketing_under_ddp_splits_the_indices_between_ranks():
    lengths = torch.randint(1, 50, (101,)).tolist()
    ranks = [
        [
            i
            for batch in BucketBatchSampler(
                DistributedSampler(range(101), num_replicas=2, rank=rank, seed=1), 8, False, lengths
            )
            for i in batch
        ]
        for rank in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1]) == 51  # DistributedSampler pads to equal shares
    assert set(ranks[0]) | set(ranks[1]) == set(range(101))


# Labels: ClassLabel names, ints or strings, saved with the model.


def fit_briefly(model, data, tmp_path, **kwargs):
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=3, limit_val_batches=1, **kwargs)
    trainer.fit(model, data)
    return trainer


@pytest.mark.parametrize("kind", ["classlabel", "ints", "strings"])
def test_labels_round_trip_through_a_checkpoint(kind, tmp_path):
    folder = tmp_path / kind
    names = ["negative", "positive"]
    rows = {split: toy_rows(40, seed) for seed, split in enumerate(["train", "validation", "test"])}
    if kind == "classlabel":
        features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
        folder.mkdir()
        for split, split_rows in rows.items():
            Dataset.from_list(split_rows, features=features).to_parquet(str(folder / f"{split}.parquet"))
        expected_labels, expected_names = [0, 1], names
    elif kind == "ints":
        write_jsonl(folder, {split: [{**r, "label": r["label"] * 5} for r in rs] for split, rs in rows.items()})
        expected_labels, expected_names = [0, 5], ["0", "5"]
    else:
        write_jsonl(folder, {split: [{**r, "label": names[r["label"]]} for r in rs] for split, rs in rows.items()})
        expected_labels, expected_names = names, names
    data = ClassificationDataModule(str(folder), batch_size=8)
    assert (data.labels, data.label_names) == (expected_labels, expected_names)
    model = Classifier(data.vocab_size, data.num_classes, hidden_size=8)
    trainer = fit_briefly(model, data, tmp_path)
    path = tmp_path / f"{kind}.ckpt"
    trainer.save_checkpoint(path)
    restored = load_task(str(path))
    assert (restored.labels, restored.label_names) == (expected_labels, expected_names)
    result = restored.classify("good film")[0]
    assert result["label"] in expected_labels and set(result["probabilities"]) == set(expected_names)


def test_a_checkpoint_classifies_text_with_no_dataset_present(toy_reviews, tmp_path):
    data = ClassificationDataModule(str(toy_reviews), batch_size=16)
    model = Classifier(data.vocab_size, data.num_classes, hidden_size=16)
    trainer = fit_briefly(model, data, tmp_path)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    texts = ["a lovely fun film", "dull and boring plot", "unseen words only"]
    before = model.classify(texts)
    shutil.rmtree(toy_reviews)
    after = load_task(str(path)).classify(texts)
    assert [r["label"] for r in after] == [r["label"] for r in before]
    for new, old in zip(after, before, strict=True):
        assert new["probabilities"] == pytest.approx(old["probabilities"], abs=1e-6)


def test_balanced_class_weights_follow_the_training_counts(tmp_path):
    rows = [{"text": f"good {i}", "label": 1} for i in range(30)] + [{"text": "bad", "label": 0}] * 10
    folder = write_jsonl(tmp_path / "skewed", {"train": rows, "validation": rows[:5] + rows[-5:], "test": rows})
    data = ClassificationDataModule(str(folder), batch_size=8)
    model = Classifier(data.vocab_size, 2, hidden_size=4, class_weights="balanced")
    fit_briefly(model, data, tmp_path)
    torch.testing.assert_close(model.class_weight, torch.tensor([40 / 20, 40 / 60]))


# Validation carving, hidden labels, empty texts.


def test_validation_is_carved_from_train_when_missing(tmp_path, caplog):
    folder = write_jsonl(tmp_path / "no_val", {"train": toy_rows(100, 0), "test": toy_rows(10, 1)})
    data = ClassificationDataModule(str(folder), val_fraction=0.2, seed=3)
    with caplog.at_level("WARNING"):
        data.setup("fit")
    assert "has no split 'validation': carved 20 rows" in caplog.text
    assert len(data.encoded_split("train")) == 80 and len(data.encoded_split("validation")) == 20
    again = ClassificationDataModule(str(folder), val_fraction=0.2, seed=3)
    assert again.splits["validation"]["text"] == data.splits["validation"]["text"]


def test_hidden_test_labels_are_not_scored_but_can_be_predicted(tmp_path):
    hidden = [{**row, "label": -1} for row in toy_rows(20, 2)]
    folder = write_jsonl(tmp_path / "hidden", {"train": toy_rows(60, 0), "validation": toy_rows(10, 1), "test": hidden})
    data = ClassificationDataModule(str(folder), batch_size=8)
    model = Classifier(data.vocab_size, data.num_classes, hidden_size=4)
    trainer = fit_briefly(model, data, tmp_path)
    with pytest.raises(ValueError, match="20 of 20 rows of split 'test' .* have no label"):
        trainer.test(model, data)
    predictions = [row for batch in trainer.predict(model, data) for row in batch]
    assert len(predictions) == 20 and {p["label"] for p in predictions} <= {0, 1}


def test_empty_texts_are_dropped_from_data_and_refused_by_classify(tmp_path, caplog):
    rows = [*toy_rows(30, 0), {"text": "", "label": 0}, {"text": None, "label": 1}, {"text": " ", "label": 1}]
    folder = write_jsonl(tmp_path / "empties", {"train": rows, "validation": rows, "test": rows})
    data = ClassificationDataModule(str(folder))
    with caplog.at_level("WARNING"):
        assert len(data.encoded_split("train")) == 30
    assert "dropped 3 empty text(s)" in caplog.text
    model = Classifier(data.vocab_size, 2, hidden_size=4)
    model.tokenizer = data.tokenizer
    with pytest.raises(ValueError, match=r"text\(s\) \[1\] are empty"):
        model.classify(["good", "  "])


# Bad input: one clear error each.


def test_missing_columns_are_clear_errors(toy_reviews):
    with pytest.raises(KeyError, match="has no column 'review'.*Set text_column"):
        ClassificationDataModule(str(toy_reviews), text_column="review").vocab_size
    with pytest.raises(KeyError, match="has no column 'sentiment'.*Set label_column"):
        ClassificationDataModule(str(toy_reviews), label_column="sentiment").num_classes


def test_one_class_in_training_is_a_clear_error(tmp_path):
    rows = [{"text": "good", "label": "pos"}] * 5
    folder = write_jsonl(tmp_path / "one_class", {"train": rows, "validation": rows, "test": rows})
    with pytest.raises(ValueError, match="holds 1 distinct label.*at least two classes"):
        ClassificationDataModule(str(folder)).num_classes


def test_a_label_unseen_in_training_is_a_clear_error(tmp_path):
    train = [{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}] * 5
    test = [{"text": "meh", "label": "neutral"}]
    folder = write_jsonl(tmp_path / "unseen", {"train": train, "validation": train, "test": test})
    with pytest.raises(ValueError, match=r"label\(s\) \['neutral'\] that the training split 'train' does not name"):
        ClassificationDataModule(str(folder)).setup("test")


def test_num_classes_disagreeing_with_the_data_is_a_clear_error(toy_reviews, tmp_path):
    data = ClassificationDataModule(str(toy_reviews))
    model = Classifier(data.vocab_size, num_classes=3, hidden_size=4)
    with pytest.raises(ValueError, match=r"num_classes=3 but the data has 2 classes"):
        fit_briefly(model, data, tmp_path)


def test_data_with_other_labels_than_the_checkpoint_is_a_clear_error(toy_reviews, tmp_path):
    data = ClassificationDataModule(str(toy_reviews))
    model = Classifier(data.vocab_size, 2, hidden_size=4)
    model.data_state.labels, model.data_state.label_names = ["neg", "pos"], ["neg", "pos"]
    model.tokenizer = data.tokenizer
    with pytest.raises(ValueError, match="data module's labels .*differ from the model's"):
        quiet_trainer(tmp_path).validate(model, data)


# Learning on a small real slice.


def test_loss_falls_and_accuracy_beats_chance_on_real_sentiment(tmp_path):
    source = shared_dataset("sst2")
    rows = [json.loads(line) for line in (source / "train.jsonl").read_text(encoding="utf-8").splitlines()[:6000]]
    folder = write_jsonl(tmp_path / "sst2_slice", {"train": rows[:5000], "validation": rows[5000:], "test": rows[:10]})
    torch.manual_seed(0)
    data = ClassificationDataModule(str(folder), text_column="sentence", batch_size=64, min_freq=2)
    model = Classifier(
        data.vocab_size,
        data.num_classes,
        cell="gru",
        hidden_size=32,
        embedding_size=32,
        optimizer=lambda parameters: torch.optim.AdamW(parameters, lr=5e-3),
    )
    trainer = quiet_trainer(tmp_path, max_epochs=3)
    before = trainer.validate(model, data, verbose=False)[0]
    trainer.fit(model, data)
    after = trainer.validate(model, data, verbose=False)[0]
    assert after["val_loss"] < before["val_loss"] - 0.1
    assert after["val_acc"] > 0.7, after  # the majority class is 56%


def test_lightning_injects_its_distributed_sampler_into_the_bucketing(toy_reviews):
    """Under DDP Lightning rebuilds our batch sampler around a DistributedSampler; each rank buckets its half."""
    from lightning.fabric.utilities.data import _replace_dunder_methods
    from lightning.pytorch.utilities.data import _update_dataloader
    from torch.utils.data import BatchSampler, DataLoader

    data = ClassificationDataModule(str(toy_reviews), batch_size=16)
    data.setup("fit")
    with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
        loader = data.train_dataloader()
    seen = []
    for rank in (0, 1):
        sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        ranked = _update_dataloader(loader, sampler)
        assert isinstance(ranked.batch_sampler, BucketBatchSampler) and ranked.batch_sampler.sampler is sampler
        seen.append([i for batch in ranked.batch_sampler for i in batch])
    assert len(seen[0]) == len(seen[1]) == 200 and set(seen[0]) | set(seen[1]) == set(range(400))


@pytest.mark.parametrize("kind", ["word", "bpe", "char"])
def test_every_tokenizer_kind_trains_and_is_saved_with_the_model(kind, toy_reviews, tmp_path):
    data = ClassificationDataModule(str(toy_reviews), tokenizer=kind, bpe_vocab_size=300, max_length=5, batch_size=16)
    assert max(data.encoded_split("train").lengths) <= 5
    model = Classifier(data.vocab_size, data.num_classes, hidden_size=4)
    trainer = fit_briefly(model, data, tmp_path)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    restored = load_task(str(tmp_path / "model.ckpt"))
    assert restored.tokenizer == data.tokenizer
    assert restored.classify("a lovely film")[0]["probabilities"] == pytest.approx(
        model.classify("a lovely film")[0]["probabilities"]
    )
