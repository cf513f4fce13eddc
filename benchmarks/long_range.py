"""Long-range dependencies: the adding problem and pixel-by-pixel MNIST, cells at matched parameter counts.

OMP_NUM_THREADS=1 python benchmarks/long_range.py adding --lengths 50 100 200 500 1000 --max-steps 400 --max-seconds 90
OMP_NUM_THREADS=1 python benchmarks/long_range.py mnist --cells lstm mingru --max-steps 300 --max-seconds 300

Every run trains with a GradientRecorder (rnnzoo's gradient lab) that records ||dL/dh_t||
over the sequence at the first step; the adding runs also draw those curves in one figure.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from common import machine, print_table, shared_dataset
from lightning import LightningModule, Trainer
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from rnnzoo import GradientRecorder, build_cell
from rnnzoo.gradients import plot_norms_over_time

HERE = Path(__file__).resolve().parent
CELLS = ["rnn", "lstm", "gru", "indrnn", "mingru"]
LAYERS = {
    "indrnn": 2,
    "mingru": 2,
}  # cells without a recurrent matrix spend their parameters on depth, as in the papers


class LastStepModel(LightningModule):
    """Backbone over continuous inputs, a linear head on the last step; MSE (regression) or cross-entropy."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, outputs: int, lr: float, **options) -> None:
        super().__init__()
        self.backbone = build_cell(cell, input_size, hidden_size, **options)
        self.head = nn.Linear(self.backbone.output_size, outputs)
        self.lr = lr

    def forward(self, inputs: Tensor) -> Tensor:
        outputs, _ = self.backbone(inputs)
        return self.head(outputs[:, -1])

    def loss(self, batch) -> Tensor:
        inputs, targets = batch
        predictions = self(inputs)
        if targets.dtype == torch.long:
            return F.cross_entropy(predictions, targets)
        return F.mse_loss(predictions.squeeze(-1), targets)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=0.0)


def make_model(cell: str, input_size: int, hidden: int, outputs: int, lr: float, length: int) -> LastStepModel:
    options = {"num_layers": LAYERS.get(cell, 1)}
    if cell == "indrnn":
        options["max_length"] = length  # |u| <= 2 ** (1 / T)
    return LastStepModel(cell, input_size, hidden, outputs, lr, **options)


def parameters_of(cell: str, hidden: int, input_size: int, outputs: int) -> int:
    return sum(p.numel() for p in make_model(cell, input_size, hidden, outputs, 1e-3, 100).parameters())


def matched_hidden(cell: str, target: int, input_size: int, outputs: int) -> int:
    """The hidden size whose model has the parameter count closest to ``target``."""
    return min(range(2, 513), key=lambda h: abs(parameters_of(cell, h, input_size, outputs) - target))


