"""Many-to-many tagging: the CRF against brute force, entity F1 against seqeval, padding, checkpoints, errors."""

from __future__ import annotations

import itertools
import json
import random
import shutil
from pathlib import Path

import pytest
import torch
from conftest import quiet_trainer, shared_dataset, write_jsonl
from datasets import ClassLabel, Dataset, Features, Sequence, Value

from rnnzoo import RNNTask, Tagger, TaggingDataModule, WordVocabulary, load_task
from rnnzoo.cli import main
from rnnzoo.data.batching import pad_sequences
from rnnzoo.data.tagging import ChunkedRows
from rnnzoo.entities import EntityF1, detect_scheme, entity_scores, get_entities
from rnnzoo.nn.crf import LinearChainCRF, allowed_transitions
from rnnzoo.tokenizers import tokenizer_from_dict

# Toy NER: names are persons, cities are locations, the rest is O.
PERSONS = [["Ada", "Lovelace"], ["Alan", "Turing"], ["Grace"], ["Kurt", "Gödel"]]
CITIES = [["Paris"], ["New", "York"], ["Oslo"], ["Rio", "de", "Janeiro"]]
FILLER = ["the", "met", "in", "and", "visited", "today", "a", "friend", "."]
NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def toy_sentences(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        tokens, tags = [], []
        for _ in range(rng.randint(1, 4)):
            choice = rng.random()
            if choice < 0.3:
                span, kind = rng.choice(PERSONS), "PER"
            elif choice < 0.5:
                span, kind = rng.choice(CITIES), "LOC"
            else:
                tokens.append(rng.choice(FILLER))
                tags.append("O")
                continue
            tokens += span
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(span) - 1)
        rows.append({"tokens": tokens, "tags": tags})
    return rows


@pytest.fixture
def toy_ner(tmp_path) -> Path:
    splits = {"train": toy_sentences(200, 0), "validation": toy_sentences(40, 1), "test": toy_sentences(40, 2)}
    return write_jsonl(tmp_path / "toy_ner", splits)


def fit_briefly(model, data, tmp_path, steps=3, **kwargs):
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=steps, limit_val_batches=1, **kwargs)
    trainer.fit(model, data)
    return trainer


# The CRF against brute-force enumeration of every tag path.


