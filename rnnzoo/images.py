"""Images in and out without an image library: read files into tensors, resize and normalise them in torch.

PPM/PGM, ``.pt`` and ``.npy`` files are read by rnnzoo itself; PNG, JPEG and the rest
need Pillow (``pip install rnnzoo[image]``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_image(path: str | os.PathLike) -> Tensor:
    """An image file as a ``[C, H, W]`` tensor: ``.pt``/``.npy`` arrays, binary PPM/PGM, or anything Pillow reads.

    Raises:
        FileNotFoundError: when there is no file.
        ValueError: when the file cannot be read as an image.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no image file at {path!r}")
    try:
        if path.endswith(".pt"):
            return torch.as_tensor(torch.load(path, weights_only=True))
        if path.endswith(".npy"):
            import numpy as np

            return torch.as_tensor(np.load(path)).permute(2, 0, 1)
        with open(path, "rb") as file:
            data = file.read()
        if data[:2] in (b"P5", b"P6"):
            return _read_pnm(data)
        from PIL import Image  # optional: only for PNG, JPEG and the like

        with Image.open(path) as image:
            import numpy as np

            return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)  # a copy: writable
    except ImportError:
        raise ValueError(
            f"cannot read image {path!r}: without Pillow only .pt, .npy and binary PPM/PGM files are read "
            "(pip install pillow)"
        ) from None
    except Exception as error:
        raise ValueError(f"cannot read image {path!r}: {error}") from None


def _read_pnm(data: bytes) -> Tensor:
    fields, position = [], 0
    while len(fields) < 4:
        while data[position : position + 1].isspace():
            position += 1
        if data[position : position + 1] == b"#":
            position = data.index(b"\n", position)
            continue
        end = position
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[position:end])
        position = end
    magic, width, height = fields[0], int(fields[1]), int(fields[2])
    channels = 3 if magic == b"P6" else 1
    pixels = torch.frombuffer(
        bytearray(data[position + 1 : position + 1 + width * height * channels]), dtype=torch.uint8
    )
    return pixels.view(height, width, channels).permute(2, 0, 1)


def write_ppm(path: str | os.PathLike, image: Tensor) -> None:
    """Write a ``[3, H, W]`` uint8 image as binary PPM (readable by :func:`load_image` without Pillow)."""
    _, height, width = image.shape
    with open(path, "wb") as file:
        file.write(f"P6\n{width} {height}\n255\n".encode())
        file.write(image.permute(1, 2, 0).contiguous().to(torch.uint8).numpy().tobytes())


def prepare_image(
    image: Any,
    size: int,
    channels: int = 3,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Tensor:
    """One image (``[C, H, W]`` or ``[H, W, C]`` array, uint8 0-255 or float 0-1) resized to ``size`` and normalised.

    Raises:
        ValueError: for an image whose channel count is not ``channels`` (or that is not 2-D/3-D).
    """
    image = torch.as_tensor(image)
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3:
        raise ValueError(
            f"an image must have 2 or 3 dimensions ([C, H, W] or [H, W, C]), got shape {list(image.shape)}"
        )
    if image.shape[0] > 4 and image.shape[-1] <= 4:
        image = image.permute(2, 0, 1)  # [H, W, C] -> [C, H, W]
    if image.shape[0] != channels:
        raise ValueError(
            f"the image has {image.shape[0]} channel(s) (shape {list(image.shape)}) but the model reads {channels}; "
            f"convert it to {'RGB' if channels == 3 else f'{channels} channels'}"
        )
    image = image.float() / 255.0 if not image.is_floating_point() else image.float()
    if image.shape[1:] != (size, size):
        image = F.interpolate(image.unsqueeze(0), size=(size, size), mode="bilinear", align_corners=False)[0]
    mean_t = torch.tensor(mean[:channels] if channels <= len(mean) else [0.5] * channels).view(-1, 1, 1)
    std_t = torch.tensor(std[:channels] if channels <= len(std) else [0.25] * channels).view(-1, 1, 1)
    return (image - mean_t) / std_t
