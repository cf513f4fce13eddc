"""Long-range benchmarks as data modules: the adding problem (synthetic) and pixel-by-pixel MNIST."""

from __future__ import annotations

import torch
from lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from rnnzoo.data.hf import get_split, load_splits


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


class _FixedSplits(LightningDataModule):
    """Train/validation/test tensors made once; shuffled training batches."""

    frame_size: int
    splits: dict[str, TensorDataset]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.splits[split], batch_size=self.hparams.batch_size, shuffle=shuffle)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches."""
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches."""
        return self._loader("validation", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches."""
        return self._loader("test", shuffle=False)


class AddingProblemDataModule(_FixedSplits):
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
        sizes = {"train": train_size, "validation": val_size, "test": test_size}
        self.splits = {
            split: TensorDataset(*adding_problem(size, length, torch.Generator().manual_seed(seed + offset)))
            for offset, (split, size) in enumerate(sizes.items())
        }


class PixelSequenceDataModule(_FixedSplits):
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
        rows = get_split(load_splits(dataset), split, dataset, image_column)
        if label_column not in rows.column_names:
            raise KeyError(
                f"dataset {dataset!r} has no label column {label_column!r}; its columns are {rows.column_names}"
            )
        columns = rows.select_columns([image_column, label_column]).with_format("torch")[:]
        pixels = columns[image_column].float().flatten(1).div(255.0).unsqueeze(-1)  # [N, H * W, 1]
        labels = columns[label_column].long()
        if sum(sizes) > len(labels):
            raise ValueError(f"sizes {tuple(sizes)} ask for {sum(sizes)} rows but split {split!r} has {len(labels)}")
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        bounds = torch.tensor([0, *sizes]).cumsum(0).tolist()
        self.splits = {
            name: TensorDataset(pixels[order[start:end]], labels[order[start:end]])
            for name, start, end in zip(("train", "validation", "test"), bounds, bounds[1:], strict=False)
        }
