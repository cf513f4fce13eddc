"""Export a task to ONNX: its encoder and, for generating tasks, its decoding step, as separate graphs.

    export_onnx(task, "sst2-onnx")          # or: rnnzoo export --model sst2-gru_small --format onnx --out sst2-onnx

writes, beside a regular artifact (``config.json``, ``tokenizer.json``, the weights: the task's
own input and output code reads them, see :class:`rnnzoo.export.OnnxModel`):

    encoder.onnx   the task's ``forward`` (classifier, tagger, sequence predictor) or ``encode``
                   (language model, seq2seq, captioner): token ids or frames and their real
                   lengths in, logits or the first decoding state out
    step.onnx      a generating task's ``step``: ``(tokens [B], state) -> (logits [B, V], state)``,
                   which :mod:`rnnzoo.decoding` drives for greedy, sampling and beam search
    onnx.json      how the graphs' inputs and outputs map to the task's tensors, and their sha256

Batch and sequence axes are dynamic, and padded batches stay exact: the fused cells' layers
become ONNX's ``LSTM`` / ``GRU`` / ``RNN`` operators, which stop every row at its real length
(:meth:`rnnzoo.cells.RecurrentBackbone._run_exported`). Graphs are traced by torch's
TorchScript-based exporter (``dynamo=False``), which maps packed recurrent layers to those
operators; ``quantize="int8"`` then quantizes their weights with ONNX Runtime.
"""

from __future__ import annotations

import io
import logging
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnzoo.hub.artifact import sha256_file, write_artifact
from rnnzoo.serialization import write_json
from rnnzoo.tasks import (
    Captioner,
    Classifier,
    GenerativeTask,
    LanguageModel,
    RNNTask,
    Seq2Seq,
    SequencePredictor,
    Tagger,
)

ENCODER, STEP, MANIFEST = "encoder.onnx", "step.onnx", "onnx.json"
OPSET = 17
MANIFEST_FORMAT = 1
EXAMPLE_SIZES = ((2, 13), (3, 14))
"""Two (batch, steps) sizes of example inputs: an axis whose size differs between them is dynamic."""
QUANTIZATIONS = (None, "int8")

GraphCall = Callable[[RNNTask, dict[str, Tensor]], dict[str, Tensor]]
"""What a graph computes with the task: named input tensors -> named output tensors."""


def flatten_tensors(value: Any, prefix: str) -> dict[str, Tensor]:
    """The tensors of a nested state (tensors, tuples, lists and dicts of them) by dotted path: ``state.rnn.0``."""
    if isinstance(value, Tensor):
        return {prefix: value}
    items = value.items() if isinstance(value, dict) else enumerate(value)
    flat: dict[str, Tensor] = {}
    for key, item in items:
        flat.update(flatten_tensors(item, f"{prefix}.{key}"))
    return flat


def unflatten_tensors(flat: dict[str, Tensor], prefix: str) -> Any:
    """Undo :func:`flatten_tensors` for the paths under ``prefix`` (numbered parts are tuple positions)."""
    if prefix in flat:
        return flat[prefix]
    children: dict[str, dict[str, Tensor]] = {}
    for name, tensor in flat.items():
        if name.startswith(prefix + "."):
            key = name[len(prefix) + 1 :].split(".", 1)[0]
            children.setdefault(key, {})[name] = tensor
    if not children:
        raise KeyError(f"no tensor under {prefix!r}")
    values = {key: unflatten_tensors(group, f"{prefix}.{key}") for key, group in children.items()}
    if all(key.isdigit() for key in values):
        return tuple(values[key] for key in sorted(values, key=int))
    return values


def encoder_method(task: RNNTask) -> str:
    """The task method the encoder graph computes: ``encode`` for generating tasks, else ``forward``."""
    return "encode" if isinstance(task, GenerativeTask) else "forward"


