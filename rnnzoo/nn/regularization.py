"""AWD-LSTM's regularisers (Merity et al. 2018), each usable on its own.

* :class:`LockedDropout`: variational dropout, one mask per sequence shared by every time step
  (Gal & Ghahramani 2016), on a ``[B, T, F]`` batch-first tensor.
* :class:`DropConnect`: a parametrization that drops entries of a weight matrix (Wan et al.
  2013); on the hidden-to-hidden weights (:func:`apply_weight_drop`) it is AWD-LSTM's weight
  drop, and since it only changes the weight that torch's fused kernel is given, the kernel
  still runs.
* :func:`embedding_dropout`: drops whole words (rows of the embedding) for a batch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence and feature, the same at every time step.

    Args:
        p: probability of dropping a unit.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {p!r}")
        self.p = p

    def forward(self, inputs: Tensor) -> Tensor:
        """``inputs [B, T, F]`` (or ``[B, F]``, one step) with units dropped, scaled by ``1 / (1 - p)``."""
        if not self.training or self.p == 0:
            return inputs
        shape = (inputs.shape[0], 1, inputs.shape[-1]) if inputs.dim() == 3 else inputs.shape
        mask = inputs.new_empty(shape).bernoulli_(1 - self.p) / (1 - self.p)
        return inputs * mask

    def extra_repr(self) -> str:
        """``p=...``."""
        return f"p={self.p}"


class DropConnect(nn.Module):
    """A parametrization that drops entries of a weight in training, scaled by ``1 / (1 - p)``.

    Args:
        p: probability of dropping an entry.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"weight_drop must lie in [0, 1), got {p!r}")
        self.p = p

    def forward(self, weight: Tensor) -> Tensor:
        """The weight with entries dropped (in training), as it is otherwise."""
        return nn.functional.dropout(weight, self.p, self.training)


def apply_weight_drop(module: nn.Module, p: float, prefix: str = "weight_hh") -> int:
    """Register :class:`DropConnect` on every parameter of ``module`` whose name starts with ``prefix``.

    Returns:
        How many weights were wrapped.

    Raises:
        ValueError: when no parameter has that name (a cell without hidden-to-hidden weights).
    """
    targets = [
        (owner, name)
        for owner in module.modules()
        for name, _ in list(owner.named_parameters(recurse=False))
        if name.startswith(prefix)
    ]
    if not targets:
        raise ValueError(
            f"weight_drop found no {prefix}* weight in {type(module).__name__}: use a cell with hidden-to-hidden "
            "weights (lstm, gru, rnn and their reference versions) or set weight_drop to 0"
        )
    for owner, name in targets:
        parametrize.register_parametrization(owner, name, DropConnect(p))
    return len(targets)


def embedding_dropout(embedded: Tensor, tokens: Tensor, vocab_size: int, p: float) -> Tensor:
    """Drop whole words for one batch: every occurrence of a dropped token id reads zeros.

    Equal to dropping rows of the embedding table (scaled by ``1 / (1 - p)``), whatever
    the embedding module computes from its rows.

    Args:
        embedded: ``[..., F]`` the embeddings of ``tokens``.
        tokens: ``[...]`` the token ids.
        vocab_size: rows of the table.
        p: probability of dropping a word.
    """
    if p == 0:
        return embedded
    keep = torch.empty(vocab_size, device=embedded.device).bernoulli_(1 - p) / (1 - p)
    return embedded * keep[tokens].unsqueeze(-1).to(embedded.dtype)
