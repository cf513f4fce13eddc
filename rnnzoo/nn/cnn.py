"""The small image encoder of the captioner."""

from __future__ import annotations

from torch import Tensor, nn


class SmallCNN(nn.Module):
    """Three ``conv 3x3 -> batch norm -> ReLU -> max-pool 2`` blocks: ``[B, C, H, W] -> [B, channels, H/8, W/8]``.

    Args:
        in_channels: channels of the input images.
        channels: channels of every block.
    """

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for block in range(3):
            conv = nn.Conv2d(in_channels if block == 0 else channels, channels, 3, padding=1)
            blocks += [conv, nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2)]
        self.layers = nn.Sequential(*blocks)

    def forward(self, images: Tensor) -> Tensor:
        """Spatial feature maps of ``images``."""
        return self.layers(images)
