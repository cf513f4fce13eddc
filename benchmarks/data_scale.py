"""A character-level corpus larger than memory: the language model's memory-mapped token cache at scale.

Generates a corpus of ``--size`` (lines of tiny Shakespeare's training split, shuffled anew for every
copy; one line a row), then measures, each in a fresh process: loading it into the datasets cache;
the character-vocabulary pass and the tokenization into the token cache, with one and two
processes (MB/s of text); the token file's size; the start-up of a second run, which finds the
cache; peak resident memory while training the char-LM recipe's model (2x512 LSTM, batch 64 x 128,
bf16) from the memory-mapped file; and training tokens/s from the memory map vs from an int64
tensor in memory, the two taking turns in one process. Everything is written under ``--folder``:

    OMP_NUM_THREADS=1 python benchmarks/data_scale.py --size 2GB --folder /tmp/rnnzoo_data_scale

The corpus is kept for later runs; the token caches are rebuilt every run, so that the first one misses.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from common import machine, print_table, shared_dataset, timed_fit
from lightning import LightningDataModule

from rnnzoo import LanguageModel, LanguageModelDataModule
from rnnzoo.data import ContiguousChunks
from rnnzoo.data.batching import ResumableLoader

RECIPE = {"cell": "lstm", "hidden_size": 512, "num_layers": 2, "dropout": 0.4}
"""recipes/language_model/tiny_shakespeare-lstm.yaml's model (AdamW 2e-3, bf16-mixed, batch 64 x 128)."""
BATCH, STEPS_PER_CHUNK, PRECISION = 64, 128, "bf16-mixed"
UNITS = {"KB": 1e3, "MB": 1e6, "GB": 1e9}


def size_in_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]B)", text.strip().upper())
    if match is None:
        raise argparse.ArgumentTypeError(f"a size such as 50MB or 2GB, got {text!r}")
    return int(float(match[1]) * UNITS[match[2]])


class MemorySampler(threading.Thread):
    """Peak resident memory of this process: ``ru_maxrss``, and its anonymous and file-backed parts, sampled.

    A memory-mapped file's pages that a process has read count in its RSS, although they are the
    page cache's (clean, shared, dropped under memory pressure): ``datasets`` maps its Arrow copy of
    the corpus so, and ru_maxrss alone would not tell that memory from the process's own.
    """

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peaks = {"RssAnon": 0, "RssFile": 0}

    def run(self) -> None:
        while True:
            with open("/proc/self/status") as status:  # Linux
                fields = dict(line.split(":", 1) for line in status)
            for name in self.peaks:
                self.peaks[name] = max(self.peaks[name], int(fields[name].split()[0]))  # KiB
            time.sleep(self.interval)

    def report(self) -> dict[str, float]:
        return {
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,  # Linux reports KiB
            "peak_anonymous_gb": self.peaks["RssAnon"] * 1024 / 1e9,
            "peak_file_backed_gb": self.peaks["RssFile"] * 1024 / 1e9,
        }


def memory(result: dict) -> str:
    return (
        f"{result['peak_rss_gb']:.2f} GB (sampled peaks: anonymous {result['peak_anonymous_gb']:.2f} GB, "
        f"file-backed {result['peak_file_backed_gb']:.2f} GB)"
    )


def generate_corpus(folder: Path, size: int, seed: int = 0) -> Path:
    """``folder/corpus-<size>/{train,validation}.txt``, kept for later runs."""
    corpus = folder / f"corpus-{size}"
    train = corpus / "train.txt"
    if train.is_file() and train.stat().st_size >= size:
        return corpus
    source = Path(shared_dataset("tiny_shakespeare"))
    lines = (source / "train.txt").read_text(encoding="utf-8").split("\n")
    corpus.mkdir(parents=True, exist_ok=True)
    rng, written = np.random.default_rng(seed), 0
    with (corpus / "train.tmp").open("w", encoding="utf-8") as file:
        while written < size:
            piece = "\n".join(lines[index] for index in rng.permutation(len(lines))) + "\n"
            file.write(piece)
            written += len(piece.encode("utf-8"))
    (corpus / "train.tmp").replace(train)
    shutil.copy(source / "validation.txt", corpus / "validation.txt")
    return corpus


