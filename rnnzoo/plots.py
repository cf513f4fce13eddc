"""Figures (matplotlib, the ``plot`` extra: ``pip install 'rnnzoo[plot]'``), drawn off-screen into files."""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F


def pyplot() -> Any:
    """The ``pyplot`` of matplotlib, on the file-only Agg backend.

    Raises:
        ImportError: without matplotlib, saying how to install it.
    """
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError("drawing figures needs matplotlib: pip install 'rnnzoo[plot]'") from error
    matplotlib.use("Agg")  # no display needed, none used
    from matplotlib import pyplot as plt

    return plt


def plot_attention(image: Tensor, words: list[str], weights: Tensor, path: str | os.PathLike, columns: int = 5) -> str:
    """The image, then one panel per word with that word's attention upsampled over it (Show, Attend and Tell's figure).

    Each panel's colours span its own weights, so a word that looks at one cell and one that looks
    everywhere both show where they look most.

    Args:
        image: ``[C, H, W]`` or ``[H, W, C]`` (uint8 0-255 or float 0-1; 1 or 3 channels), as the file was read.
        words: the caption's tokens, one per row of ``weights``.
        weights: ``[words, h, w]`` attention over the image encoder's feature map.
        path: the file to write; its extension picks the format.
        columns: panels per row.

    Returns:
        ``path``, as a string.

    Raises:
        ImportError: without matplotlib.
        ValueError: when ``words`` and ``weights`` disagree in length.
    """
    if len(words) != len(weights):
        raise ValueError(f"{len(words)} words but {len(weights)} rows of attention weights: give one row per word")
    plt = pyplot()
    image = torch.as_tensor(image)
    if image.dim() == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = image.permute(1, 2, 0)  # [C, H, W] -> [H, W, C], what imshow reads
    pixels = (image.float() / 255.0 if not image.is_floating_point() else image.float()).clamp(0, 1).squeeze(-1)
    heat = F.interpolate(weights.float().unsqueeze(1), size=pixels.shape[:2], mode="bilinear", align_corners=False)
    rows = math.ceil((len(words) + 1) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.4 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    axes.flat[0].imshow(pixels.numpy(), cmap="gray")
    axes.flat[0].set_title("image")
    for axis, word, cells in zip(axes.flat[1:], words, heat[:, 0], strict=False):
        axis.imshow(pixels.numpy(), cmap="gray")
        axis.imshow(cells.numpy(), cmap="inferno", alpha=0.6)
        axis.set_title(word)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return os.fspath(path)
