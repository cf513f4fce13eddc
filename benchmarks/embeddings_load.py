"""Loading GloVe 6B 50d (400,000 words): rnnzoo.embeddings.load_vectors vs a naive per-line Python parse.

The variants take turns, ``--repeats`` times, so the machine's noise hits them alike; the table shows
the median and every run. The gzipped variant reads a copy compressed once into a temporary folder:

    python benchmarks/embeddings_load.py --repeats 5
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import machine, print_table, shared_dataset

from rnnzoo.embeddings import load_vectors


def naive_load(path: Path) -> tuple[list[str], torch.Tensor]:
    """The usual few lines: split each line, ``float()`` each field, one tensor at the end."""
    words, rows = [], []
    with path.open(encoding="utf-8") as file:
        for line in file:
            word, *values = line.rstrip().split(" ")
            words.append(word)
            rows.append([float(value) for value in values])
    return words, torch.tensor(rows, dtype=torch.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive_repeats", type=int, default=3, help="runs of the (slow) naive parse")
    parser.add_argument("--no_gzip", action="store_true", help="skip the gzipped variant")
    args = parser.parse_args()
    path = Path(shared_dataset("glove_6b_50d")) / "glove.6B.50d.txt"
    with tempfile.TemporaryDirectory() as folder:
        variants = {
            "load_vectors(.txt)": lambda: load_vectors(path),
            "load_vectors(.txt, max_words=100_000)": lambda: load_vectors(path, max_words=100_000),
        }
        if not args.no_gzip:
            gzipped = Path(folder) / "glove.6B.50d.txt.gz"
            with path.open("rb") as source, gzip.open(gzipped, "wb", compresslevel=6) as target:
                shutil.copyfileobj(source, target)
            variants["load_vectors(.txt.gz)"] = lambda: load_vectors(gzipped)
        variants["naive per-line Python parse (.txt)"] = lambda: naive_load(path)
        reference = load_vectors(path)
        words, matrix = naive_load(path)
        assert reference.words == words and torch.equal(reference.vectors, matrix), "the two parses differ"
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for repeat in range(args.repeats):
            for name, run in variants.items():
                if name.startswith("naive") and repeat >= args.naive_repeats:
                    continue
                start = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - start)
    print(machine())
    print(f"{path}: {len(reference):,} words x {reference.dim}, {path.stat().st_size / 1e6:.0f} MB\n")
    fast = statistics.median(seconds["load_vectors(.txt)"])
    rows = []
    for name, values in seconds.items():
        median = statistics.median(values)
        runs = ", ".join(f"{value:.2f}" for value in values)
        rows.append([name, f"{median:.2f}", runs, f"{median / fast:.2f}x"])
    print_table(["reader", "median s", "runs (s)", "vs load_vectors(.txt)"], rows)


if __name__ == "__main__":
    main()
