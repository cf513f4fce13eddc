"""Writing predictions to a file as they are made: one JSON line per input, in order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter


class JsonLinesWriter(BasePredictionWriter):
    """Write each predict batch's outputs (:meth:`~rnnzoo.tasks.RNNTask.predict_step` dicts) as JSON lines.

    Lines are written batch by batch, so a split of any size streams to disk; the predict
    loader keeps the split's order, hence one line per row, in order. Under DDP, rank ``r``
    of ``n`` writes ``output`` with the suffix ``.rank{r}`` (each rank sees its own rows).

    Args:
        output: the file to write (replaced if it exists).
    """

    def __init__(self, output: str) -> None:
        super().__init__(write_interval="batch")
        self.output = output
        self._stream: TextIO | None = None

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Open the output file (one per rank when there are several)."""
        path = self.output if trainer.world_size == 1 else f"{self.output}.rank{trainer.global_rank}"
        self._stream = open(path, "w", encoding="utf-8")  # closed in on_predict_end

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Sequence[dict[str, Any]],
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Append one JSON line per output of the batch."""
        assert self._stream is not None, "on_predict_start opens the file"
        for output in prediction:
            self._stream.write(json.dumps(output, ensure_ascii=False) + "\n")

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Close the output file."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
