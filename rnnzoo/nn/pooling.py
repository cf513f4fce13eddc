"""Pooling a padded sequence of outputs into one vector per sequence, over its real steps only."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from rnnzoo.nn.masking import lengths_to_mask

PoolingMode = Literal["last", "mean", "max", "attention"]


class SequencePooling(nn.Module):
    """``outputs [B, T, D]`` and ``lengths [B]`` -> ``[B, D]``, never reading padded steps.

    * ``last``: the output at the last real step; for a bidirectional backbone the
      forward half is read at the last real step and the backward half at step 0,
      where each direction has read the whole sequence.
    * ``mean`` / ``max``: over the real steps.
    * ``attention``: a learned weighted mean, ``softmax_t(v . tanh(W o_t))`` over real
      steps (Yang et al. 2016's attention pooling).

    Args:
        mode: one of ``last``, ``mean``, ``max``, ``attention``.
        size: features ``D`` of each output step.
        bidirectional: whether the outputs are ``[forward, backward]`` halves.
    """

    def __init__(self, mode: PoolingMode, size: int, bidirectional: bool = False) -> None:
        super().__init__()
        if mode not in ("last", "mean", "max", "attention"):
            raise ValueError(f"pooling must be one of last, mean, max, attention; got {mode!r}")
        self.mode = mode
        self.bidirectional = bidirectional
        if mode == "attention":
            self.score = nn.Sequential(nn.Linear(size, size), nn.Tanh(), nn.Linear(size, 1, bias=False))

    def forward(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        """Pool ``outputs [B, T, D]`` over the first ``lengths[b]`` steps of each row."""
        lengths = lengths.to(outputs.device)
        mask = lengths_to_mask(lengths, outputs.shape[1]).unsqueeze(-1)  # [B, T, 1]
        if self.mode == "last":
            rows = torch.arange(outputs.shape[0], device=outputs.device)
            last = outputs[rows, lengths - 1]
            if not self.bidirectional:
                return last
            forward, backward = last.chunk(2, dim=-1)
            return torch.cat([forward, outputs[:, 0, backward.shape[-1] :]], dim=-1)
        if self.mode == "mean":
            return (outputs * mask).sum(1) / lengths.unsqueeze(1).to(outputs.dtype)
        if self.mode == "max":
            return outputs.masked_fill(~mask, float("-inf")).amax(1)
        scores = self.score(outputs).masked_fill(~mask, float("-inf"))
        return (scores.softmax(dim=1) * outputs).sum(1)