def example_inputs(task: RNNTask, batch: int, steps: int) -> dict[str, Tensor]:
    """Inputs of the encoder method, by parameter name: ``batch`` rows, the second one padded.

    Raises:
        ValueError: for a task this module cannot export.
    """
    hp = task.hparams
    lengths = torch.full((batch,), steps, dtype=torch.long)
    lengths[1] = steps // 2

    def ids(size: int) -> Tensor:
        return torch.randint(1, size, (batch, steps))

    if isinstance(task, Classifier | LanguageModel):
        return {"tokens": ids(hp.vocab_size), "lengths": lengths}
    if isinstance(task, Tagger):
        if not task.words:
            return {"inputs": torch.randn(batch, steps, hp.frame_size), "lengths": lengths}
        inputs = {"inputs": ids(hp.vocab_size), "lengths": lengths}
        if task.char_encoder is not None:
            inputs["chars"] = torch.randint(1, hp.char_vocab_size, (batch, steps, steps - 8))  # words of 5 or 6 chars
        return inputs
    if isinstance(task, SequencePredictor):
        return {"frames": torch.randn(batch, steps, hp.frame_size)}
    if isinstance(task, Seq2Seq):
        return {"source": ids(hp.vocab_size["source"]), "source_lengths": lengths}
    if isinstance(task, Captioner):
        if hp.condition == "category":
            return {"condition": torch.randint(0, hp.num_categories, (batch,))}
        if hp.condition == "vector":
            return {"condition": torch.randn(batch, hp.feature_size)}
        return {"condition": torch.randn(batch, hp.image_channels, hp.image_size, hp.image_size)}
    raise ValueError(f"ONNX export does not know the inputs of a {type(task).__name__}")


def dynamic_axes(first: dict[str, Tensor], second: dict[str, Tensor]) -> dict[str, dict[int, str]]:
    """The axes whose size differs between two examples of the same tensors, named ``batch``, ``steps`` or ``dimN``."""
    (batch_a, steps_a), (batch_b, steps_b) = EXAMPLE_SIZES
    axes = {}
    for name, tensor in first.items():
        known = {(batch_a, batch_b): "batch", (steps_a, steps_b): "steps"}
        sizes = enumerate(zip(tensor.shape, second[name].shape, strict=True))
        axes[name] = {axis: known.get((a, b), f"dim{axis}") for axis, (a, b) in sizes if a != b}
    return axes


class _Graph(nn.Module):
    """What one graph computes: named tensors in, named tensors out (the task a submodule: its weights initializers)."""

    def __init__(self, task: RNNTask, call: GraphCall, inputs: list[str]) -> None:
        super().__init__()
        self.task, self.call, self.input_names = task, call, inputs
        self.eval()  # the exporter restores this mode afterwards, and it is the task's too

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        """The outputs, in the order :meth:`outputs` names them."""
        return tuple(self.outputs(dict(zip(self.input_names, tensors, strict=True))).values())

    def outputs(self, named: dict[str, Tensor]) -> dict[str, Tensor]:
        """The named outputs of named inputs."""
        return self.call(self.task, named)


def _encode(task: RNNTask, named: dict[str, Tensor]) -> dict[str, Tensor]:
    return flatten_tensors(getattr(task, encoder_method(task))(*named.values()), "out")


def decoding_state(encoded: Any) -> Any:
    """The first decoding state in what ``encode`` returns: the language model's ``(logits, state)``, or a state."""
    return encoded[1] if isinstance(encoded, tuple) else encoded


def _step_call(carried: set[str]) -> GraphCall:
    """The step graph's function: ``tokens`` and ``state.*`` in, ``logits`` and the changed ``next.*`` out."""

    def call(task: RNNTask, named: dict[str, Tensor]) -> dict[str, Tensor]:
        state = unflatten_tensors({k: v for k, v in named.items() if k != "tokens"}, "state")
        logits, state = task.step(named["tokens"], state)
        changed = flatten_tensors(state, "next")
        return {"logits": logits, **{k: v for k, v in changed.items() if k.replace("next", "state", 1) not in carried}}

    return call


