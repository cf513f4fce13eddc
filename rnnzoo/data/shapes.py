"""A small generated image-caption dataset: coloured shapes at positions, captioned by a tiny grammar.

For tests and the offline demo only (no small real image-caption set is reachable
offline): every image is ``size x size`` RGB, black, with one red, green, blue or
yellow square, circle or triangle at the left, right, top or bottom (jittered).
Each image has three reference captions from a little grammar, e.g. "a red circle
on the left", "there is a red circle on the left", "the circle on the left is red".
Everything is deterministic given the seed.
"""

from __future__ import annotations

import torch
from datasets import Array3D, Dataset, DatasetDict, Features, Sequence, Value

COLOURS = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 240), "yellow": (240, 220, 40)}
SHAPES = ("square", "circle", "triangle")
POSITIONS = ("left", "right", "top", "bottom")


def draw_shape(
    shape: str, colour: str, position: str, size: int = 32, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A ``[size, size, 3]`` uint8 image of ``shape`` in ``colour`` at ``position``, jittered by ``generator``."""
    radius = size // 6
    jitter = torch.randint(-2, 3, (2,), generator=generator).tolist() if generator is not None else [0, 0]
    centre = {
        "left": (size // 2, size // 4),
        "right": (size // 2, 3 * size // 4),
        "top": (size // 4, size // 2),
        "bottom": (3 * size // 4, size // 2),
    }[position]
    row, col = centre[0] + jitter[0], centre[1] + jitter[1]
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    dy, dx = ys - row, xs - col
    if shape == "square":
        mask = (dy.abs() <= radius) & (dx.abs() <= radius)
    elif shape == "circle":
        mask = dy**2 + dx**2 <= radius**2
    else:  # an upward triangle: wider towards the bottom
        mask = (dy >= -radius) & (dy <= radius) & (dx.abs() <= (dy + radius) / 2)
    image = torch.zeros(size, size, 3, dtype=torch.uint8)
    image[mask] = torch.tensor(COLOURS[colour], dtype=torch.uint8)
    return image


def captions(shape: str, colour: str, position: str) -> list[str]:
    """The three reference captions of one image."""
    return [
        f"a {colour} {shape} on the {position}",
        f"there is a {colour} {shape} on the {position}",
        f"the {shape} on the {position} is {colour}",
    ]


def shapes_split(count: int, seed: int, size: int = 32) -> Dataset:
    """``count`` generated rows: ``image`` (``[size, size, 3]`` uint8) and ``captions`` (three strings)."""
    generator = torch.Generator().manual_seed(seed)
    images, references = [], []
    for _ in range(count):
        shape = SHAPES[int(torch.randint(len(SHAPES), (1,), generator=generator))]
        colour = list(COLOURS)[int(torch.randint(len(COLOURS), (1,), generator=generator))]
        position = POSITIONS[int(torch.randint(len(POSITIONS), (1,), generator=generator))]
        images.append(draw_shape(shape, colour, position, size, generator).numpy())
        references.append(captions(shape, colour, position))
    features = Features({"image": Array3D((size, size, 3), "uint8"), "captions": Sequence(Value("string"))})
    return Dataset.from_dict({"image": images, "captions": references}, features=features)


def shapes_dataset(
    train: int = 1200, validation: int = 200, test: int = 200, seed: int = 0, size: int = 32
) -> DatasetDict:
    """Train / validation / test splits of generated shapes (different seeds per split)."""
    return DatasetDict(
        {
            "train": shapes_split(train, seed, size),
            "validation": shapes_split(validation, seed + 1, size),
            "test": shapes_split(test, seed + 2, size),
        }
    )
