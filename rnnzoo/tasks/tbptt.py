"""Truncated backpropagation through time: carry each stage's recurrent state from chunk to chunk, detached.

A task that reads long sequences as consecutive chunks (the language model's parallel text
streams, a tagger's whole videos) mixes in :class:`TruncatedBPTT`: it starts every epoch of
every stage from h_0 = 0, reads each chunk from the state the previous chunk ended with
(:meth:`~TruncatedBPTT.carried_state`) and keeps that state *detached*
(:meth:`~TruncatedBPTT.carry`), so gradients flow through at most one chunk while the model
still sees all the context before it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rnnzoo.cells import State, map_state


def state_rows(state: State) -> int:
    """The number of sequences (the batch dimension) a backbone state holds."""
    first = state[0] if isinstance(state, tuple) else state
    return first.shape[1]


class TruncatedBPTT:
    """Mixin of a :class:`~rnnzoo.tasks.RNNTask` (put it first among the bases) that carries state between chunks.

    The states live in ``carried_states`` (by stage: ``train``, ``val``, ``test``, ``predict``)
    and are reset to None (h_0 = 0) at the start of every epoch of their stage. The training
    state travels in checkpoints, so a run resumed mid-epoch reads on exactly as it would have.
    """

    @property
    def _carried(self) -> dict[str, State | None]:
        return self.__dict__.setdefault("carried_states", {})

    def carried_state(self, stage: str, batch_size: int, continues: Tensor | None = None) -> State | None:
        """The state the previous chunk of ``stage`` ended with, for a chunk of ``batch_size`` rows, or None (h_0 = 0).

        Args:
            stage: ``train``, ``val``, ``test`` or ``predict``.
            batch_size: rows of the chunk about to be read.
            continues: ``[B]`` bool, True where row ``b`` continues row ``b`` of the previous
                chunk. None (parallel streams, as the language model reads): the state is
                carried only when the chunk has as many rows as the last one. Given: the state
                is cut to the first ``batch_size`` rows (the lanes still going) and is zero
                where a new sequence starts.
        """
        state = self._carried.get(stage)
        if state is None:
            return None
        rows = state_rows(state)
        if continues is None:
            return state if rows == batch_size else None
        if rows < batch_size or not bool(continues.any()):
            return None
        keep = continues.view(1, -1, 1)
        return map_state(lambda tensor: torch.where(keep.to(tensor.device), tensor[:, :batch_size], 0.0), state)

    def carry(self, stage: str, state: State) -> None:
        """Keep ``state`` for the next chunk of ``stage``, detached (the next chunk does not backpropagate here)."""
        self._carried[stage] = map_state(Tensor.detach, state)

    def reset_carried_state(self, stage: str) -> None:
        """Forget the state of ``stage``: its next chunk starts from h_0 = 0."""
        self._carried[stage] = None

    def on_train_epoch_start(self) -> None:
        """Each epoch reads its sequences from their start, from h_0 = 0.

        Lightning skips this hook when it resumes mid-epoch, so the state
        :meth:`on_load_checkpoint` restored is kept exactly then.
        """
        self.reset_carried_state("train")
        super().on_train_epoch_start()

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """The first batch of an epoch starts from h_0 = 0, even in a run resumed from the end of an epoch."""
        if batch_idx == 0:
            self.reset_carried_state("train")
        return super().training_step(batch, batch_idx)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Also store the training state carried to the next chunk: a resumed run goes on from it exactly."""
        super().on_save_checkpoint(checkpoint)
        checkpoint.setdefault("rnnzoo", {})["carried_state"] = self._carried.get("train")

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the carried training state: a run resumed mid-epoch reads its next chunk from it."""
        super().on_load_checkpoint(checkpoint)
        self._carried["train"] = checkpoint.get("rnnzoo", {}).get("carried_state")

    def on_validation_epoch_start(self) -> None:
        """Validation reads its sequences from h_0 = 0 (with fresh metrics)."""
        self.reset_carried_state("val")
        super().on_validation_epoch_start()

    def on_test_epoch_start(self) -> None:
        """Testing reads its sequences from h_0 = 0 (with fresh metrics)."""
        self.reset_carried_state("test")
        super().on_test_epoch_start()

    def on_predict_epoch_start(self) -> None:
        """Prediction reads its sequences from h_0 = 0."""
        self.reset_carried_state("predict")
        super().on_predict_epoch_start()
