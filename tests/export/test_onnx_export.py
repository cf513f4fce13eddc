"""ONNX export: every task's graphs equal eager PyTorch (logits within 1e-4, identical decoding), padding included."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from rnnzoo import RNNTask, TextTokenizer
from rnnzoo.batches import pad_sequences
from rnnzoo.cli import main
from rnnzoo.data.captioning import char_tokenizer
from rnnzoo.data_state import DataState
from rnnzoo.export import OnnxModel, export_onnx
from rnnzoo.export.onnx import flatten_tensors, unflatten_tensors
from rnnzoo.tasks import Captioner, Classifier, LanguageModel, Seq2Seq, SequencePredictor, Tagger
from rnnzoo.tokenizers import PairTokenizer

TOLERANCE = 1e-4
SENTENCES = [
    "a gripping , funny and deeply moving film",
    "dull",
    "the worst movie of the year , by far , and i have seen many bad ones",
    "It is not bad at all .",
]


def exported(task: RNNTask, tmp_path, **options) -> OnnxModel:
    return OnnxModel(export_onnx(task, tmp_path / "onnx", **options), threads=1)


def max_difference(first, second) -> float:
    pairs = zip(flatten_tensors(first, "x").values(), flatten_tensors(second, "x").values(), strict=True)
    return max(float((a.float() - b.float()).abs().max()) for a, b in pairs)


def assert_same_predictions(task: RNNTask, model: OnnxModel, inputs, **options) -> None:
    eager, onnx = task.predict(inputs, **options), model.predict(inputs, **options)
    for mine, theirs in zip(eager, onnx, strict=True):
        for key, value in mine.items():
            if key in ("probabilities", "score", "n_best"):
                continue  # floats, compared within the tolerance elsewhere
            assert theirs[key] == value


def test_state_paths_round_trip():
    state = {"rnn": (torch.ones(1, 2, 3), torch.zeros(1, 2, 3)), "memory": torch.ones(2, 4, 3)}
    flat = flatten_tensors(state, "state")
    assert list(flat) == ["state.rnn.0", "state.rnn.1", "state.memory"]
    rebuilt = unflatten_tensors(flat, "state")
    assert isinstance(rebuilt["rnn"], tuple) and rebuilt["memory"] is state["memory"]


# Bundled models, real inputs.


def test_classifier_logits_and_labels_equal_eager_on_a_padded_batch(tmp_path):
    task = RNNTask.from_pretrained("sst2-gru_small")
    model = exported(task, tmp_path)
    batch = task.encode_inputs(SENTENCES)
    assert len(set(batch.lengths.tolist())) == len(SENTENCES)  # every row padded differently
    with torch.no_grad():
        assert max_difference(task(batch.tokens, batch.lengths), model.task(batch.tokens, batch.lengths)) <= TOLERANCE
    assert_same_predictions(task, model, SENTENCES)
    manifest = json.loads((tmp_path / "onnx" / "onnx.json").read_text())
    assert manifest["encoder"]["dynamic_axes"]["tokens"] == {"0": "batch", "1": "steps"}


def test_tagger_scores_and_tags_equal_eager(tmp_path):
    task = RNNTask.from_pretrained("ud_en_ewt_upos-lstm_small")  # word embedding, character CNN, BiLSTM
    model = exported(task, tmp_path)
    batch = task.encode_inputs(SENTENCES)
    with torch.no_grad():
        eager = task(batch.inputs, batch.lengths, batch.chars)
        assert max_difference(eager, model.task(batch.inputs, batch.lengths, batch.chars)) <= TOLERANCE
    assert_same_predictions(task, model, SENTENCES)


def test_language_model_greedy_and_beam_search_equal_eager(tmp_path):
    task = RNNTask.from_pretrained("tiny_shakespeare-lstm_small")
    model = exported(task, tmp_path)
    prompts = ["ROMEO:", "A", "First Citizen:\nBefore we proceed any further, hear me speak."]
    batch = task.encode_inputs(prompts)
    with torch.no_grad():
        eager_logits, eager_state = task.encode(batch.tokens, batch.lengths)
        logits, state = model.task.encode(batch.tokens, batch.lengths)
        assert max_difference((eager_logits, eager_state), (logits, state)) <= TOLERANCE
        tokens = eager_logits.argmax(-1)
        assert max_difference(task.step(tokens, eager_state), model.task.step(tokens, state)) <= TOLERANCE
    assert_same_predictions(task, model, prompts, temperature=0.0, max_length=60)
    assert_same_predictions(task, model, prompts[:2], beam_size=3, max_length=20)


# Small models built here: every other task, cell and option.


def seq2seq(**options) -> Seq2Seq:
    torch.manual_seed(0)
    source = TextTokenizer.train_word_level([" ".join(f"s{i}" for i in range(16))])
    target = TextTokenizer.train_word_level([" ".join(f"t{i}" for i in range(13))])
    defaults = dict(embedding_size=8, hidden_size=8, decoder_hidden_size=12, dropout=0.0, max_decode_length=12)
    task = Seq2Seq({"source": 20, "target": 17}, **{**defaults, **options})
    task.tokenizer = PairTokenizer(source, target)
    return task.eval()


@pytest.mark.parametrize(
    "options",
    [
        {"encoder_cell": "gru", "attention": "additive"},
        {"encoder_cell": "lstm", "attention": "multiplicative", "input_feeding": True, "num_layers": 2},
        {"encoder_cell": "gru", "attention": "none", "bidirectional": False},
    ],
    ids=["gru-additive", "lstm-general-feeding-2layers", "gru-no-attention"],
)
def test_seq2seq_greedy_and_beam_translations_equal_eager(options, tmp_path):
    task = seq2seq(**options)
    model = exported(task, tmp_path)
    texts = ["s1 s2 s3 s4 s5 s6 s7", "s9", "s3 s3 s10 s11"]
    batch = task.encode_inputs(texts)
    with torch.no_grad():
        eager_state = task.encode(batch.source, batch.source_lengths)
        state = model.task.encode(batch.source, batch.source_lengths)
        assert max_difference(eager_state, state) <= TOLERANCE
        tokens = torch.tensor([2, 5, 7])
        assert max_difference(task.step(tokens, eager_state), model.task.step(tokens, state)) <= TOLERANCE
    assert_same_predictions(task, model, texts, beam_size=1)
    assert_same_predictions(task, model, texts, beam_size=4, n_best=2)


def test_captioner_of_categories_and_of_images_equal_eager(tmp_path):
    torch.manual_seed(0)
    names = ["Ivanov", "Petrov", "Sato", "Suzuki", "Murphy"]
    categories = Captioner(len(char_tokenizer(names)), "category", num_categories=3, cell="gru", hidden_size=16)
    labels = ["a", "b", "c"]
    categories.data_state = DataState(tokenizer=char_tokenizer(names), labels=labels, label_names=labels)
    model = exported(categories.eval(), tmp_path / "categories")
    assert_same_predictions(categories, model, ["a", "b", "c", "a"])
    assert_same_predictions(categories, model, ["b", "c"], beam_size=3)

    words = TextTokenizer.train_word_level(["a red blue green square circle on the left right top"])
    images = Captioner(len(words), "image", attention=True, cnn_channels=8, hidden_size=16, max_decode_length=8)
    images.tokenizer = words
    model = exported(images.eval(), tmp_path / "images")
    pictures = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert max_difference(images.encode(pictures), model.task.encode(pictures)) <= TOLERANCE
    assert_same_predictions(images, model, list(pictures), beam_size=2)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_frame_tagger_with_a_crf_and_a_sequence_predictor_equal_eager(cell, tmp_path):
    torch.manual_seed(0)
    tagger = Tagger(4, frame_size=6, cell=cell, hidden_size=8, embedding_size=8, num_layers=2, crf=True).eval()
    model = exported(tagger, tmp_path / "tagger")
    frames, lengths = pad_sequences([torch.randn(n, 6) for n in (9, 1, 4, 17)])
    with torch.no_grad():
        assert max_difference(tagger(frames, lengths), model.task(frames, lengths)) <= TOLERANCE
    assert_same_predictions(tagger, model, [torch.randn(n, 6) for n in (3, 20, 1)])

    predictor = SequencePredictor(3, num_outputs=5, objective="classification", cell=cell, hidden_size=8).eval()
    model = exported(predictor, tmp_path / "predictor")
    frames = torch.randn(5, 30, 3)
    with torch.no_grad():
        assert max_difference(predictor(frames), model.task(frames)) <= TOLERANCE


def test_character_rnn_encoder_equals_eager(tmp_path):
    torch.manual_seed(0)
    task = Tagger(5, vocab_size=30, char_vocab_size=12, char_encoder="rnn", hidden_size=8, embedding_size=8).eval()
    model = exported(task, tmp_path)
    inputs, lengths = pad_sequences([torch.randint(2, 30, (n,)) for n in (5, 1, 8)])
    chars = torch.randint(1, 12, (3, inputs.shape[1], 7))
    chars[0, 1, 3:] = 0  # a short word
    with torch.no_grad():
        assert max_difference(task(inputs, lengths, chars), model.task(inputs, lengths, chars)) <= TOLERANCE


def test_a_cell_that_loops_in_python_is_a_clear_error(tmp_path):
    task = LanguageModel(10, cell="reference_lstm", hidden_size=8, num_layers=1)
    with pytest.raises(ValueError, match="cannot be exported to ONNX.*fused cells"):
        export_onnx(task, tmp_path / "onnx")


def test_an_unknown_quantization_and_a_folder_without_graphs_are_clear_errors(tmp_path):
    task = Classifier(10, 2, cell="gru", hidden_size=4)
    with pytest.raises(ValueError, match="quantize must be one of"):
        export_onnx(task, tmp_path / "onnx", quantize="int4")
    task.save_pretrained(tmp_path / "plain")
    with pytest.raises(FileNotFoundError, match="holds no ONNX export"):
        OnnxModel(tmp_path / "plain")


def test_a_changed_graph_is_refused(tmp_path):
    folder = export_onnx(Classifier(10, 2, cell="gru", hidden_size=4), tmp_path / "onnx")
    (folder / "encoder.onnx").write_bytes((folder / "encoder.onnx").read_bytes()[:-1])
    with pytest.raises(ValueError, match="sha256 mismatch for 'encoder.onnx'"):
        OnnxModel(folder)


# The command line.


def test_export_then_classify_on_onnx_runtime_and_in_int8_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "sst2-onnx"
    main(["export", "--model", "sst2-gru_small", "--format", "onnx", "--out", str(out)])
    assert f"wrote {out}" in capsys.readouterr().out
    outputs = {}
    for name, options in {"eager": [], "onnx": ["--runtime", "onnx"], "int8": ["--quantize", "int8"]}.items():
        model = str(out) if name == "onnx" else "sst2-gru_small"
        main(["classify", "--model", model, *options, "--text", SENTENCES[0], "--text+", SENTENCES[2]])
        outputs[name] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for eager, onnx, int8 in zip(outputs["eager"], outputs["onnx"], outputs["int8"], strict=True):
        assert onnx["label"] == int8["label"] == eager["label"]
        assert onnx["probabilities"] == pytest.approx(eager["probabilities"], abs=TOLERANCE)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["export", "--model", "sst2-gru_small", "--quantize", "int8", "--out", "x"], "quantizes ONNX graphs"),
        (["classify", "--runtime", "onnx", "--ckpt_path", "x.ckpt", "--text", "a"], "runs an ONNX export folder"),
        (["classify", "--runtime", "onnx", "--model", "sst2-gru_small", "--text", "a"], "holds no ONNX export"),
        (["classify", "--quantize", "int4", "--model", "sst2-gru_small", "--text", "a"], "int4"),
    ],
    ids=["safetensors-int8", "onnx-checkpoint", "onnx-no-graphs", "unknown-quantization"],
)
def test_command_line_errors_name_the_fix(arguments, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(arguments)
    assert message in capsys.readouterr().err
