"""Training tokens/s: rnnzoo's LanguageModel under a Lightning Trainer vs a hand-written PyTorch loop.

Same model (embedding, 2-layer LSTM, dropout, linear head), same batches (the data
module's contiguous TBPTT chunks), same optimizer, clipping and precision; the two
run alternately in one process so machine noise hits both.

    python benchmarks/framework_overhead.py --steps 40 --repeats 3

On a busy machine, ``--threads 1 --clock cpu`` times each loop by the CPU time of
its one thread: time spent waiting for a core taken by other work is not counted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
from common import machine, print_table, shared_dataset, timed_fit
from torch import nn
from torch.nn import functional as F

from rnnzoo import LanguageModel, LanguageModelDataModule

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class HandWrittenLM(nn.Module):
    def __init__(self, vocab_size: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden)
        self.lstm = nn.LSTM(hidden, hidden, layers, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, tokens, state=None):
        outputs, state = self.lstm(self.dropout(self.embedding(tokens)), state)
        return self.head(self.dropout(outputs)), state


def hand_written_seconds(datamodule, args) -> float:
    torch.manual_seed(0)
    model = HandWrittenLM(datamodule.vocab_size, args.hidden, args.layers, 0.2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16-mixed" else nullcontext()
    state, start, clock = None, 0.0, CLOCKS[args.clock]
    batches = iter(datamodule.train_dataloader())
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            start = clock()
        inputs, targets = next(batches)
        with autocast:
            logits, state = model(inputs, state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return clock() - start


def rnnzoo_seconds(datamodule, args) -> float:
    torch.manual_seed(0)
    model = LanguageModel(datamodule.vocab_size, "lstm", args.hidden, args.layers, dropout=0.2)
    model.optimizer_factory = lambda params: torch.optim.AdamW(params, lr=2e-3)
    return timed_fit(model, datamodule, args.steps, args.warmup, args.precision, CLOCKS[args.clock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tbptt", type=int, default=128)
    parser.add_argument("--precision", default="bf16-mixed", choices=["32", "bf16-mixed"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS), help="cpu: this process's CPU time")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = LanguageModelDataModule(shared_dataset("tiny_shakespeare"), batch_size=args.batch, tbptt_steps=args.tbptt)
    data.setup("fit")
    tokens = args.steps * args.batch * args.tbptt
    results = {"hand-written loop": [], "rnnzoo + Lightning": []}
    for _ in range(args.repeats):
        results["hand-written loop"].append(tokens / hand_written_seconds(data, args))
        results["rnnzoo + Lightning"].append(tokens / rnnzoo_seconds(data, args))
    baseline = statistics.median(results["hand-written loop"])
    print(f"machine: {machine()}")
    print(
        f"model: {args.layers}x{args.hidden} LSTM char-LM, batch {args.batch} x {args.tbptt}, "
        f"precision {args.precision}, {args.steps} timed steps after {args.warmup}, {args.repeats} alternating runs, "
        f"{args.clock} clock"
    )
    rows = [
        [
            name,
            f"{statistics.median(values):,.0f}",
            ", ".join(f"{v:,.0f}" for v in values),
            f"{statistics.median(values) / baseline:.3f}x",
        ]
        for name, values in results.items()
    ]
    print_table(["loop", "median tokens/s", "runs", "vs hand-written"], rows)
    paired = [z / h for h, z in zip(results["hand-written loop"], results["rnnzoo + Lightning"], strict=True)]
    print(
        f"\npaired ratios (each rnnzoo run / the hand-written run just before it): "
        f"{', '.join(f'{r:.3f}' for r in paired)}; median {statistics.median(paired):.3f}x"
    )


if __name__ == "__main__":
    main()
