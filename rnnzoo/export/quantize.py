"""Dynamic int8 quantization of a task for PyTorch inference: int8 weights, activations quantized on the fly.

    fast = quantize_int8(RNNTask.from_pretrained("sst2-gru_small"))
    fast.predict(["a gripping, funny film"])

``torch.ao.quantization.quantize_dynamic`` swaps the fused cells' LSTM and GRU layers and every
``nn.Linear`` (heads, attention, bridges) for their int8 versions. Its LSTM and GRU read only
torch's own classes, so rnnzoo's layers get int8 twins here (:class:`QuantizedLSTMLayer`,
:class:`QuantizedGRULayer`) that keep the layer contract, padding included. Elman RNN layers, the
cells that loop in Python and the embeddings stay float. The ONNX path quantizes its graphs with
ONNX Runtime instead (``export_onnx(..., quantize="int8")``).
"""

from __future__ import annotations

import warnings

import torch
import torch.ao.nn.quantized.dynamic as nnqd
from torch import nn

from rnnzoo.cells.fused import FusedGRULayer, FusedLSTMLayer, _FusedLayer
from rnnzoo.tasks import RNNTask


def _torch_twin(layer: nn.RNNBase, kind: type[nn.RNNBase]) -> nn.RNNBase:
    """A plain ``nn.LSTM`` / ``nn.GRU`` with ``layer``'s weights (its effective ones, under a parametrization)."""
    twin = kind(layer.input_size, layer.hidden_size, batch_first=True)
    twin.load_state_dict({name: getattr(layer, name).detach() for name in twin.state_dict()})
    twin.qconfig = layer.qconfig
    return twin


class QuantizedLSTMLayer(_FusedLayer, nnqd.LSTM):
    """One direction of one layer of torch's dynamically quantized LSTM, behind the layer contract."""

    @classmethod
    def from_float(cls, mod: nn.Module, use_precomputed_fake_quant: bool = False) -> QuantizedLSTMLayer:
        """The int8 version of a :class:`~rnnzoo.cells.fused.FusedLSTMLayer` (what ``quantize_dynamic`` calls)."""
        quantized = nnqd.LSTM.from_float(_torch_twin(mod, nn.LSTM))
        quantized.__class__ = cls  # torch builds its own class; this one adds the layer contract
        return quantized


class QuantizedGRULayer(_FusedLayer, nnqd.GRU):
    """One direction of one layer of torch's dynamically quantized GRU, behind the layer contract."""

    @classmethod
    def from_float(cls, mod: nn.Module, use_precomputed_fake_quant: bool = False) -> QuantizedGRULayer:
        """The int8 version of a :class:`~rnnzoo.cells.fused.FusedGRULayer` (what ``quantize_dynamic`` calls)."""
        quantized = nnqd.GRU.from_float(_torch_twin(mod, nn.GRU))
        quantized.__class__ = cls
        return quantized


MAPPING: dict[type[nn.Module], type[nn.Module]] = {
    FusedLSTMLayer: QuantizedLSTMLayer,
    FusedGRULayer: QuantizedGRULayer,
    nn.Linear: nnqd.Linear,
}
"""Float layer -> its dynamically quantized int8 version."""


def quantize_int8(task: RNNTask) -> RNNTask:
    """A copy of ``task`` with int8 LSTM, GRU and linear layers (dynamic quantization, for CPU inference).

    The copy predicts as the task does (same :meth:`~rnnzoo.RNNTask.predict`, tokenizer and labels),
    in eval mode; it cannot be trained or saved as an artifact (its weights are packed int8).
    """
    task = task.cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes that torch.ao.quantization will move to torchao
        quantized = torch.ao.quantization.quantize_dynamic(task, set(MAPPING), dtype=torch.qint8, mapping=MAPPING)
    return quantized.eval()
