"""Pretrained models: the artifact format, the bundled zoo, and moving weights between tasks."""

from rnnzoo.hub.artifact import read_artifact, resolve, sha256_file
from rnnzoo.hub.transfer import GradualUnfreezing, LoadPretrained, TransferReport, transfer_weights
from rnnzoo.hub.zoo import PretrainedModel, get_model_info, list_models, load_pretrained, models_by_task

__all__ = [
    "GradualUnfreezing",
    "LoadPretrained",
    "PretrainedModel",
    "TransferReport",
    "get_model_info",
    "list_models",
    "load_pretrained",
    "models_by_task",
    "read_artifact",
    "resolve",
    "sha256_file",
    "transfer_weights",
]
