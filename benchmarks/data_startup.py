"""Start-up of a data module's ``setup("fit")`` on real data: every run, the first run, and a second run.

For SST-2 (classification), UD English-EWT (tagging) and Multi30k (translation), each in a fresh
process with an empty datasets cache of its own: ``setup("fit")`` with ``cache: false`` (training
the tokenizer and encoding every split, what every run did before the cache), the first run with
``cache: true`` (the same, plus writing the ``Dataset.map`` cache files and the tokenizer), then a
second run, which reads them. The datasets' own Arrow conversion happens before the timing, in a
process of its own, and the import of rnnzoo is not counted (see ``inference.py`` for that)::

    python benchmarks/data_startup.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, print_table, shared_dataset

DATA = {
    "SST-2 (classification, 67k rows)": (
        "ClassificationDataModule",
        {"dataset": "sst2", "text_column": "sentence", "test_split": "test", "min_freq": 2},
    ),
    "UD-EWT (tagging, 12.5k rows)": (
        "TaggingDataModule",
        {"dataset": "ud_en_ewt", "tokens_column": "tokens", "tags_column": "upos"},
    ),
    "Multi30k (translation, 29k pairs)": ("TranslationDataModule", {"dataset": "multi30k"}),
}


def child(module: str, options: dict) -> dict:
    """Time ``setup("fit")`` of one data module in this process (the datasets' own loading excluded)."""
    import rnnzoo

    data = getattr(rnnzoo, module)(**options)
    data.splits  # noqa: B018 - load_dataset's own work, before the clock starts
    start = time.perf_counter()
    data.setup("fit")
    return {"seconds": time.perf_counter() - start}


def run(module: str, options: dict, cache: Path) -> float:
    environment = {**os.environ, "HF_DATASETS_CACHE": str(cache), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, __file__, "--child", json.dumps([module, options])]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each, taking turns (medians shown)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return
    print(f"machine: {machine()}")
    rows = []
    for name, (module, options) in DATA.items():
        options = {**options, "dataset": shared_dataset(options["dataset"])}
        times: dict[str, list[float]] = {"every run (cache: false)": [], "first run": [], "second run": []}
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as folder:
                cache = Path(folder)
                run(module, {**options, "cache": False}, cache)  # the datasets' Arrow copy, untimed
                times["every run (cache: false)"].append(run(module, {**options, "cache": False}, cache))
                times["first run"].append(run(module, options, cache))
                times["second run"].append(run(module, options, cache))
        medians = {what: statistics.median(values) for what, values in times.items()}
        rows.append(
            [
                name,
                *(f"{seconds:.2f} s" for seconds in medians.values()),
                f"{medians['every run (cache: false)'] / medians['second run']:.1f}x",
            ]
        )
    print_table(["data", "every run (cache: false)", "first run", "second run", "second vs every"], rows)


if __name__ == "__main__":
    main()
