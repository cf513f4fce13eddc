"""Inference speed and metric change: eager float32, eager int8, ONNX float32 and ONNX int8, side by side.

python benchmarks/inference.py            (one thread; about a minute and a half on a quiet machine)

Four workloads, each run by the same ``predict`` call of the four predictors: SST-2 sentiment
(``sst2-gru_small``, sentences/s and test accuracy), UD English-EWT UPOS tagging
(``ud_en_ewt_upos-lstm_small``, tokens/s and token accuracy), tiny-shakespeare character sampling
(``tiny_shakespeare-lstm_small``, generated tokens/s and test bits per character, read through
``step``) and beam-5 translation of Multi30k test sources (``multi30k_de_en-gru_small``, sentences/s
and BLEU on those sentences). Then the start-up of an
inference command: ``--help``, and a whole ``classify`` call.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sacrebleu
import torch
from common import machine, print_table, shared_dataset

from rnnzoo import RNNTask, Seq2Seq
from rnnzoo.export import OnnxModel, export_onnx
from rnnzoo.export.quantize import quantize_int8

KINDS = ("eager fp32", "eager int8", "ONNX fp32", "ONNX int8")


def predictors(task: RNNTask, scratch: Path) -> dict[str, RNNTask]:
    """The four versions of ``task``, each a task whose ``predict`` runs it."""
    return {
        "eager fp32": task,
        "eager int8": quantize_int8(task),
        "ONNX fp32": OnnxModel(export_onnx(task, scratch / "fp32"), threads=1).task,
        "ONNX int8": OnnxModel(export_onnx(task, scratch / "int8", quantize="int8"), threads=1).task,
    }


def timed(function, repeats: int = 2) -> tuple[float, object]:
    """The best wall time of ``repeats`` calls, and the last result."""
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def batched(task: RNNTask, inputs: list, batch_size: int, **options) -> list[dict]:
    return [
        out
        for first in range(0, len(inputs), batch_size)
        for out in task.predict(inputs[first : first + batch_size], **options)
    ]


def read_jsonl(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def classification(scratch: Path, count: int) -> list[list]:
    rows = read_jsonl(f"{shared_dataset('sst2')}/test.jsonl")[:count]
    texts, labels = [r["sentence"] for r in rows], [r["label"] for r in rows]
    results = []
    for kind, task in predictors(RNNTask.from_pretrained("sst2-gru_small"), scratch / "sst2").items():
        seconds, outputs = timed(lambda task=task: batched(task, texts, 32))
        accuracy = sum(o["label"] == y for o, y in zip(outputs, labels, strict=True)) / len(labels)
        results.append([kind, len(texts) / seconds, f"accuracy {100 * accuracy:.2f}"])
    return results


def tagging(scratch: Path, count: int) -> list[list]:
    rows = read_jsonl(f"{shared_dataset('ud_en_ewt')}/test.jsonl")[:count]
    sentences, tags = [r["tokens"] for r in rows], [r["upos"] for r in rows]
    tokens = sum(len(s) for s in sentences)
    results = []
    for kind, task in predictors(RNNTask.from_pretrained("ud_en_ewt_upos-lstm_small"), scratch / "upos").items():
        seconds, outputs = timed(lambda task=task: batched(task, sentences, 32))
        right = sum(p == t for o, gold in zip(outputs, tags, strict=True) for p, t in zip(o["tags"], gold, strict=True))
        results.append([kind, tokens / seconds, f"token accuracy {100 * right / tokens:.2f}"])
    return results


def bits_per_character(task: RNNTask, text: str, rows: int, steps: int) -> float:
    """Test bits per character, reading ``rows`` streams of ``steps`` characters through ``step`` (as sampling does)."""
    ids = task.tokenizer.encode(text[: rows * (steps + 1)]).view(rows, steps + 1)
    with task.inference():
        logits, state = task.encode(ids[:, :1], torch.ones(rows, dtype=torch.long))
        total = 0.0
        for position in range(1, steps + 1):
            total += float(torch.nn.functional.cross_entropy(logits.float(), ids[:, position], reduction="sum"))
            if position < steps:
                logits, state = task.step(ids[:, position], state)
    return total / (rows * steps) / math.log(2)


def sampling(scratch: Path, new_tokens: int) -> list[list]:
    text = Path(f"{shared_dataset('tiny_shakespeare')}/test.txt").read_text(encoding="utf-8")
    prompts = ["ROMEO:", "JULIET:", "First Citizen:", "KING HENRY:", "All:", "GLOUCESTER:", "O", "\n"]
    options = {"temperature": 1.0, "max_length": new_tokens, "seed": 0}
    results = []
    for kind, task in predictors(RNNTask.from_pretrained("tiny_shakespeare-lstm_small"), scratch / "lm").items():
        seconds, _ = timed(lambda task=task: task.predict(prompts, **options))
        bpc = bits_per_character(task, text, rows=16, steps=250)
        results.append([kind, len(prompts) * new_tokens / seconds, f"test bpc {bpc:.4f} (4,000 chars)"])
    return results


def translation(scratch: Path, count: int) -> list[list]:
    rows = read_jsonl(f"{shared_dataset('multi30k')}/test.jsonl")[:count]
    sources, references = [r["de"] for r in rows], [r["en"] for r in rows]
    task = RNNTask.from_pretrained("multi30k_de_en-gru_small")
    results = []
    for kind, predictor in predictors(task, scratch / "mt").items():
        seconds, outputs = timed(lambda p=predictor: batched(p, sources, 50, beam_size=5), repeats=1)
        hypotheses = [output["translation"] for output in outputs]
        results.append([kind, len(sources) / seconds, f"BLEU {bleu(task, hypotheses, references):.2f}"])
    return results


def bleu(task: Seq2Seq, hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU as ``translation_quality.py`` computes it (word tokens, lowercased, ``tokenize="none"``)."""
    pairs = [task.bleu_forms(task.tokenizer.target.encode(h), r) for h, r in zip(hypotheses, references, strict=True)]
    return sacrebleu.corpus_bleu([h for h, _ in pairs], [[r for _, r in pairs]], tokenize="none", force=True).score


