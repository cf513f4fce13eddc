"""Summarise tagger runs: the validation curve per epoch and the test figures of `rnnzoo test`.

Train and test first, e.g. (25 minutes on this machine, one thread):

    OMP_NUM_THREADS=1 rnnzoo fit --config recipes/tagging/ud_en_ewt_upos-lstm.yaml \
        --data.dataset ../shared/data/ud_en_ewt --data.name null --data.revision null
    OMP_NUM_THREADS=1 rnnzoo test --config recipes/tagging/ud_en_ewt_upos-lstm.yaml \
        --data.dataset ../shared/data/ud_en_ewt --data.name null --data.revision null \
        --ckpt_path runs/ud_en_ewt_upos-lstm/version_0/checkpoints/epoch=...ckpt

then point this script at the folders that ``fit`` and ``test`` wrote:

    python benchmarks/tagging_quality.py runs/ud_en_ewt_upos-lstm/version_0 runs/ud_en_ewt_upos-lstm/version_1
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from common import print_table

METRICS = ("acc", "precision", "recall", "f1")


def rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as file:
        return list(csv.DictReader(file))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding metrics.csv")
    args = parser.parse_args()
    for run in args.runs:
        records = rows(run)
        for stage in ("val", "test"):
            found = [r for r in records if r.get(f"{stage}_acc")]
            if not found:
                continue
            names = [m for m in METRICS if found[0].get(f"{stage}_{m}")]
            print(f"\n{run}: {stage}")
            print_table(
                ["epoch", "step", f"{stage}_loss", *(f"{stage}_{m} %" for m in names)],
                [
                    [r["epoch"], r["step"], f"{float(r[f'{stage}_loss']):.4f}"]
                    + [f"{100 * float(r[f'{stage}_{m}']):.2f}" for m in names]
                    for r in found
                ],
            )


if __name__ == "__main__":
    main()