def data_module(corpus: Path, cache: Path, num_proc: int | None = None) -> LanguageModelDataModule:
    return LanguageModelDataModule(
        str(corpus),
        batch_size=BATCH,
        tbptt_steps=STEPS_PER_CHUNK,
        token_cache=True,
        cache_dir=str(cache),
        num_proc=num_proc,
    )


def recipe_model(vocab_size: int) -> LanguageModel:
    torch.manual_seed(0)
    model = LanguageModel(vocab_size, **RECIPE)
    model.optimizer_factory = lambda params: torch.optim.AdamW(params, lr=2e-3, weight_decay=0.1)
    return model


class StreamData(LightningDataModule):
    """The smallest data module: the training chunks of one token stream (memory-mapped or in memory)."""

    def __init__(self, tokens: torch.Tensor, tokenizer) -> None:
        super().__init__()
        self.tokens, self.tokenizer = tokens, tokenizer

    def train_dataloader(self) -> ResumableLoader:
        return ResumableLoader(ContiguousChunks(self.tokens, BATCH, STEPS_PER_CHUNK), batch_size=None)


def child(args: argparse.Namespace) -> dict:
    """One measurement, in this (fresh) process."""
    torch.set_num_threads(1)
    sampler = MemorySampler()
    sampler.start()
    corpus, cache = Path(args.corpus), Path(args.cache)
    if args.child == "load":
        from datasets import load_dataset

        start = time.perf_counter()
        splits = load_dataset(str(corpus))
        return {"seconds": time.perf_counter() - start, "rows": len(splits["train"])}
    data = data_module(corpus, cache, args.num_proc)
    if args.child == "tokenize":
        start = time.perf_counter()
        data.splits  # noqa: B018 - the datasets cache, loaded already: not part of the tokenizing time
        loaded = time.perf_counter()
        tokenizer = data.tokenizer
        vocabulary = time.perf_counter()
        tokens = data.encoded_split("train")
        done = time.perf_counter()
        return {
            "load": loaded - start,
            "vocabulary": vocabulary - loaded,
            "tokenize": done - vocabulary,
            "vocab_size": len(tokenizer),
            "tokens": len(tokens),
            "dtype": str(tokens.dtype),
            **sampler.report(),
        }
    if args.child == "start":
        start = time.perf_counter()
        data.setup("fit")
        return {"setup": time.perf_counter() - start, **sampler.report()}
    if args.child == "in_memory":
        data = LanguageModelDataModule(str(corpus), batch_size=BATCH, tbptt_steps=STEPS_PER_CHUNK)
        start = time.perf_counter()
        data.setup("fit")
        return {"setup": time.perf_counter() - start, **sampler.report()}
    if args.child == "train":
        seconds = timed_fit(recipe_model(data.vocab_size), data, args.train_steps, 0, PRECISION)
        return {"tokens_per_second": args.train_steps * BATCH * STEPS_PER_CHUNK / seconds, **sampler.report()}
    if args.child == "speed":
        data.setup("fit")
        mapped = data.streams["train"]
        chunks = (args.warmup + args.steps + 2) * STEPS_PER_CHUNK
        variants = {
            "memory-mapped uint16 file": StreamData(mapped, data.tokenizer),
            # The same layout of rows, as long as the timed steps need, as today's in-memory int64 stream.
            "int64 tensor in memory": StreamData(mapped[: BATCH * chunks].long(), data.tokenizer),
        }
        speeds: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, stream in variants.items():
                seconds = timed_fit(recipe_model(data.vocab_size), stream, args.steps, args.warmup, PRECISION)
                speeds[name].append(args.steps * BATCH * STEPS_PER_CHUNK / seconds)
        return {"speeds": speeds}
    raise ValueError(f"unknown measurement {args.child!r}")


