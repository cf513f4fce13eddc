"""What the sequence data modules share: encode each split once, and batch it by length."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from rnnzoo.data.batching import length_batched_loader


class SplitDataModule(LightningDataModule):
    """Base of the data modules whose splits are encoded once and batched by length.

    A subclass implements :meth:`encoded_split` (a map-style dataset, with a ``lengths``
    list when it buckets) and sets :attr:`collate_fn`. Its hyper-parameters name
    ``train_split``, ``val_split``, ``test_split``, ``batch_size``, ``eval_batch_size`` and
    ``num_workers``, and optionally ``bucketing`` and ``pool_batches``.
    """

    collate_fn: ClassVar[Callable[[list[Any]], Any]]

    def encoded_split(self, split: str) -> Dataset:
        """The encoded examples of ``split`` (computed once)."""
        raise NotImplementedError

    def predict_split(self) -> Dataset:
        """Hook: what ``predict`` reads, in its order (the test split)."""
        return self.encoded_split(self.hparams.test_split)

    def setup(self, stage: str) -> None:
        """Encode the splits the stage needs."""
        hp = self.hparams
        if stage == "predict":
            self.predict_split()
            return
        needed = {"fit": [hp.train_split, hp.val_split], "validate": [hp.val_split], "test": [hp.test_split]}
        for split in needed[stage]:
            self.encoded_split(split)

    def _loader(self, split: str, train: bool) -> DataLoader:
        hp = self.hparams
        data = self.encoded_split(split)
        return length_batched_loader(
            data,
            getattr(data, "lengths", None),
            hp.batch_size if train else hp.eval_batch_size,
            train,
            type(self).collate_fn,
            hp.get("bucketing", False),
            hp.get("pool_batches", 100),
            hp.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (bucketed by length when ``bucketing``)."""
        return self._loader(self.hparams.train_split, train=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches (in length order when ``bucketing``)."""
        return self._loader(self.hparams.val_split, train=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches (in length order when ``bucketing``)."""
        return self._loader(self.hparams.test_split, train=False)

    def predict_dataloader(self) -> DataLoader:
        """:meth:`predict_split` in its own order."""
        hp = self.hparams
        return DataLoader(
            self.predict_split(),
            batch_size=hp.eval_batch_size,
            collate_fn=type(self).collate_fn,
            num_workers=hp.num_workers,
        )