def wall_time(command: list[str], repeats: int = 3) -> float:
    """Median wall seconds of a command run afresh (a new interpreter each time)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def start_up() -> list[list]:
    cli = [sys.executable, "-m", "rnnzoo.cli", "classify"]
    run = [*cli, "--model", "sst2-gru_small", "--text", "a gripping, funny film"]
    imports = [sys.executable, "-c", "import torch"]
    return [
        ["rnnzoo classify --help", wall_time([*cli, "--help"])],
        ["rnnzoo classify --model sst2-gru_small --text ...", wall_time(run)],
        ["python -c 'import torch' (its floor)", wall_time(imports)],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=256, help="SST-2 test sentences classified")
    parser.add_argument("--tag_sentences", type=int, default=256, help="UD EWT test sentences tagged")
    parser.add_argument("--new_tokens", type=int, default=100, help="characters sampled per prompt (8 prompts)")
    parser.add_argument("--translations", type=int, default=200, help="Multi30k test sources translated, beam 5")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine())
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        workloads = {
            "classification (sentences/s)": lambda: classification(scratch, args.sentences),
            "tagging (tokens/s)": lambda: tagging(scratch, args.tag_sentences),
            "char-LM sampling (tokens/s)": lambda: sampling(scratch, args.new_tokens),
            "beam-5 translation (sentences/s)": lambda: translation(scratch, args.translations),
        }
        for title, workload in workloads.items():
            rows = workload()
            base = rows[0][1]
            print(f"\n{title}")
            print_table(["runtime", "throughput", "vs eager fp32", "metric"],
                        [[k, f"{v:.1f}", f"{v / base:.2f}x", m] for k, v, m in rows])  # fmt: skip
    print("\nstart-up (median of 3, seconds)")
    print_table(["command", "seconds"], [[name, f"{seconds:.2f}"] for name, seconds in start_up()])


if __name__ == "__main__":
    main()
