"""Moving pretrained weights into another model, reporting every part that was not moved.

The ULMFiT-style use: a language model's embedding and backbone under a new classifier head.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import BaseFinetuning
from torch import nn
from torch.optim import Optimizer

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


def plain_name(name: str) -> str:
    """A state-dict name without a parametrization: ``a.parametrizations.w.original`` -> ``a.w``."""
    return re.sub(r"\.parametrizations\.([^.]+)\.original$", r".\1", name)


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
    # A weight under a parametrization (weight_drop's DropConnect) is stored as ...parametrizations.<name>.original:
    # it is the same weight as a plain one, on either side.
    source_names = {plain_name(name): name for name in source.state_dict()}
    source_state, target_state = source.state_dict(), target.state_dict()
    loaded, used, reinitialised = [], set(), {}
    with torch.no_grad():
        for name, tensor in target_state.items():
            source_name = source_names.get(plain_name(name))
            if parts is not None and not name.startswith(tuple(parts)):
                reinitialised[name] = "not among the parts asked for"
            elif source_name is None:
                reinitialised[name] = "the source has no such tensor"
            elif source_state[source_name].shape != tensor.shape:
                shapes = f"{list(source_state[source_name].shape)} in the source, {list(tensor.shape)} here"
                reinitialised[name] = f"shape differs ({shapes})"
            else:
                tensor.copy_(source_state[source_name])
                loaded.append(name)
                used.add(source_name)
    if not loaded:
        raise ValueError(
            f"no tensor of the {type(source).__name__} fits the {type(target).__name__}: "
            "use the same cell, sizes and vocabulary for the parts to move"
        )
    unused = [name for name in source_state if name not in used]
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


class GradualUnfreezing(BaseFinetuning):
    """ULMFiT's fine-tuning schedule (Howard & Ruder 2018): ``--trainer.callbacks+=rnnzoo.GradualUnfreezing``.

    The model is cut into layer groups, from the input up: the embedding, each recurrent
    layer of the backbone, then everything else (the new head). Training starts with
    only the head trainable; every ``unfreeze_every`` epochs the next group down is
    unfrozen (gradual unfreezing) and added to the optimizer with the head's learning
    rate divided by ``lr_decay`` once per group it lies below (discriminative learning
    rates: ULMFiT's 2.6). Use it after :class:`LoadPretrained`, with a scheduler that
    leaves added groups alone (none, or a ``LambdaLR``-style one; ``OneCycleLR`` sets its
    groups up once and cannot take new ones).

    Args:
        unfreeze_every: epochs between two unfreezings.
        lr_decay: each group's learning rate is the one above it divided by this.
    """

    def __init__(self, unfreeze_every: int = 1, lr_decay: float = 2.6) -> None:
        super().__init__()
        if unfreeze_every <= 0 or lr_decay <= 0:
            raise ValueError(f"unfreeze_every and lr_decay must be positive, got {unfreeze_every} and {lr_decay}")
        self.unfreeze_every = unfreeze_every
        self.lr_decay = lr_decay

    @staticmethod
    def layer_groups(pl_module: LightningModule) -> list[list[nn.Module]]:
        """The model's groups from the input up: embedding, each backbone layer, then the rest (the head)."""
        lower = [[pl_module.embedding]] if hasattr(pl_module, "embedding") else []
        lower += [[layer] for layer in pl_module.backbone.layers] if hasattr(pl_module, "backbone") else []
        inside = {id(module) for group in lower for top in group for module in top.modules()}
        rest = [child for child in pl_module.children() if not any(id(m) in inside for m in child.modules())]
        return [*lower, rest]

    def freeze_before_training(self, pl_module: LightningModule) -> None:
        """Freeze every group but the top one."""
        groups = self.layer_groups(pl_module)
        if len(groups) < 2:
            raise ValueError(f"{type(pl_module).__name__} has no embedding or backbone to unfreeze gradually")
        for group in groups[:-1]:
            self.freeze(group, train_bn=True)

    def finetune_function(self, pl_module: LightningModule, epoch: int, optimizer: Optimizer) -> None:
        """Every ``unfreeze_every`` epochs, unfreeze the next group down at ``lr / lr_decay**depth``."""
        depth, due = divmod(epoch, self.unfreeze_every)
        lower = self.layer_groups(pl_module)[:-1]
        if due or not 1 <= depth <= len(lower):
            return
        self.unfreeze_and_add_param_group(
            lower[-depth], optimizer, lr=optimizer.param_groups[0]["lr"] / self.lr_decay**depth
        )
