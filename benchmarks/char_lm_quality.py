"""Summarise tiny-shakespeare char-LM runs: the validation curve and the best nats/char and bits/char.

Train first, e.g. (30 minutes on this machine):

    rnnzoo fit --config recipes/language_model/tiny_shakespeare-lstm.yaml --data.dataset ../shared/data/tiny_shakespeare

then point this script at the run folders that ``fit`` wrote:

    python benchmarks/char_lm_quality.py runs/tiny_shakespeare-lstm/version_0 runs/tiny_shakespeare-gru/version_0
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from common import print_table


def validation_curve(run: Path) -> list[tuple[int, float]]:
    with open(run / "metrics.csv") as file:
        return [(int(row["step"]) + 1, float(row["val_loss"])) for row in csv.DictReader(file) if row.get("val_loss")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding metrics.csv")
    args = parser.parse_args()
    summary = []
    for run in args.runs:
        curve = validation_curve(run)
        print(f"\n{run}: validation nats/char by step")
        print_table(
            ["step", "val nats/char", "val bits/char"], [[s, f"{v:.4f}", f"{v / math.log(2):.4f}"] for s, v in curve]
        )
        step, best = min(curve, key=lambda point: point[1])
        summary.append([run, step, f"{best:.4f}", f"{best / math.log(2):.4f}"])
    print("\nbest validation loss per run")
    print_table(["run", "step", "val nats/char", "val bits/char"], summary)


if __name__ == "__main__":
    main()
