"""Non-monotonically triggered weight averaging: AWD-LSTM's NT-ASGD on top of any optimizer.

Merity et al. (2018) train with SGD and, once the validation loss has stopped improving,
switch to averaged SGD: the weights used for evaluation become the running mean of every
iterate since the switch. :class:`NTAveraging` keeps the optimizer and the schedule the recipe
chose and adds the averaging with the same trigger, as a Lightning
:class:`~lightning.pytorch.callbacks.WeightAveraging` callback (which already swaps the averaged
weights in for validation, saves them in checkpoints and leaves them in the model at the end).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.utilities import rank_zero_info


class NTAveraging(WeightAveraging):
    """Average the weights of every step once ``monitor`` stops improving (non-monotonic trigger).

    The trigger is AWD-LSTM's: at a validation whose ``monitor`` value is worse than the best of the
    values logged more than ``patience`` validations earlier, averaging starts, and from then on the
    averaged weights are the ones validated, checkpointed and left in the model when training ends.
    Until it starts the callback changes nothing: validation and checkpoints see the current weights.

    Args:
        monitor: the logged validation metric (lower is better).
        patience: AWD-LSTM's ``nonmono``, 5: how many recent validations are not compared with.
        start_step: start averaging at this optimizer step even without the trigger (None: never).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, start_step: int | None = None) -> None:
        super().__init__()
        if patience < 1:
            raise ValueError(f"patience must be at least 1 validation, got {patience}")
        self.monitor = monitor
        self.patience = patience
        self.start_step = start_step
        self.history: list[float] = []
        self.started_at: int | None = None

    @property
    def averaging(self) -> bool:
        """Whether averaging has started."""
        return self.started_at is not None

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        """Every optimizer step once averaging has started (or ``start_step`` is reached)."""
        if step_idx is None:
            return False
        if not self.averaging and self.start_step is not None and step_idx + 1 >= self.start_step:
            self._start(step_idx + 1, f"step {self.start_step} reached")
        return self.averaging

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Record the monitored value and start averaging when it fails to improve on the older best."""
        if trainer.sanity_checking or self.averaging:
            return
        if self.monitor not in trainer.callback_metrics:
            raise KeyError(
                f"NTAveraging monitors {self.monitor!r}, which validation did not log; logged: "
                f"{', '.join(sorted(trainer.callback_metrics)) or 'nothing'}"
            )
        value = float(trainer.callback_metrics[self.monitor])
        older = self.history[: -self.patience]
        if older and value > min(older):
            self._start(trainer.global_step, f"{self.monitor} {value:.4f} is worse than {min(older):.4f}")
        self.history.append(value)

    def _start(self, step: int, reason: str) -> None:
        self.started_at = step
        rank_zero_info(f"NTAveraging: averaging the weights from step {step} on ({reason})")

    # Lightning's callback assumes averaging from the first step; before the trigger the average
    # holds the initial weights, so it must not reach validation, checkpoints or the final model.
    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Validate the averaged weights once averaging has started."""
        if self._has_average():
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Put the current weights back after validating the averaged ones."""
        if self._has_average():
            super().on_validation_epoch_end(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Leave the averaged weights in the model, if averaging started."""
        if self._has_average():
            super().on_train_end(trainer, pl_module)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Checkpoints hold the averaged weights (and the current ones to resume from) once averaging started."""
        if self._has_average():
            super().on_save_checkpoint(trainer, pl_module, checkpoint)

    def _has_average(self) -> bool:
        return self._average_model is not None and int(self._average_model.n_averaged) > 0

    def state_dict(self) -> dict[str, Any]:
        """Lightning's state, the validation history and the step averaging started at."""
        return {**super().state_dict(), "history": list(self.history), "started_at": self.started_at}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        super().load_state_dict(state_dict)
        self.history = list(state_dict.get("history", []))
        self.started_at = state_dict.get("started_at")