def _carried(task: RNNTask, state: Any) -> set[str]:
    """The state entries the step passes through unchanged (the encoded source): no graph output, fed as they are."""
    tokens = torch.zeros(decoding_state_batch(state), dtype=torch.long)
    _, after = task.step(tokens, state)
    before, after = flatten_tensors(state, "state"), flatten_tensors(after, "state")
    return {name for name, tensor in after.items() if before.get(name) is tensor}


def decoding_state_batch(state: Any) -> int:
    """The batch size of a decoding state (a backbone tensor has it on dim 1)."""
    if isinstance(state, dict):
        return decoding_state_batch(state["rnn"])
    return (state if isinstance(state, Tensor) else state[0]).shape[1]


def _trace(graph: _Graph, examples: list[dict[str, Tensor]], path: Path) -> dict[str, Any]:
    """Export ``graph`` to ``path`` with the axes that differ between the two ``examples`` dynamic."""
    first, second = examples
    out_first, out_second = graph.outputs(first), graph.outputs(second)
    axes = {**dynamic_axes(first, second), **dynamic_axes(out_first, out_second)}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes, about code known to trace
        torch.onnx.export(
            graph, tuple(first.values()), buffer, dynamo=False, opset_version=OPSET, input_names=list(first),
            output_names=list(out_first), dynamic_axes=axes, do_constant_folding=True,
        )  # fmt: skip
    path.write_bytes(buffer.getvalue())
    return {"file": path.name, "inputs": list(first), "outputs": list(out_first), "dynamic_axes": axes}


def export_onnx(task: RNNTask, directory: str | Path, quantize: str | None = None) -> Path:
    """Write ``task`` as ONNX graphs beside its artifact (see the module docstring).

    Args:
        task: any rnnzoo task built on the fused cells (``lstm``, ``gru``, ``rnn``).
        directory: the folder to write (created).
        quantize: None (float32) or ``"int8"`` (ONNX Runtime's dynamic quantization of the weights).

    Returns:
        The folder.

    Raises:
        ValueError: for an unknown ``quantize``, or a model whose cells cannot be exported.
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    directory = Path(directory)
    write_artifact(task, directory)
    task = task.eval()
    manifest: dict[str, Any] = {"format": MANIFEST_FORMAT, "opset": OPSET, "quantize": quantize}
    with torch.no_grad(), tempfile.TemporaryDirectory() as scratch:
        examples = [example_inputs(task, batch, steps) for batch, steps in EXAMPLE_SIZES]
        graphs = {"encoder": (_Graph(task, _encode, list(examples[0])), examples)}
        if isinstance(task, GenerativeTask):
            states = [decoding_state(task.encode(*example.values())) for example in examples]
            carried = _carried(task, states[0])
            steps = [
                {"tokens": torch.ones(decoding_state_batch(s), dtype=torch.long), **flatten_tensors(s, "state")}
                for s in states
            ]
            graphs["step"] = (_Graph(task, _step_call(carried), list(steps[0])), steps)
        for name, (graph, graph_examples) in graphs.items():
            floats = Path(scratch) / f"{name}.onnx"
            try:
                manifest[name] = _trace(graph, graph_examples, floats)
            except NotImplementedError as error:
                raise ValueError(str(error)) from None
            final = directory / f"{name}.onnx"
            if quantize == "int8":
                quantize_onnx_int8(floats, final)
            else:
                final.write_bytes(floats.read_bytes())
            manifest[name]["sha256"] = sha256_file(final)
    write_json(directory / MANIFEST, manifest)
    return directory


def quantize_onnx_int8(source: Path, target: Path) -> None:
    """ONNX Runtime's dynamic int8 quantization of a graph's weights (MatMul, Gemm, LSTM ...)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # its advice to pre-process graphs made for vision models
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