def adding_problem(count: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Hochreiter's adding problem: values U(0, 1) and a marker channel; the target is the sum of the two marked.

    One marker lies in the first half, one in the second; predicting 1 always gives MSE 1/6 = 0.167.
    """
    values = torch.rand(count, length, generator=generator)
    first = torch.randint(0, length // 2, (count,), generator=generator)
    second = torch.randint(length // 2, length, (count,), generator=generator)
    markers = torch.zeros(count, length)
    rows = torch.arange(count)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)


class AddingStream(IterableDataset):
    """Fresh adding-problem batches forever, from a fixed seed."""

    def __init__(self, length: int, batch_size: int, seed: int) -> None:
        self.length, self.batch_size, self.seed = length, batch_size, seed

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        while True:
            yield adding_problem(self.batch_size, self.length, generator)


def mnist_splits(seed: int = 0) -> dict[str, TensorDataset]:
    """The official MNIST test set (10k) split 8k/1k/1k with a fixed seed; pixels scaled to [0, 1], one per step."""
    from datasets import load_dataset

    rows = load_dataset(shared_dataset("mnist_t10k"))["test"].with_format("torch")[:]
    pixels = rows["pixels"].float().div(255.0).unsqueeze(-1)
    labels = rows["label"].long()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    parts = {"train": order[:8000], "validation": order[8000:9000], "test": order[9000:]}
    return {name: TensorDataset(pixels[index], labels[index]) for name, index in parts.items()}


def train(model, loader, max_steps: int, max_seconds: float, folder: Path) -> tuple[GradientRecorder, int, float]:
    # dL/dh_t at the first step and (when the step budget, not the time, ends the run) the last
    recorder = GradientRecorder(every_n_steps=max(1, max_steps - 1), dirpath=folder, plot=False)
    trainer = Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        max_time={"seconds": max_seconds},
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
    )
    start = time.perf_counter()
    trainer.fit(model, loader)
    return recorder, trainer.global_step, time.perf_counter() - start


@torch.no_grad()
def evaluate(model, inputs: Tensor, targets: Tensor) -> float:
    """MSE for regression, accuracy for classification."""
    model.eval()
    predictions = torch.cat([model(x) for x in inputs.split(500)])
    if targets.dtype == torch.long:
        return float((predictions.argmax(-1) == targets).float().mean())
    return float(F.mse_loss(predictions.squeeze(-1), targets))


def run_adding(args) -> None:
    target = parameters_of("lstm", args.hidden, 2, 1)
    hidden = {cell: matched_hidden(cell, target, 2, 1) for cell in args.cells}
    results, curves = {}, {}
    for length in args.lengths:
        test_x, test_y = adding_problem(1000, length, torch.Generator().manual_seed(12345))
        for cell in args.cells:
            torch.manual_seed(0)
            model = make_model(cell, 2, hidden[cell], 1, args.lr, length)
            loader = DataLoader(AddingStream(length, args.batch, seed=length), batch_size=None)
            recorder, steps, seconds = train(
                model, loader, args.max_steps, args.max_seconds, args.out / f"adding_{cell}_{length}"
            )
            mse = evaluate(model, test_x, test_y)
            results[(cell, length)] = (mse, steps, seconds)
            if length == args.plot_length:
                for step in sorted(recorder.norms_over_time):
                    curves[f"{cell}, step {step}"] = (
                        recorder.norms_over_time[step],
                        recorder.input_norms_over_time[step],
                    )
            print(f"T={length} {cell}: test MSE {mse:.4f} after {steps} steps, {seconds:.0f} s", flush=True)
    print(
        f"\nmachine: {machine()}; AdamW lr {args.lr}, batch {args.batch}, clip 1.0, budget per run: "
        f"{args.max_steps} steps or {args.max_seconds:.0f} s"
    )
    print(
        f"parameters matched to a {args.hidden}-unit LSTM ({target:,}): "
        + ", ".join(f"{c} H={h}" for c, h in hidden.items())
    )
    rows = [[c, *(f"{results[(c, n)][0]:.4f} ({results[(c, n)][1]})" for n in args.lengths)] for c in args.cells]
    print_table(["cell", *(f"T={n}: MSE (steps)" for n in args.lengths)], rows)
    if curves:
        report_curves(curves, args)
    (args.out / "adding_results.json").write_text(
        json.dumps(
            {f"{c}@{n}": dict(zip(["mse", "steps", "seconds"], v, strict=True)) for (c, n), v in results.items()}
        )
    )


def report_curves(curves: dict[str, tuple[list[float], list[float]]], args) -> None:
    """Text tables of ||dL/dh_t|| and ||dL/dx_t|| at distances from the loss, relative to the last step; figures."""
    length = args.plot_length
    distances = [d for d in (0, 10, 50, 100, 200, 500, length - 1) if d < length]
    for index, (name, file) in enumerate([("h_t", "gradient_norms"), ("x_t", "gradient_input_norms")]):
        rows = [
            [cell, *(f"{norms[index][length - 1 - d] / norms[index][-1]:.1e}" for d in distances)]
            for cell, norms in curves.items()
        ]
        print(f"\n||dL/d{name}|| / ||dL/d{name[0]}_T||, adding problem T={length}, by distance T - t:")
        print_table(["cell", *(f"{d}" for d in distances)], rows)
        figure = plot_norms_over_time(
            {cell: norms[index] for cell, norms in curves.items()},
            title=f"adding problem, T={length}: gradient reaching {name}",
        )
        if figure is not None:
            figure.axes[0].set_ylabel(f"||dL/d{name}||")
            figure.savefig(HERE / f"{file}_adding_T{length}.png", dpi=80)


def run_mnist(args) -> None:
    splits = mnist_splits()
    target = parameters_of("lstm", args.hidden, 1, 10)
    rows, curves = [], {}
    for cell in args.cells:
        hidden = matched_hidden(cell, target, 1, 10)
        torch.manual_seed(0)
        model = make_model(cell, 1, hidden, 10, args.lr, 784)
        loader = DataLoader(
            splits["train"], batch_size=args.batch, shuffle=True, generator=torch.Generator().manual_seed(0)
        )
        recorder, steps, seconds = train(model, loader, args.max_steps, args.max_seconds, args.out / f"mnist_{cell}")
        accuracy = {name: evaluate(model, *splits[name].tensors) for name in ("validation", "test")}
        curves[cell] = (recorder.norms_over_time[0], recorder.input_norms_over_time[0])
        rows.append([cell, hidden, steps, f"{seconds:.0f}", f"{accuracy['validation']:.3f}", f"{accuracy['test']:.3f}"])
        print(rows[-1], flush=True)
    print(f"\nmachine: {machine()}; parameters matched to a {args.hidden}-unit LSTM ({target:,})")
    print_table(["cell", "hidden", "steps", "seconds", "val accuracy", "test accuracy"], rows)
    ratios = [[c, f"{h[0] / h[-1]:.1e}", f"{x[0] / x[-1]:.1e}"] for c, (h, x) in curves.items()]
    print("\ngradient reaching the first pixel relative to the last, at initialisation:")
    print_table(["cell", "||dL/dh_1|| / ||dL/dh_784||", "||dL/dx_1|| / ||dL/dx_784||"], ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["adding", "mnist"])
    parser.add_argument("--cells", nargs="+", default=CELLS)
    parser.add_argument("--lengths", nargs="+", type=int, default=[50, 100, 200, 500, 1000])
    parser.add_argument("--hidden", type=int, default=32, help="LSTM hidden size that sets the parameter budget")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument("--max-seconds", type=float, default=90)
    parser.add_argument("--plot-length", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=HERE / "runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if math.isnan(args.lr) or args.lr <= 0:
        parser.error("--lr must be positive")
    (run_adding if args.task == "adding" else run_mnist)(args)


if __name__ == "__main__":
    main()