def run_child(args: argparse.Namespace, what: str, corpus: Path, cache: Path, num_proc: int | None = None) -> dict:
    command = [sys.executable, __file__, "--child", what, "--corpus", str(corpus), "--cache", str(cache)]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--repeats", str(args.repeats)]
    command += ["--train_steps", str(args.train_steps)]
    if num_proc is not None:
        command += ["--num_proc", str(num_proc)]
    environment = {
        **os.environ,
        "HF_DATASETS_CACHE": str(Path(args.folder) / "hf_cache"),  # the Arrow copy of the corpus stays in --folder
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    start = time.perf_counter()
    finished = subprocess.run(command, env=environment, capture_output=True, text=True)
    if finished.returncode:
        sys.exit(f"{what} failed:\n{finished.stderr[-4000:]}")
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - start
    print(f"  {what}{'' if num_proc is None else f' ({num_proc} processes)'}: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=size_in_bytes, default="2GB", help="corpus size, e.g. 50MB or 2GB")
    parser.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "rnnzoo_data_scale"))
    parser.add_argument("--train_steps", type=int, default=30, help="training steps of the memory run")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps of each speed run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before each speed run")
    parser.add_argument(
        "--in_memory_limit", type=size_in_bytes, default="256MB", help="largest corpus set up in memory"
    )
    parser.add_argument("--repeats", type=int, default=3, help="speed runs of each variant, taking turns")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--num_proc", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return

    folder = Path(args.folder)
    start = time.perf_counter()
    corpus = generate_corpus(folder, args.size)
    megabytes = (corpus / "train.txt").stat().st_size / 1e6
    print(f"corpus {corpus / 'train.txt'}: {megabytes:,.0f} MB ({time.perf_counter() - start:.0f} s)", flush=True)
    caches = {processes: folder / f"tokens-{processes}" for processes in (1, 2)}
    for cache in caches.values():
        shutil.rmtree(cache, ignore_errors=True)  # every run tokenizes afresh
    load = run_child(args, "load", corpus, caches[1])
    tokenized = {
        processes: run_child(args, "tokenize", corpus, cache, processes) for processes, cache in caches.items()
    }
    start_up = run_child(args, "start", corpus, caches[1])
    train = run_child(args, "train", corpus, caches[1])
    speed = run_child(args, "speed", corpus, caches[1])["speeds"]
    in_memory = run_child(args, "in_memory", corpus, caches[1]) if args.size <= args.in_memory_limit else None

    print(f"\n{machine()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, Python {sys.version.split()[0]}")
    first = tokenized[1]
    token_file = max(caches[1].glob("*.tokens.npy"), key=lambda path: path.stat().st_size)  # the training split's
    rows = [
        ["corpus (train split)", f"{megabytes:,.0f} MB, {load['rows']:,} rows, {first['vocab_size']} characters"],
        ["loading it into the datasets cache (Arrow; about 0 when an earlier run did)", f"{load['seconds']:.0f} s"],
    ]
    for processes, result in tokenized.items():
        rows.append(
            [
                f"character vocabulary, streamed ({processes}-process run)",
                f"{result['vocabulary']:.1f} s, {megabytes / result['vocabulary']:.0f} MB/s",
            ]
        )
    for processes, result in tokenized.items():
        rows.append(
            [
                f"tokenizing into the token file, {processes} process{'es' if processes > 1 else ''}",
                f"{result['tokenize']:.1f} s, {megabytes / result['tokenize']:.0f} MB/s, peak RSS {memory(result)}",
            ]
        )
    rows += [
        ["token file", f"{token_file.stat().st_size / 1e9:.2f} GB ({first['tokens']:,} tokens, {first['dtype']})"],
        [
            "second run (cache hit): data module to setup('fit') done",
            f"{start_up['setup']:.2f} s ({start_up['wall']:.1f} s from process start to exit), "
            f"peak RSS {memory(start_up)}",
        ],
        [
            f"peak RSS, training {args.train_steps} steps from the memory map (fresh process)",
            f"{memory(train)}, {train['tokens_per_second']:,.0f} tokens/s",
        ],
        [
            "peak RSS, setup('fit') in memory, without the token cache (fresh process)",
            "not run (over --in_memory_limit)"
            if in_memory is None
            else f"{memory(in_memory)}, setup {in_memory['setup']:.1f} s",
        ],
    ]
    print_table(["measure", "value"], rows)
    print()
    reference = statistics.median(speed["int64 tensor in memory"])
    print_table(
        ["training stream", "median tokens/s", "runs", "vs in memory"],
        [
            [
                name,
                f"{statistics.median(values):,.0f}",
                ", ".join(f"{value:,.0f}" for value in values),
                f"{statistics.median(values) / reference:.3f}x",
            ]
            for name, values in speed.items()
        ],
    )


if __name__ == "__main__":
    main()
