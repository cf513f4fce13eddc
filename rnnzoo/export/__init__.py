"""Deployment: ONNX export of every task, an ONNX Runtime runner, and dynamic int8 quantization."""

from rnnzoo.export.onnx import export_onnx
from rnnzoo.export.runtime import OnnxModel

__all__ = ["OnnxModel", "export_onnx"]
