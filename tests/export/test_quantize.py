"""Dynamic int8 quantization, PyTorch and ONNX: int8 layers in place, predictions close to float, padding exact."""

from __future__ import annotations

import pytest
import torch

from rnnzoo import RNNTask
from rnnzoo.export.quantize import QuantizedGRULayer, QuantizedLSTMLayer, quantize_int8

SENTENCES = [
    "a gripping , funny and deeply moving film",
    "dull",
    "the worst movie of the year , by far",
    "it is not bad at all",
    "an intelligent , heartfelt story with fine performances",
    "i wanted my two hours back",
    "the plot is thin but the actors are charming",
    "a tedious , overlong mess",
    "one of the best films i have seen in years",
    "boring and predictable from start to finish",
    "visually stunning , emotionally empty",
    "a masterpiece",
]


def agreement(first: list[dict], second: list[dict], key: str) -> float:
    return sum(a[key] == b[key] for a, b in zip(first, second, strict=True)) / len(first)


def test_int8_classifier_swaps_its_layers_and_keeps_its_labels():
    task = RNNTask.from_pretrained("sst2-gru_small")
    quantized = quantize_int8(task)
    assert isinstance(quantized.backbone.layers[0][0], QuantizedGRULayer)
    assert isinstance(quantized.head, torch.ao.nn.quantized.dynamic.Linear)
    assert not isinstance(task.head, torch.ao.nn.quantized.dynamic.Linear)  # the float model is left as it was
    assert agreement(task.predict(SENTENCES), quantized.predict(SENTENCES), "label") >= 0.9


def test_int8_padded_batch_equals_one_text_at_a_time():
    quantized = quantize_int8(RNNTask.from_pretrained("sst2-gru_small"))
    together = quantized.predict(SENTENCES[:5])
    for text, output in zip(SENTENCES[:5], together, strict=True):
        alone = quantized.predict([text])[0]
        assert alone["label"] == output["label"]
        # Padding is never read; only the activations' int8 scale, computed over the whole batch, moves.
        assert alone["probabilities"] == pytest.approx(output["probabilities"], abs=1e-3)


def test_int8_tagger_and_language_model_predict_close_to_float():
    tagger = RNNTask.from_pretrained("ud_en_ewt_upos-lstm_small")
    quantized = quantize_int8(tagger)
    assert isinstance(quantized.backbone.layers[0][1], QuantizedLSTMLayer)
    eager = [tag for row in tagger.predict(SENTENCES) for tag in row["tags"]]
    int8 = [tag for row in quantized.predict(SENTENCES) for tag in row["tags"]]
    assert sum(a == b for a, b in zip(eager, int8, strict=True)) / len(eager) >= 0.95

    model = RNNTask.from_pretrained("tiny_shakespeare-lstm_small")
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak."
    tokens = model.tokenizer.encode(text).unsqueeze(0)
    with torch.no_grad():
        float_next = model(tokens)[0].argmax(-1)
        int8_next = quantize_int8(model)(tokens)[0].argmax(-1)
    assert float((float_next == int8_next).float().mean()) >= 0.9


def test_onnx_int8_graphs_are_smaller_and_predict_close_to_float(tmp_path):
    pytest.importorskip("onnxruntime")
    from rnnzoo.export import OnnxModel, export_onnx

    task = RNNTask.from_pretrained("sst2-gru_small")
    floats = export_onnx(task, tmp_path / "float")
    int8 = OnnxModel(export_onnx(task, tmp_path / "int8", quantize="int8"), threads=1)
    assert int8.quantized
    assert (tmp_path / "int8" / "encoder.onnx").stat().st_size < 0.5 * (floats / "encoder.onnx").stat().st_size
    assert agreement(task.predict(SENTENCES), int8.predict(SENTENCES), "label") >= 0.9
