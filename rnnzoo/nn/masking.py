"""The one masking helper: padded batches as lengths, masks from lengths, per-sequence reversal, masked softmax."""

from __future__ import annotations

import torch
from torch import Tensor


def reverse_padded(inputs: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse every sequence of a left-aligned padded batch within its own length.

    Step ``t < length`` moves to ``length - 1 - t``; padded steps stay where they
    are. Applying it twice gives the input back, so the same call undoes it. This is
    what lets the reverse direction of a bidirectional layer start at each
    sequence's last real step instead of on padding.

    Args:
        inputs: ``[B, T, *]`` batch-first tensor.
        lengths: ``[B]`` real lengths, or None when no sequence is padded.
    """
    if lengths is None:
        return inputs.flip(1)
    batch, steps = inputs.shape[:2]
    positions = torch.arange(steps, device=inputs.device).expand(batch, steps)
    lengths = lengths.to(inputs.device).unsqueeze(1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)
    index = index.view(batch, steps, *([1] * (inputs.dim() - 2))).expand_as(inputs)
    return inputs.gather(1, index)


def check_lengths(lengths: Tensor, batch_size: int, max_length: int) -> Tensor:
    """Validate a ``lengths`` tensor against its batch and return it as int64 on the CPU.

    Raises:
        ValueError: naming the problem, when the shape or values do not fit the batch.
    """
    if lengths.dim() != 1 or lengths.shape[0] != batch_size:
        raise ValueError(f"lengths must have shape [batch_size] = [{batch_size}], got {list(lengths.shape)}")
    lengths = lengths.detach().to("cpu", torch.int64)
    if bool((lengths < 1).any()) or bool((lengths > max_length).any()):
        raise ValueError(
            f"every length must lie in [1, {max_length}] (the padded number of steps), "
            f"got min {int(lengths.min())} and max {int(lengths.max())}"
        )
    return lengths


def lengths_to_mask(lengths: Tensor, steps: int | None = None) -> Tensor:
    """``[B]`` lengths -> ``[B, steps]`` bool mask, True at real steps and False at padding."""
    steps = int(lengths.max()) if steps is None else steps
    return torch.arange(steps, device=lengths.device) < lengths.unsqueeze(1)


def masked_softmax(scores: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax of ``scores`` over ``dim`` where positions with ``mask`` False get exactly zero weight.

    Args:
        scores: unnormalised scores, e.g. ``[B, T, S]`` attention energies.
        mask: bool, broadcastable to ``scores``; True at real positions. Every
            slice along ``dim`` needs at least one True (a sequence has at least one step).
        dim: the dimension the weights sum to one over.

    Returns:
        Weights of ``scores``' shape that sum to one over ``dim`` and are 0 where masked.
    """
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=dim).masked_fill(~mask, 0.0)
