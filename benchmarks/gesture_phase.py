"""Gesture phase frame tagging: the majority-class baselines and the per-frame accuracy of every recipe's runs.

Train and test each recipe first (one thread; the recipes name the local folder, so run from the
repository root):

    OMP_NUM_THREADS=1 rnnzoo fit --config recipes/tagging/gesture_phase-lstm.yaml
    OMP_NUM_THREADS=1 rnnzoo test --config recipes/tagging/gesture_phase-lstm.yaml \\
        --ckpt_path runs/gesture_phase-lstm/version_0/checkpoints/epoch=...ckpt \\
        --trainer.logger.init_args.name gesture_phase-lstm-test

then summarise every ``runs/gesture_phase-*`` folder (the latest version of each):

    python benchmarks/gesture_phase.py --runs runs
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import torch
from common import print_table, shared_dataset
from datasets import load_dataset

CONFIGS = ("ltc_windows", "videos")


def baselines() -> None:
    """Per-frame accuracy of always predicting the training majority phase (and, as a bound, each split's own)."""
    rows = []
    for config in CONFIGS:
        splits = load_dataset(shared_dataset("gesture_phase"), config)
        counts = {split: Counter(tag for row in splits[split]["labels"] for tag in row) for split in splits}
        majority = counts["train"].most_common(1)[0][0]
        for split in ("validation", "test"):
            total = sum(counts[split].values())
            best, best_count = counts[split].most_common(1)[0]
            rows.append(
                [config, split, f"{total:,}", majority, f"{100 * counts[split][majority] / total:.2f}",
                 f"{best} {100 * best_count / total:.2f}"]
            )  # fmt: skip
    print_table(["config", "split", "frames", "train majority", "its accuracy %", "best constant %"], rows)


def latest(folder: Path) -> Path | None:
    """The newest ``version_N`` folder of a logger run, or None."""
    versions = sorted(folder.glob("version_*"), key=lambda path: int(path.name.split("_")[1]))
    return versions[-1] if versions else None


def records(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as file:
        return list(csv.DictReader(file))


def summary(runs: Path) -> None:
    """Best validation accuracy (and its epoch), the test accuracy of that checkpoint and the parameters of each run."""
    rows = []
    for folder in sorted(runs.glob("gesture_phase-*")):
        if folder.name.endswith("-test") or (fit := latest(folder)) is None:
            continue
        val = [r for r in records(fit) if r.get("val_acc")]
        best = max(val, key=lambda r: float(r["val_acc"]))
        test_run = latest(runs / f"{folder.name}-test")
        tests = [r for r in records(test_run) if r.get("test_acc")] if test_run else []
        checkpoint = next(iter(sorted((fit / "checkpoints").glob("epoch=*.ckpt"))), None)
        weights = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"] if checkpoint else {}
        parameters = sum(tensor.numel() for name, tensor in weights.items() if not name.startswith("metrics"))
        rows.append(
            [folder.name, f"{parameters:,}", f"{100 * float(best['val_acc']):.2f} ({best['epoch']})",
             f"{100 * float(tests[-1]['test_acc']):.2f}" if tests else "not tested", len(val)]
        )  # fmt: skip
    print_table(["run", "parameters", "best val acc % (epoch)", "test acc %", "epochs validated"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=None, help="the folder holding the runs (e.g. runs)")
    args = parser.parse_args()
    baselines()
    if args.runs is not None:
        print()
        summary(args.runs)


if __name__ == "__main__":
    main()
