"""Long-range benchmarks as data modules: the adding problem (synthetic) and pixel-by-pixel MNIST."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from rnnzoo.batches import collate_frames
from rnnzoo.data.base import HFDataModule, check_finite


def adding_problem(count: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Hochreiter & Schmidhuber's adding problem: ``(frames [count, length, 2], targets [count])``.

    Channel 0 holds values drawn from U(0, 1), channel 1 marks two of them (one in each
    half); the target is the sum of the two marked values. Always predicting 1 gives a
    mean squared error of 1/6 = 0.167, the baseline a model must beat.
    """
    values = torch.rand(count, length, generator=generator)
    first = torch.randint(0, length // 2, (count,), generator=generator)
    second = torch.randint(length // 2, length, (count,), generator=generator)
    markers = torch.zeros(count, length)
    rows = torch.arange(count)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)


class FrameDataModule(HFDataModule):
    """Train/validation/test frame tensors made once, on first use; shuffled training batches of frames.

    A subclass implements :meth:`make_splits`; :attr:`frame_size` is a class constant, so the
    CLI can link it into the model before anything is read.
    """

    collate_fn = staticmethod(collate_frames)
    frame_size: ClassVar[int]
    roles: ClassVar[dict[str, str]] = {"train": "train", "val": "validation", "test": "test"}

    def split_name(self, role: str) -> str:
        """The fixed split names: ``train``, ``validation``, ``test``."""
        return self.roles[role]

    def make_splits(self) -> dict[str, TensorDataset]:
        """Hook: the ``(frames [N, T, F], targets [N])`` of every split."""
        raise NotImplementedError

    def encode(self, split: str) -> TensorDataset:
        """The frames and targets of ``split`` (every split is made together, once)."""
        if split not in self.encoded:
            made = self.make_splits()
            for name, rows in made.items():
                check_finite(rows.tensors[0], name)
            self.encoded.update(made)
        return self.encoded[split]


class AddingProblemDataModule(FrameDataModule):
    """The adding problem at sequence ``length``, regenerated identically from ``seed``.

    Args:
        length: time steps ``T`` (at least 2).
        train_size: training sequences.
        val_size: validation sequences.
        test_size: test sequences.
        batch_size: sequences per batch.
        seed: seed of the generator (each split has its own stream).
    """

    frame_size = 2

    def __init__(
        self,
        length: int = 100,
        train_size: int = 20000,
        val_size: int = 1000,
        test_size: int = 1000,
        batch_size: int = 50,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if length < 2:
            raise ValueError(f"the adding problem needs length >= 2 (one marker in each half), got {length}")
        self.save_hyperparameters()

    def make_splits(self) -> dict[str, TensorDataset]:
        """Generate the three splits, each from its own seeded stream."""
        hp = self.hparams
        sizes = {"train": hp.train_size, "validation": hp.val_size, "test": hp.test_size}
        return {
            split: TensorDataset(*adding_problem(size, hp.length, torch.Generator().manual_seed(hp.seed + offset)))
            for offset, (split, size) in enumerate(sizes.items())
        }


class PixelSequenceDataModule(FrameDataModule):
    """Images read one pixel per step (pixel-by-pixel MNIST: 784 steps), split with a fixed seed.

    Takes the images from a ``pixels`` column (a flat list of 0-255 values, as the local
    copy) or an ``image`` column (as the hub's ``ylecun/mnist``), and splits one split
    of the dataset (by default the official test set only) into train/validation/test.

    Args:
        dataset: hub id (``ylecun/mnist``) or local folder.
        split: the split to read and divide.
        image_column: the column with the pixels or images.
        label_column: the column with the class.
        sizes: rows for train, validation and test, in that order.
        seed: seed of the division.
        batch_size: images per batch.
    """

    frame_size = 1

    def __init__(
        self,
        dataset: str = "ylecun/mnist",
        split: str = "test",
        image_column: str = "pixels",
        label_column: str = "label",
        sizes: tuple[int, int, int] = (8000, 1000, 1000),
        seed: int = 0,
        batch_size: int = 100,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()

    def columns(self) -> tuple[str, ...]:
        """The split read holds the image and the label column."""
        return ("image_column", "label_column")

    def make_splits(self) -> dict[str, TensorDataset]:
        """Read ``split`` once and divide it into train, validation and test with ``seed``.

        Raises:
            ValueError: when ``sizes`` ask for more rows than the split has.
        """
        hp = self.hparams
        rows = self.rows(hp.split)
        columns = rows.select_columns([hp.image_column, hp.label_column]).with_format("torch")[:]
        pixels = columns[hp.image_column].float().flatten(1).div(255.0).unsqueeze(-1)  # [N, H * W, 1]
        labels = columns[hp.label_column].long()
        if sum(hp.sizes) > len(labels):
            raise ValueError(
                f"sizes {tuple(hp.sizes)} ask for {sum(hp.sizes)} rows but split {hp.split!r} has {len(labels)}"
            )
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(hp.seed))
        bounds = torch.tensor([0, *hp.sizes]).cumsum(0).tolist()
        return {
            name: TensorDataset(pixels[order[start:end]], labels[order[start:end]])
            for name, start, end in zip(("train", "validation", "test"), bounds, bounds[1:], strict=False)
        }
