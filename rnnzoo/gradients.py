"""The gradient lab: how much gradient reaches each time step, and what clipping does to it.

:class:`GradientRecorder` is a Lightning callback for any task whose backbone
follows the cell contract (``pl_module.backbone``). Every ``every_n_steps``
training steps it runs the backbone one step at a time for that batch, so each
top-layer hidden state h_t is a node of the graph, and the total gradient dL/dh_t
(through the outputs *and* through all later steps) is kept. Plotting
``||dL/dh_t||`` over t shows gradients vanishing (or exploding) with the distance
from the loss. It also keeps dL/dx_t, the gradient reaching the input at step t:
that one follows every path, including an LSTM's cell state c_t, which dL/dh_t
does not see. Every step it also records the global gradient norm
before and after the Trainer's clipping.

    trainer = Trainer(gradient_clip_val=1.0, callbacks=[GradientRecorder(every_n_steps=100)])

Files, written at the end of training (or by :meth:`GradientRecorder.save`):
``gradient_norms_over_time.csv`` (step, t, ||dL/dh_t||, ||dL/dx_t||), ``gradient_clipping.csv``
(step, before, after), ``gradients.json`` (both), and
``gradient_norms_over_time.png`` when matplotlib is installed (``pip install rnnzoo[plot]``).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torch.optim import Optimizer

from rnnzoo.cells.backbone import State


def global_grad_norm(parameters: nn.Module | Iterable[Tensor]) -> Tensor:
    """The L2 norm of all the gradients taken together, as ``torch.nn.utils.clip_grad_norm_`` measures it.

    One ``torch._foreach_norm`` per device and dtype (``torch.nn.utils.get_total_norm``)
    instead of one norm per parameter, and no ``.item()``: the result stays a 0-dim
    tensor, so logging it every step does not wait for the device (Lightning turns
    it into a number only when it writes the logs).

    Args:
        parameters: a module (its parameters are taken) or parameters; those without
            a gradient are skipped.

    Returns:
        The norm, a 0-dim tensor on the gradients' device; 0 when no parameter has a gradient.
    """
    if isinstance(parameters, nn.Module):
        parameters = parameters.parameters()
    grads = [p.grad for p in parameters if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads, 2.0)


def run_step_by_step(
    backbone: nn.Module, inputs: Tensor, lengths: Tensor | None = None, state: State | None = None
) -> tuple[Tensor, State, list[Tensor], list[Tensor]]:
    """Run a unidirectional backbone one step at a time, exposing every top-layer hidden state.

    Gives the same outputs and final state as ``backbone(inputs, lengths, state)``.
    The top layer's h_t is one tensor, used both as the output at step t and as the
    state read by step t + 1, so its gradient is the total dL/dh_t. Each step's
    input gets a zero-valued leaf added (a probe), whose gradient is dL/dx_t.

    Returns:
        ``(outputs [B, T, H], final_state, hidden, probes)``: ``hidden[t]`` the ``[B, H]``
        node of h_t, ``probes[t]`` the ``[B, I]`` leaf whose ``.grad`` will be dL/dx_t.

    Raises:
        ValueError: for a bidirectional backbone (its h_t also depends on later inputs).
    """
    if getattr(backbone, "bidirectional", False):
        raise ValueError(
            "the gradient recorder follows dL/dh_t back through the recurrence, which needs a unidirectional "
            "backbone; record a copy of the model with bidirectional=False"
        )
    batch, steps = inputs.shape[:2]
    if state is None:
        state = backbone.initial_state(batch, inputs.device, inputs.dtype)
    outputs, hidden, probes = [], [], []
    for t in range(steps):
        probe = inputs.new_zeros(batch, inputs.shape[-1], requires_grad=torch.is_grad_enabled())
        probes.append(probe)
        output_t, new_state = backbone((inputs[:, t] + probe).unsqueeze(1), None, state)
        h_t = output_t[:, 0]
        h, *rest = (new_state,) if isinstance(new_state, Tensor) else new_state
        new_state = (torch.cat([h[:-1], h_t.unsqueeze(0)]), *rest)  # the top layer's h is the output node
        hidden.append(h_t)
        if lengths is not None:  # padded rows keep their state and output zeros
            running = (lengths.to(inputs.device) > t).view(1, batch, 1)
            old = (state,) if isinstance(state, Tensor) else state
            new_state = tuple(torch.where(running, n, o) for n, o in zip(new_state, old, strict=True))
            h_t = h_t * running[0]
        outputs.append(h_t)
        state = new_state[0] if len(new_state) == 1 else new_state
    return torch.stack(outputs, dim=1), state, hidden, probes


class GradientRecorder(Callback):
    """Records ||dL/dh_t|| over time steps, and the global gradient norm before and after clipping.

    Args:
        every_n_steps: record dL/dh_t on training steps 0, n, 2n, ... (the step-by-step
            run is slower than the fused one).
        dirpath: where to write the files; by default ``gradients/`` in the run's own folder
            (the trainer's ``log_dir``, e.g. ``runs/<recipe>/version_N``; ``default_root_dir``
            without a logger), so a second run never writes over the first one's files.
        backbone_attr: the attribute of the LightningModule holding the backbone.
        plot: also write a PNG when matplotlib is installed.
    """

    def __init__(
        self,
        every_n_steps: int = 100,
        dirpath: str | os.PathLike[str] | None = None,
        backbone_attr: str = "backbone",
        plot: bool = True,
    ) -> None:
        if not isinstance(every_n_steps, int) or every_n_steps <= 0:
            raise ValueError(f"every_n_steps must be a positive integer, got {every_n_steps!r}")
        self.every_n_steps = every_n_steps
        self.dirpath = dirpath
        self.backbone_attr = backbone_attr
        self.plot = plot
        self.norms_over_time: dict[int, list[float]] = {}
        """Training step -> ``[||dL/dh_t|| for t in range(T)]``."""
        self.input_norms_over_time: dict[int, list[float]] = {}
        """Training step -> ``[||dL/dx_t|| for t in range(T)]``."""
        self.clipping: list[tuple[int, float, float]] = []
        """``(step, norm before clipping, norm after clipping)`` for every step."""
        self._hidden: list[Tensor] = []
        self._probes: list[Tensor] = []
        self._before: float | None = None

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """On a recording step, make the backbone's next call run step by step."""
        if trainer.global_step % self.every_n_steps != 0:
            return
        backbone = getattr(pl_module, self.backbone_attr, None)
        if backbone is None:
            raise ValueError(
                f"{type(pl_module).__name__} has no attribute {self.backbone_attr!r}; "
                "pass GradientRecorder(backbone_attr=...) naming the module that holds the recurrent backbone"
            )

        def record_once(inputs: Tensor, lengths: Tensor | None = None, state: State | None = None) -> Any:
            del backbone.forward  # back to the class's forward for every later call
            outputs, final_state, self._hidden, self._probes = run_step_by_step(backbone, inputs, lengths, state)
            for h_t in self._hidden:
                if h_t.requires_grad:
                    h_t.retain_grad()
            return outputs, final_state

        backbone.forward = record_once

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer) -> None:
        """Collect dL/dh_t of a recording step, and the gradient norm before clipping."""
        self._before = float(global_grad_norm(pl_module))
        if self._hidden:
            norms = [0.0 if h.grad is None else float(h.grad.norm()) for h in self._hidden]
            self.norms_over_time[trainer.global_step] = norms
            self.input_norms_over_time[trainer.global_step] = [
                0.0 if x.grad is None else float(x.grad.norm()) for x in self._probes
            ]
            pl_module.log("gradients/dh_first_step", norms[0])
            pl_module.log("gradients/dh_last_step", norms[-1])
            self._hidden, self._probes = [], []

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Record the norm after clipping (the gradients the optimizer used)."""
        backbone = getattr(pl_module, self.backbone_attr, None)
        if backbone is not None and "forward" in vars(backbone):  # recording step without a backbone call
            del backbone.forward
        if self._before is None:
            return
        after = float(global_grad_norm(pl_module))
        self.clipping.append((trainer.global_step - 1, self._before, after))
        pl_module.log("gradients/norm_before_clip", self._before)
        pl_module.log("gradients/norm_after_clip", after)
        self._before = None

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write the files (and say where)."""
        folder = self.dirpath or Path(trainer.log_dir or trainer.default_root_dir) / "gradients"
        written = self.save(folder)
        rank_zero_info(f"rnnzoo: gradient norms written to {Path(folder)} ({', '.join(p.name for p in written)})")

    def save(self, dirpath: str | os.PathLike[str]) -> list[Path]:
        """Write the CSV and JSON files (and the PNG when matplotlib is installed); return their paths."""
        folder = Path(dirpath)
        folder.mkdir(parents=True, exist_ok=True)
        over_time, clipping = folder / "gradient_norms_over_time.csv", folder / "gradient_clipping.csv"
        with over_time.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["step", "t", "grad_norm_h_t", "grad_norm_x_t"])
            for step, norms in self.norms_over_time.items():
                inputs = self.input_norms_over_time[step]
                writer.writerows([step, t, norm, inputs[t]] for t, norm in enumerate(norms))
        with clipping.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["step", "norm_before_clip", "norm_after_clip"])
            writer.writerows(self.clipping)
        summary = folder / "gradients.json"
        summary.write_text(
            json.dumps(
                {
                    "norms_over_time": {str(step): norms for step, norms in self.norms_over_time.items()},
                    "input_norms_over_time": {str(s): norms for s, norms in self.input_norms_over_time.items()},
                    "clipping": [{"step": s, "before": b, "after": a} for s, b, a in self.clipping],
                }
            )
        )
        written = [over_time, clipping, summary]
        if self.plot and self.norms_over_time:
            figure = plot_norms_over_time({f"step {s}": n for s, n in self.norms_over_time.items()})
            if figure is not None:
                written.append(folder / "gradient_norms_over_time.png")
                figure.savefig(written[-1], dpi=100)
        return written


def plot_norms_over_time(curves: dict[str, list[float]], title: str = "gradient reaching each time step") -> Any:
    """A log-scale figure of ``||dL/dh_t||`` over t, one line per curve; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(6, 3.5))
    for label, norms in curves.items():
        axes.semilogy(range(len(norms)), [max(n, 1e-30) for n in norms], label=label)
    axes.set_xlabel("time step t (the loss reads the last step)")
    axes.set_ylabel("||dL/dh_t||")
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    plt.close(figure)
    return figure
