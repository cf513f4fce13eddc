"""Run an exported task on ONNX Runtime, through the task's own input, decoding and output code.

    model = OnnxModel("sst2-onnx")
    model.predict(["a gripping, funny film"])     # what RNNTask.predict answers, computed by ONNX Runtime

:class:`OnnxModel` loads the task of the folder's artifact (its tokenizer, labels and hooks)
and routes the method each graph computes (``forward`` or ``encode``, and ``step``) to an ONNX
Runtime session: reading inputs, greedy decoding, sampling and beam search
(:mod:`rnnzoo.decoding`), a tagger's CRF and the output dicts stay the task's own code, so
ONNX outputs equal eager ones up to float rounding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnzoo.export.onnx import MANIFEST, MANIFEST_FORMAT, flatten_tensors, unflatten_tensors
from rnnzoo.hub.artifact import check_sha256, read_artifact
from rnnzoo.serialization import read_json
from rnnzoo.tasks import RNNTask


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """``onnx.json`` of an exported folder, its graphs' sha256 checked.

    Raises:
        FileNotFoundError: for a folder without ``onnx.json`` (not exported with ``--format onnx``).
        ValueError: for a manifest of a newer format, or a graph whose sha256 differs.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(directory)!r} holds no ONNX export ({MANIFEST}): write one with "
            "rnnzoo export --format onnx --model NAME --out DIR"
        )
    manifest = read_json(path)
    if manifest.get("format", 0) > MANIFEST_FORMAT:
        found = manifest["format"]
        raise ValueError(f"{str(path)!r} has ONNX export format {found}; this rnnzoo reads {MANIFEST_FORMAT}: upgrade")
    for name in ("encoder", "step"):
        if name in manifest:
            check_sha256(directory / manifest[name]["file"], manifest[name]["sha256"])
    return manifest


class OnnxGraph:
    """One exported graph as a Python function of the task's tensors.

    Args:
        path: the ``.onnx`` file.
        spec: its entry in ``onnx.json`` (input and output names).
        options: ONNX Runtime session options.
    """

    def __init__(self, path: Path, spec: dict[str, Any], options: Any) -> None:
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]  # the exporter drops inputs a graph never reads
        self.outputs = spec["outputs"]

    def run(self, named: dict[str, Tensor]) -> dict[str, Tensor]:
        """Named tensors in (extra ones ignored), named tensors out."""
        feeds = {name: named[name].detach().cpu().contiguous().numpy() for name in self.inputs}
        results = self.session.run(self.outputs, feeds)
        return {name: torch.from_numpy(np.asarray(value)) for name, value in zip(self.outputs, results, strict=True)}


class OnnxModel:
    """A task whose encoder and decoding step run on ONNX Runtime (see the module docstring).

    Args:
        directory: a folder written by :func:`rnnzoo.export.export_onnx`.
        threads: ONNX Runtime's intra-op threads (None: its default, one per core).

    Raises:
        ImportError: without onnxruntime (``pip install 'rnnzoo[onnx]'``).
    """

    def __init__(self, directory: str | Path, threads: int | None = None) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("running ONNX exports needs onnxruntime: pip install 'rnnzoo[onnx]'") from error
        directory = Path(directory)
        self.manifest = read_manifest(directory)
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.task: RNNTask = read_artifact(directory)
        encoder = OnnxGraph(directory / self.manifest["encoder"]["file"], self.manifest["encoder"], options)
        names = self.manifest["encoder"]["inputs"]
        method = "encode" if "step" in self.manifest else "forward"
        # Instance attributes shadow the methods: the task's own code now calls the graphs.
        object.__setattr__(self.task, method, lambda *args: self._encode(encoder, names, args))
        if "step" in self.manifest:
            step = OnnxGraph(directory / self.manifest["step"]["file"], self.manifest["step"], options)
            object.__setattr__(self.task, "step", lambda tokens, state: self._step(step, tokens, state))

    @staticmethod
    def _encode(graph: OnnxGraph, names: list[str], args: tuple[Any, ...]) -> Any:
        named = {name: value for name, value in zip(names, args, strict=False) if value is not None}
        return unflatten_tensors(graph.run(named), "out")

    @staticmethod
    def _step(graph: OnnxGraph, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        flat = flatten_tensors(state, "state")
        outputs = graph.run({"tokens": tokens, **flat})
        flat.update({name.replace("next", "state", 1): value for name, value in outputs.items() if name != "logits"})
        return outputs["logits"], unflatten_tensors(flat, "state")

    @property
    def quantized(self) -> bool:
        """Whether the graphs hold int8 weights."""
        return self.manifest.get("quantize") == "int8"

    def predict(self, inputs: Any, **options: Any) -> list[dict[str, Any]]:
        """:meth:`rnnzoo.RNNTask.predict`, computed by the graphs."""
        return self.task.predict(inputs, **options)
