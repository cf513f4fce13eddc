"""Continuous frame features in: per-feature statistics of a training split, and the normalisation they define.

A data module computes the statistics once from its training frames and applies them to every
split; it stores them in the model's :class:`~rnnzoo.data_state.DataState` options
(:data:`MEAN_OPTION`, :data:`STD_OPTION`), and a task applies the same function to raw frames at
inference, so a saved model reads raw frames with nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

MEAN_OPTION = "frame_mean"
"""The data-state option holding the per-feature mean of the training frames."""
STD_OPTION = "frame_std"
"""The data-state option holding their per-feature standard deviation."""


def frame_statistics(rows: Sequence[Tensor]) -> tuple[list[float], list[float]]:
    """The per-feature mean and (population) standard deviation over every frame of ``rows``.

    A feature that never varies gets a standard deviation of 1, so normalising it only centres it.

    Args:
        rows: ``[T_i, F]`` frame sequences (each frame counts once, whatever its row).

    Raises:
        ValueError: when there are no frames.
    """
    frames = [row for row in rows if len(row) > 0]
    if not frames:
        raise ValueError("there are no frames to compute the normalisation statistics from")
    flat = torch.cat(frames).double()
    mean, std = flat.mean(0), flat.std(0, correction=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.tolist(), std.tolist()


def normalize_frames(frames: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """``(frames - mean) / std`` per feature, in float32: ``[..., F]`` frames, ``F`` means and deviations."""
    frames = frames.float()
    mean_tensor = torch.tensor(mean, dtype=torch.float32, device=frames.device)
    std_tensor = torch.tensor(std, dtype=torch.float32, device=frames.device)
    return (frames - mean_tensor) / std_tensor


def normalize_with(options: Mapping[str, Any], frames: Tensor) -> Tensor:
    """``frames`` normalised with the statistics stored in a data state's ``options``; as float32 if there are none."""
    if options.get(MEAN_OPTION) is None:
        return frames.float()
    return normalize_frames(frames, options[MEAN_OPTION], options[STD_OPTION])
