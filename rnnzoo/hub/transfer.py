"""Moving pretrained weights into another model, reporting every part that was not moved.

The ULMFiT-style use: a language model's embedding and backbone under a new classifier head.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from lightning import Callback, LightningModule, Trainer

from rnnzoo.hub.artifact import read_artifact, resolve

if TYPE_CHECKING:
    from rnnzoo.tasks.base import RNNTask

log = logging.getLogger(__name__)


@dataclass
class TransferReport:
    """What :func:`transfer_weights` did, tensor by tensor.

    Attributes:
        loaded: target tensors that now hold the source's values.
        reinitialised: target tensors left at their fresh initialisation, with why.
        unused: source tensors that went nowhere.
    """

    loaded: list[str]
    reinitialised: dict[str, str]
    unused: list[str]

    def __str__(self) -> str:
        """A few lines for the log."""
        lines = [f"loaded {len(self.loaded)} tensors"]
        lines += [f"re-initialised {name}: {why}" for name, why in self.reinitialised.items()]
        lines += [f"unused from the source: {name}" for name in self.unused]
        return "\n".join(lines)


def transfer_weights(source: RNNTask, target: RNNTask, parts: Sequence[str] | None = None) -> TransferReport:
    """Copy every tensor of ``source`` into the tensor of ``target`` with the same name and shape.

    Tensors the target has but cannot take (absent from the source, another shape, or
    outside ``parts``) keep their fresh initialisation and are reported, never silently
    dropped. When the embedding moves, the target takes the source's tokenizer too, since
    the embedding rows mean the source's token ids.

    Args:
        source: the pretrained model.
        target: the model to initialise.
        parts: name prefixes to move (e.g. ``["embedding", "backbone"]``); None moves all that fit.

    Raises:
        ValueError: when nothing at all can be moved.
    """
    source_state, target_state = source.state_dict(), target.state_dict()
    loaded, reinitialised = [], {}
    with torch.no_grad():
        for name, tensor in target_state.items():
            if parts is not None and not name.startswith(tuple(parts)):
                reinitialised[name] = "not among the parts asked for"
            elif name not in source_state:
                reinitialised[name] = "the source has no such tensor"
            elif source_state[name].shape != tensor.shape:
                shapes = f"{list(source_state[name].shape)} in the source, {list(tensor.shape)} here"
                reinitialised[name] = f"shape differs ({shapes})"
            else:
                tensor.copy_(source_state[name])
                loaded.append(name)
    if not loaded:
        raise ValueError(
            f"no tensor of the {type(source).__name__} fits the {type(target).__name__}: "
            "use the same cell, sizes and vocabulary for the parts to move"
        )
    unused = [name for name in source_state if name not in loaded]
    if any(name.startswith("embedding.") for name in loaded) and source.tokenizer is not None:
        target.tokenizer = source.tokenizer
    report = TransferReport(loaded, reinitialised, unused)
    log.warning("pretrained weights from %s into %s:\n%s", type(source).__name__, type(target).__name__, report)
    return report


class LoadPretrained(Callback):
    """Start ``fit`` from a pretrained model: ``--trainer.callbacks+=rnnzoo.LoadPretrained``.

    Moves the weights (:func:`transfer_weights`) before training starts. For the
    embedding to mean anything the data must use the same tokenizer: set the data
    module's ``pretrained_tokenizer`` to the same source.

    Args:
        source: a bundled model name, an artifact folder or a hub repo id.
        parts: name prefixes to move (e.g. ``[embedding, backbone]``), or None for all that fit.
    """

    def __init__(self, source: str, parts: list[str] | None = None) -> None:
        self.source = source
        self.parts = parts
        self.report: TransferReport | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Move the weights once, before the first fit."""
        if stage == "fit" and self.report is None:
            self.report = transfer_weights(read_artifact(resolve(self.source)), pl_module, self.parts)