def brute_force(crf: LinearChainCRF, emissions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log Z and the best path of ONE unpadded sequence ``[T, K]``, by scoring all K^T paths."""
    start, transitions, end = crf._scores()
    steps, tags = emissions.shape
    scores, paths = [], list(itertools.product(range(tags), repeat=steps))
    for path in paths:
        score = start[path[0]] + end[path[-1]] + sum(emissions[t, path[t]] for t in range(steps))
        score = score + sum(transitions[path[t - 1], path[t]] for t in range(1, steps))
        scores.append(score)
    scores = torch.stack(scores)
    return torch.logsumexp(scores, 0), torch.tensor(paths[int(scores.argmax())])


def random_crf(num_tags: int, seed: int, names: list[str] | None = None) -> LinearChainCRF:
    torch.manual_seed(seed)
    crf = LinearChainCRF(num_tags)
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.normal_()
    if names is not None:
        crf.constrain(names, "BIO")
    return crf


@pytest.mark.parametrize("constrained", [False, True], ids=["free", "bio"])
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_crf_likelihood_and_viterbi_equal_brute_force(steps, constrained):
    names = ["O", "B-X", "I-X"] if constrained else None
    crf = random_crf(3, steps, names)
    emissions = torch.randn(1, steps, 3)
    log_z, best = brute_force(crf, emissions[0])
    torch.testing.assert_close(crf.log_partition(emissions), log_z.unsqueeze(0))
    decoded = crf.decode(emissions)[0]
    assert decoded.tolist() == best.tolist()
    # The likelihood of every path is its score minus log Z; they sum to one over all paths.
    paths = torch.tensor(list(itertools.product(range(3), repeat=steps)))
    likelihood = crf.log_likelihood(emissions.expand(len(paths), -1, -1), paths)
    torch.testing.assert_close(likelihood.exp().sum(), torch.tensor(1.0))
    if constrained:  # a path with O -> I-X (or starting with I-X) has probability zero
        forbidden = [i for i, path in enumerate(paths.tolist()) if "02" in "0" + "".join(map(str, path))]
        assert likelihood.exp()[forbidden].max() < 1e-6
        assert 2 not in [tag for prev, tag in itertools.pairwise([0, *decoded.tolist()]) if prev == 0]


def test_padded_crf_batch_equals_one_by_one():
    crf = random_crf(4, 0)
    lengths = torch.tensor([5, 1, 3, 4])
    rows = [torch.randn(int(n), 4) for n in lengths]
    tags = [torch.randint(0, 4, (int(n),)) for n in lengths]
    emissions, _ = pad_sequences(rows, padding_value=99)  # padding, if read, would dominate everything
    padded_tags, _ = pad_sequences(tags, padding_value=3)
    together = crf.log_likelihood(emissions, padded_tags, lengths)
    alone = torch.cat(
        [crf.log_likelihood(row.unsqueeze(0), tag.unsqueeze(0)) for row, tag in zip(rows, tags, strict=True)]
    )
    torch.testing.assert_close(together, alone)
    decoded = crf.decode(emissions, lengths)
    for index, row in enumerate(rows):
        assert decoded[index, : len(row)].tolist() == crf.decode(row.unsqueeze(0))[0].tolist()
        assert decoded[index, len(row) :].eq(0).all()
    loss = crf(emissions, padded_tags, lengths)
    torch.testing.assert_close(loss, -alone.sum() / lengths.sum())


def test_bio_and_bioes_transitions():
    start, moves, end = allowed_transitions(["O", "B-A", "I-A", "B-B", "I-B"], "BIO")
    assert start.tolist() == [True, True, False, True, False] and end.all()
    assert moves[:, 2].tolist() == [False, True, True, False, False]  # only B-A and I-A go to I-A
    assert moves[:, 1].all()  # anything may open an entity
    names = ["O", "B-A", "I-A", "E-A", "S-A"]
    start, moves, end = allowed_transitions(names, "BIOES")
    assert start.tolist() == [True, True, False, False, True]
    assert end.tolist() == [True, False, False, True, True]
    assert moves[1].tolist() == [False, False, True, True, False]  # B-A -> I-A | E-A
    assert moves[3].tolist() == [True, True, False, False, True]  # E-A -> O | B | S


def test_a_bio_constraint_on_a_non_bio_tag_set_is_a_clear_error():
    with pytest.raises(ValueError, match=r"tag\(s\) \['NOUN', 'VERB'\] are not BIO tags.*tag_scheme to null"):
        LinearChainCRF(3).constrain(["O", "NOUN", "VERB"], "BIO")
    with pytest.raises(ValueError, match="set crf: true"):
        Tagger(3, vocab_size=10, char_encoder="none", tag_scheme="BIO")


# Entity metrics against seqeval's documented examples (its README and docstrings, hard-coded).


def test_entities_as_seqeval_reads_them():
    assert get_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]
    # Default (conlleval) mode: an I- after O opens a chunk, so seqeval scores this pair 1.0.
    assert entity_scores([["B-NP", "I-NP", "O"]], [["I-NP", "I-NP", "O"]])["f1"] == 1.0
    # A change of type ends a chunk; BIOES ends after E and S.
    assert get_entities(["B-PER", "I-LOC", "O"]) == [("PER", 0, 0), ("LOC", 1, 1)]
    assert get_entities(["S-A", "B-A", "E-A", "S-B", "O"]) == [("A", 0, 0), ("A", 1, 2), ("B", 3, 3)]


def test_entity_f1_agrees_with_seqeval_readme_example():
    y_true = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    y_pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    assert entity_scores(y_true, y_pred) == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    metric = EntityF1()
    metric.update(y_pred[:1], y_true[:1])
    metric.update(y_pred[1:], y_true[1:])
    assert {k: float(v) for k, v in metric.compute().items()} == pytest.approx(entity_scores(y_true, y_pred))
    metric.reset()
    assert float(metric.compute()["f1"]) == 0.0


def test_entity_scores_precision_and_recall_differ():
    y_true = [["B-A", "I-A", "O", "B-B"]]
    y_pred = [["B-A", "I-A", "O", "O"]]
    assert entity_scores(y_true, y_pred) == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3})


def test_scheme_detection():
    assert detect_scheme(NAMES) == "BIO"
    assert detect_scheme(["O", "B-A", "E-A", "S-A", "I-A"]) == "BIOES"
    assert detect_scheme(["NOUN", "VERB"]) is None
    assert detect_scheme(["O", "I-A"]) is None


# Vocabularies.


def test_word_vocabulary_lowercases_maps_unseen_words_to_unk_and_round_trips():
    vocab = WordVocabulary.from_sentences([["The", "cat"], ["the", "dog"]], lowercase=True, min_freq=1)
    assert vocab.words[:3] == ["<pad>", "<unk>", "the"]
    assert vocab.encode_words(["THE", "zebra"]).tolist() == [2, 1]
    assert tokenizer_from_dict(vocab.to_dict()) == vocab
    assert len(WordVocabulary.from_sentences([["a", "a", "b"]], min_freq=2)) == 3


# The model: padding never changes a prediction.


@pytest.mark.parametrize(
    "options",
    [
        {"char_encoder": "cnn"},
        {"char_encoder": "rnn", "cell": "gru"},
        {"char_encoder": "none", "crf": True},
        {"frames": True, "crf": True},
    ],
    ids=["cnn", "char_rnn-gru", "crf", "frames-crf"],
)
def test_predictions_do_not_depend_on_padding(options):
    torch.manual_seed(0)
    options = dict(options)
    frames = options.pop("frames", False)
    sizes = {"frame_size": 6} if frames else {"vocab_size": 30, "char_vocab_size": 12}
    model = Tagger(5, hidden_size=8, embedding_size=8, char_hidden_size=6, **sizes, **options).eval()
    lengths = [5, 1, 7, 3]
    if frames:
        rows = [torch.randn(n, 6) for n in lengths]
        chars = [None] * len(rows)
    else:
        rows = [torch.randint(2, 30, (n,)) for n in lengths]
        chars = [torch.randint(1, 12, (n, 4)) for n in lengths]
        chars[0][1, 2:] = 0  # a short word inside a row
    inputs, lengths = pad_sequences(rows, padding_value=7)
    batch_chars = None
    if not frames:
        batch_chars = torch.zeros(4, inputs.shape[1], 4, dtype=torch.long).fill_(5)  # padding holds junk
        for index, row in enumerate(chars):
            batch_chars[index, : len(row)] = row
    with torch.no_grad():
        together = model(inputs, lengths, batch_chars)
        predicted = model.decode(together, lengths)
        for index, row in enumerate(rows):
            alone = model(row.unsqueeze(0), None, None if frames else chars[index].unsqueeze(0))
            torch.testing.assert_close(together[index, : len(row)], alone[0], atol=1e-5, rtol=1e-5)
            assert predicted[index, : len(row)].tolist() == model.decode(alone, lengths[index : index + 1])[0].tolist()


# Training: the frame path learns synthetic per-frame labels; words learn toy NER.


def test_frame_tagger_learns_synthetic_per_frame_labels(tmp_path):
    """The label of frame t is which of 3 directions its noisy features point to."""
    rng = torch.Generator().manual_seed(0)
    centres = torch.eye(3, 4) * 3

    def rows(count):
        out = []
        for _ in range(count):
            length = int(torch.randint(3, 12, (1,), generator=rng))
            labels = torch.randint(0, 3, (length,), generator=rng)
            frames = centres[labels] + torch.randn(length, 4, generator=rng)
            out.append({"frames": frames.tolist(), "labels": labels.tolist()})
        return out

    folder = write_jsonl(tmp_path / "frames", {"train": rows(300), "validation": rows(60), "test": rows(60)})
    data = TaggingDataModule(str(folder), frames_column="frames", tags_column="labels", batch_size=16)
    assert (data.frame_size, data.vocab_size, data.char_vocab_size, data.label_names) == (
        4,
        None,
        None,
        ["0", "1", "2"],
    )
    torch.manual_seed(0)
    model = Tagger(3, frame_size=4, cell="gru", hidden_size=16, embedding_size=16, num_layers=1, dropout=0.0)
    optimizer = lambda params: torch.optim.Adam(params, lr=0.02)  # noqa: E731
    model.optimizer_factory = optimizer
    trainer = quiet_trainer(tmp_path, max_epochs=3)
    before = trainer.validate(model, data, verbose=False)[0]["val_acc"]
    trainer.fit(model, data)
    after = trainer.validate(model, data, verbose=False)[0]["val_acc"]
    assert before < 0.6 < 0.9 < after
    tags = model.tag_frames([centres[[0, 2, 1]], centres[[1]]])
    assert tags == [["0", "2", "1"], ["1"]]


def test_words_tagger_with_crf_learns_toy_entities(toy_ner, tmp_path):
    data = TaggingDataModule(str(toy_ner), label_names=NAMES, batch_size=16)
    torch.manual_seed(0)
    model = Tagger(5, data.vocab_size, data.char_vocab_size, hidden_size=32, num_layers=1, crf=True, tag_scheme="BIO")
    model.optimizer_factory = lambda params: torch.optim.Adam(params, lr=0.01)
    trainer = quiet_trainer(tmp_path, max_epochs=4)
    trainer.fit(model, data)
    scores = trainer.test(model, data, verbose=False)[0]
    assert scores["test_acc"] > 0.9 and scores["test_f1"] > 0.8
    assert not model.crf.allowed[0, 2]  # O -> I-PER is forbidden
    result = model.tag("Ada Lovelace visited Oslo")[0]
    assert result == {"tokens": ["Ada", "Lovelace", "visited", "Oslo"], "tags": ["B-PER", "I-PER", "O", "B-LOC"]}


# Checkpoints: tags, vocabularies and the CRF constraint come back; no dataset needed.


def test_a_checkpoint_tags_sentences_with_no_dataset_present(toy_ner, tmp_path, capsys):
    data = TaggingDataModule(str(toy_ner), label_names=NAMES, batch_size=16)
    model = Tagger(5, data.vocab_size, data.char_vocab_size, hidden_size=8, crf=True, tag_scheme="BIO")
    trainer = fit_briefly(model, data, tmp_path)
    path = tmp_path / "tagger.ckpt"
    trainer.save_checkpoint(path)
    sentences = ["Alan Turing met a friend in Paris", ["Zanzibar", "unseen", "Words"]]
    before = model.tag(sentences)
    shutil.rmtree(toy_ner)
    restored = load_task(str(path))
    assert restored.tag(sentences) == before
    assert restored.data_state.char_tokenizer == data.char_tokenizer and restored.tokenizer == data.tokenizer
    torch.testing.assert_close(restored.crf.allowed, model.crf.allowed)
    capsys.readouterr()
    main(["tag", "--ckpt_path", str(path), "--text", "Alan Turing met a friend in Paris"])
    assert json.loads(capsys.readouterr().out) == before[0]


@pytest.mark.parametrize("kind", ["classlabel", "ints", "strings"])
def test_tags_round_trip_through_a_checkpoint(kind, tmp_path):
    folder = tmp_path / kind
    rows = {split: toy_sentences(30, seed) for seed, split in enumerate(["train", "validation", "test"])}
    as_ints = {split: [{**r, "tags": [NAMES.index(t) for t in r["tags"]]} for r in rs] for split, rs in rows.items()}
    options = {}
    if kind == "classlabel":
        features = Features({"tokens": Sequence(Value("string")), "tags": Sequence(ClassLabel(names=NAMES))})
        folder.mkdir()
        for split, split_rows in as_ints.items():
            Dataset.from_list(split_rows, features=features).to_parquet(str(folder / f"{split}.parquet"))
        expected = list(range(5))
    elif kind == "ints":
        write_jsonl(folder, as_ints)
        options["label_names"] = NAMES
        expected = list(range(5))
    else:
        write_jsonl(folder, rows)
        options["label_names"] = NAMES  # fixes the index order; without it the names are sorted
        expected = NAMES
    data = TaggingDataModule(str(folder), batch_size=8, **options)
    assert (data.labels, data.label_names) == (expected, NAMES)
    assert data.encoded_split("train").tags[0].tolist() == [NAMES.index(t) for t in rows["train"][0]["tags"]]
    model = Tagger(5, data.vocab_size, data.char_vocab_size, hidden_size=8)
    trainer = fit_briefly(model, data, tmp_path)
    path = tmp_path / f"{kind}.ckpt"
    trainer.save_checkpoint(path)
    restored = load_task(str(path))
    assert (restored.labels, restored.label_names) == (expected, NAMES)
    assert set(restored.tag("Ada met Grace")[0]["tags"]) <= set(NAMES)


def test_string_tags_without_label_names_are_sorted(toy_ner):
    assert TaggingDataModule(str(toy_ner)).label_names == sorted(NAMES)


# Bad input: one clear error each.


def test_tokens_and_tags_of_different_lengths_are_a_clear_error(tmp_path):
    rows = toy_sentences(10, 0)
    rows[3]["tags"] = rows[3]["tags"] + ["O"]
    folder = write_jsonl(tmp_path / "bad", {"train": rows, "validation": rows, "test": rows})
    n = len(rows[3]["tokens"])
    with pytest.raises(ValueError, match=rf"row 3 of split 'train' has {n} tokens but {n + 1} tags"):
        TaggingDataModule(str(folder)).encoded_split("train")


def test_an_unknown_tag_name_is_a_clear_error(toy_ner, tmp_path):
    with pytest.raises(ValueError, match=r"split 'train' has tag\(s\) \['I-LOC'\] that label_names does not name"):
        TaggingDataModule(str(toy_ner), label_names=["O", "B-PER", "I-PER", "B-LOC"]).encoded_split("train")
    rows = toy_sentences(10, 0)
    test = [{"tokens": ["x"], "tags": ["B-ORG"]}]
    folder = write_jsonl(tmp_path / "unseen", {"train": rows, "validation": rows, "test": test})
    with pytest.raises(ValueError, match=r"split 'test' has tag\(s\) \['B-ORG'\] that the training split 'train'"):
        TaggingDataModule(str(folder)).encoded_split("test")


def test_frames_of_the_wrong_dimension_are_a_clear_error(tmp_path):
    rows = [{"frames": [[0.0, 1.0]] * 3, "labels": [0, 1, 0]}] * 4
    ragged = [{"frames": [[0.0, 1.0], [1.0, 2.0, 3.0]], "labels": [0, 1]}]
    wide = [{"frames": [[0.0, 1.0, 2.0]], "labels": [0]}]
    folder = write_jsonl(tmp_path / "frames", {"train": rows, "validation": wide, "test": ragged})
    data = TaggingDataModule(str(folder), frames_column="frames", tags_column="labels")
    with pytest.raises(
        ValueError, match=r"row 0 of split 'test' has frames of \[2, 3\] features; every frame must hold 2"
    ):
        data.encoded_split("test")
    with pytest.raises(ValueError, match=r"split 'validation' has frames of \[3\] features"):
        data.encoded_split("validation")
    model = Tagger(2, frame_size=2, hidden_size=4)
    with pytest.raises(ValueError, match=r"frame features must be \[batch, steps, 2\].*got \[1, 3, 5\]"):
        model(torch.randn(1, 3, 5))
    with pytest.raises(ValueError, match="use tag_frames"):
        model.tag("a b")


def test_a_bio_constraint_at_fit_on_upos_like_tags_is_a_clear_error(tmp_path):
    rows = [{"tokens": ["a", "dog"], "tags": ["DET", "NOUN"]}] * 8
    folder = write_jsonl(tmp_path / "pos", {"train": rows, "validation": rows, "test": rows})
    data = TaggingDataModule(str(folder))
    model = Tagger(2, data.vocab_size, data.char_vocab_size, hidden_size=4, crf=True, tag_scheme="BIO")
    with pytest.raises(ValueError, match=r"tag\(s\) \['DET', 'NOUN'\] are not BIO tags"):
        fit_briefly(model, data, tmp_path)


def test_num_tags_disagreeing_with_the_data_is_a_clear_error(toy_ner, tmp_path):
    data = TaggingDataModule(str(toy_ner))
    model = Tagger(4, data.vocab_size, data.char_vocab_size, hidden_size=4)
    with pytest.raises(ValueError, match="set num_tags to 5"):
        fit_briefly(model, data, tmp_path)


def test_inputs_must_be_words_or_frames():
    with pytest.raises(ValueError, match="exactly one of vocab_size"):
        Tagger(3)
    with pytest.raises(ValueError, match="needs char_vocab_size"):
        Tagger(3, vocab_size=10)


# Real data.


@pytest.mark.slow
def test_upos_accuracy_rises_quickly_on_real_data(tmp_path):
    data = TaggingDataModule(str(shared_dataset("ud_en_ewt")), tags_column="upos", batch_size=32)
    assert data.num_tags == 17 and "NOUN" in data.label_names
    torch.manual_seed(0)
    model = Tagger(17, data.vocab_size, data.char_vocab_size, hidden_size=32, num_layers=1, embedding_size=32)
    model.optimizer_factory = lambda params: torch.optim.Adam(params, lr=0.01)
    trainer = quiet_trainer(tmp_path, max_steps=150, limit_val_batches=2)
    trainer.fit(model, data)
    assert trainer.validate(model, data, verbose=False)[0]["val_acc"] > 0.6  # NOUN alone scores 0.17


# Frames: normalisation saved with the model, truncated BPTT over long rows, live streams.


def scaled_frame_rows(lengths: list[int], seed: int) -> list[dict]:
    """Frames far from zero mean and unit scale (so normalisation matters); the tag is the sign of feature 0."""
    rng = torch.Generator().manual_seed(seed)
    rows = []
    for length in lengths:
        frames = torch.randn(length, 3, generator=rng)
        tags = (frames[:, 0] > 0).long()
        rows.append({"frames": (frames * torch.tensor([40.0, 1.0, 0.01]) + 100).tolist(), "labels": tags.tolist()})
    return rows


@pytest.fixture
def scaled_frames(tmp_path) -> Path:
    splits = {
        "train": scaled_frame_rows([12, 30, 7, 25, 16, 9] * 4, 0),
        "validation": scaled_frame_rows([10, 20], 1),
        "test": scaled_frame_rows([15, 4, 33], 2),
    }
    return write_jsonl(tmp_path / "scaled_frames", splits)


def frame_module(folder: Path, **options) -> TaggingDataModule:
    return TaggingDataModule(
        str(folder), frames_column="frames", tags_column="labels", label_names=["neg", "pos"], **options
    )


def frame_tagger(**options) -> Tagger:
    settings = {"cell": "gru", "hidden_size": 8, "embedding_size": 8, "num_layers": 1, "dropout": 0.0}
    settings = {**settings, "bidirectional": False, **options}
    return Tagger(2, frame_size=3, **settings)


def test_raw_frames_from_a_loaded_checkpoint_tag_as_through_the_data_module(scaled_frames, tmp_path):
    data = frame_module(scaled_frames, batch_size=8)
    torch.manual_seed(0)
    model = frame_tagger()
    model.optimizer_factory = lambda params: torch.optim.Adam(params, lr=0.05)
    trainer = quiet_trainer(tmp_path, max_epochs=3)
    trainer.fit(model, data)
    through_data = [output["tags"] for outputs in trainer.predict(model, datamodule=data) for output in outputs]
    raw = [torch.tensor(row["frames"]) for row in data.splits["test"]]
    path = tmp_path / "frames.ckpt"
    trainer.save_checkpoint(path)
    shutil.rmtree(scaled_frames)
    restored = load_task(str(path))
    assert restored.data_state.options["frame_mean"] == data.frame_statistics[0]
    assert restored.tag_frames(raw) == through_data
    assert [output["tags"] for output in restored.predict([row.tolist() for row in raw])] == through_data  # JSON
    restored.save_pretrained(tmp_path / "artifact")
    assert RNNTask.from_pretrained(tmp_path / "artifact").tag_frames(raw) == through_data
    correct = sum(
        t == n
        for row, tags in zip(data.splits["test"], through_data, strict=True)
        for t, n in zip(tags, ["pos" if label else "neg" for label in row["labels"]], strict=True)
    )
    assert correct / sum(len(row) for row in raw) > 0.9  # it learnt, so the equality above means something
    del restored.data_state.options["frame_mean"], restored.data_state.options["frame_std"]
    assert restored.tag_frames(raw) != through_data  # raw frames unnormalised read differently


@pytest.mark.parametrize("cell", ["lstm", "gru", "mingru", "layernorm_lstm"])
def test_tag_stream_equals_tagging_the_whole_sequence(cell):
    torch.manual_seed(0)
    model = frame_tagger(cell=cell, num_layers=2, hidden_size=6)
    model.data_state.label_names = model.data_state.labels = ["neg", "pos"]
    model.data_state.options.update(frame_mean=[100.0, 100.0, 100.0], frame_std=[40.0, 1.0, 0.01])
    frames = torch.tensor(scaled_frame_rows([60], 3)[0]["frames"])
    normalised = (frames - 100) / torch.tensor([40.0, 1.0, 0.01])
    with torch.no_grad():  # move the head's bias between two score gaps: both tags, and no near tie
        gaps = model.eval()(normalised.unsqueeze(0))[0].diff(dim=-1).view(-1).sort().values
        model.head.bias[1] -= (gaps[29] + gaps[30]) / 2
    whole = model.tag_frames(frames)[0]
    streamed, state = [], None
    for frame in frames:
        tag, state = model.tag_stream(frame, state)
        streamed.append(tag)
    assert streamed == whole and len(set(whole)) == 2
    with torch.no_grad():
        _, final = model.scores_and_state(normalised.unsqueeze(0))
    for streamed_final, whole_final in zip(
        state if isinstance(state, tuple) else (state,), final if isinstance(final, tuple) else (final,), strict=True
    ):
        torch.testing.assert_close(streamed_final, whole_final, atol=1e-5, rtol=1e-5)


def test_tag_stream_refuses_what_cannot_stream():
    frame = torch.zeros(3)
    with pytest.raises(ValueError, match="needs a unidirectional backbone"):
        frame_tagger(bidirectional=True).tag_stream(frame)
    with pytest.raises(ValueError, match="cannot decode a CRF frame by frame"):
        frame_tagger(crf=True).tag_stream(frame)
    with pytest.raises(ValueError, match="reads words: use tag"):
        Tagger(2, vocab_size=10, char_encoder="none", bidirectional=False).tag_stream(frame)
    with pytest.raises(ValueError, match=r"a frame must hold 3 features, got shape \[4\]"):
        frame_tagger().tag_stream(torch.zeros(4))


def spy_on_states(model: Tagger) -> tuple[list, list]:
    seen, finals = [], []
    forward = model.backbone.forward

    def spy(inputs, lengths=None, state=None):
        seen.append(state)
        outputs, final = forward(inputs, lengths, state)
        finals.append(final)
        return outputs, final

    model.backbone.forward = spy
    return seen, finals


def test_tbptt_chunks_carry_the_detached_state_where_rows_continue(scaled_frames):
    data = frame_module(scaled_frames, tbptt_steps=5, batch_size=3)
    data.setup("fit")
    torch.manual_seed(0)
    model = frame_tagger(cell="lstm")
    seen, finals = spy_on_states(model)
    model.on_train_epoch_start()
    batches = list(data.train_dataloader())
    for index, batch in enumerate(batches):
        model.training_step(batch, index).backward()  # would fail if the graph reached into an earlier chunk
    assert seen[0] is None
    for k in range(1, len(batches)):
        continues, rows = batches[k].continues, len(batches[k].lengths)
        if not continues.any():
            assert seen[k] is None
            continue
        for start, end in zip(seen[k], finals[k - 1], strict=True):
            assert not start.requires_grad and start.shape[1] == rows
            torch.testing.assert_close(start[:, continues], end[:, :rows][:, continues], rtol=0, atol=0)
            assert bool((start[:, ~continues] == 0).all())


def test_chunked_evaluation_equals_reading_whole_rows(scaled_frames):
    data = frame_module(scaled_frames)
    data.setup("fit")
    rows = data.encoded["train"]
    chunks = ChunkedRows(rows, batch_size=4, steps=6, shuffle=False)
    torch.manual_seed(0)
    model = frame_tagger(cell="lstm", num_layers=2).eval()
    lanes = [[] for _ in chunks.lanes()]
    with torch.no_grad():
        model.reset_carried_state("val")
        for batch in chunks:
            scores = model._scores(batch, "val")
            for lane, (row, length) in enumerate(zip(scores, batch.lengths, strict=True)):
                lanes[lane].append(row[:length])
        for lane, order in zip(lanes, chunks.lanes(), strict=True):
            read = torch.cat(lane).split([rows.lengths[row] for row in order])
            for row, scores in zip(order, read, strict=True):
                torch.testing.assert_close(scores, model(rows.inputs[row].unsqueeze(0))[0], atol=1e-5, rtol=1e-5)


def test_a_bidirectional_tagger_reads_every_chunk_from_zero(scaled_frames, tmp_path, caplog):
    data = frame_module(scaled_frames, tbptt_steps=5, batch_size=3)
    model = frame_tagger(bidirectional=True)
    seen, _ = spy_on_states(model)
    with caplog.at_level("WARNING", logger="rnnzoo.tasks.tagger"):
        quiet_trainer(tmp_path, max_steps=6, limit_val_batches=0).fit(model, data)
    assert "cannot carry its state between truncated-BPTT chunks" in caplog.text
    assert len(seen) == 6 and all(state is None for state in seen)


@pytest.mark.slow
def test_gesture_videos_train_with_tbptt_and_stream_like_whole_videos(tmp_path):
    folder = shared_dataset("gesture_phase")
    data = TaggingDataModule(
        str(folder), "videos", frames_column="frames", tags_column="labels", tbptt_steps=64, batch_size=5
    )
    torch.manual_seed(0)
    model = Tagger(5, frame_size=data.frame_size, hidden_size=16, embedding_size=16, num_layers=1, bidirectional=False)
    before = quiet_trainer(tmp_path).validate(model, data, verbose=False)[0]["val_loss"]
    trainer = quiet_trainer(tmp_path, max_epochs=2)
    trainer.fit(model, data)
    assert trainer.validate(model, data, verbose=False)[0]["val_loss"] < before
    video = torch.tensor(data.splits["test"][0]["frames"][:300])
    streamed, state = [], None
    for frame in video:
        tag, state = model.tag_stream(frame, state)
        streamed.append(tag)
    assert streamed == model.tag_frames(video)[0]


def test_a_trained_frame_tagger_refuses_frames_normalised_otherwise(scaled_frames, tmp_path):
    model = frame_tagger()
    fit_briefly(model, frame_module(scaled_frames), tmp_path)
    quiet_trainer(tmp_path).validate(model, frame_module(scaled_frames), verbose=False)  # the same statistics
    with pytest.raises(ValueError, match="normalises frames otherwise than this model was trained with"):
        quiet_trainer(tmp_path).validate(model, frame_module(scaled_frames, normalize=False), verbose=False)
    other = write_jsonl(tmp_path / "other", {split: scaled_frame_rows([8, 9], 5) for split in ("train", "validation")})
    with pytest.raises(ValueError, match="its normalize option or its training split differ"):
        quiet_trainer(tmp_path).validate(model, frame_module(other), verbose=False)
