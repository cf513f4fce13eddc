"""Training tokens/s: rnnzoo's LanguageModel under a Lightning Trainer vs a hand-written PyTorch loop.

Same model (embedding, 2-layer LSTM, dropout, linear head), same batches (the data
module's contiguous TBPTT chunks), same optimizer, clipping and precision; the two
run alternately in one process so machine noise hits both.

    python benchmarks/framework_overhead.py --steps 40 --repeats 3

On a busy machine, ``--threads 1 --clock cpu`` times each loop by the CPU time of
its one thread (time spent waiting for a core taken by other work is not counted),
and ``--interleave`` runs one hand-written step after each Lightning step, timed
apart, so both loops meet the same moments of noise.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
from common import machine, print_table, shared_dataset, timed_fit
from lightning import Callback
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


class HandWrittenLoop:
    """The hand-written training loop, one step per call."""

    def __init__(self, datamodule, args) -> None:
        torch.manual_seed(0)
        self.model = HandWrittenLM(datamodule.vocab_size, args.hidden, args.layers, 0.2)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=2e-3)
        bf16 = args.precision == "bf16-mixed"
        self.autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        self.state = None
        self.batches = iter(datamodule.train_dataloader())

    def step(self) -> None:
        inputs, targets = next(self.batches)
        with self.autocast:
            logits, state = self.model(inputs, self.state)
        self.state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()


def hand_written_seconds(datamodule, args) -> float:
    loop, start, clock = HandWrittenLoop(datamodule, args), 0.0, CLOCKS[args.clock]
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            start = clock()
        loop.step()
    return clock() - start


def rnnzoo_model(datamodule, args) -> LanguageModel:
    torch.manual_seed(0)
    model = LanguageModel(datamodule.vocab_size, "lstm", args.hidden, args.layers, dropout=0.2)
    model.optimizer_factory = lambda params: torch.optim.AdamW(params, lr=2e-3)
    return model


def rnnzoo_seconds(datamodule, args) -> float:
    return timed_fit(
        rnnzoo_model(datamodule, args), datamodule, args.steps, args.warmup, args.precision, CLOCKS[args.clock]
    )


class HandWrittenStepAfterEach(Callback):
    """Runs one hand-written step after each Lightning step and times it apart (``--interleave``)."""

    def __init__(self, loop: HandWrittenLoop, warmup: int, clock) -> None:
        self.loop, self.warmup, self.clock = loop, warmup, clock
        self.seconds = 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        start = self.clock()
        self.loop.step()
        if trainer.global_step > self.warmup:  # a timed step of both loops
            self.seconds += self.clock() - start


def interleaved_seconds(datamodule, args) -> tuple[float, float]:
    """Seconds of the timed steps of both loops, run step by step in turn: ``(hand-written, rnnzoo)``."""
    hand = HandWrittenStepAfterEach(HandWrittenLoop(datamodule, args), args.warmup, CLOCKS[args.clock])
    model = rnnzoo_model(datamodule, args)
    total = timed_fit(model, datamodule, args.steps, args.warmup, args.precision, CLOCKS[args.clock], [hand])
    return hand.seconds, total - hand.seconds


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
    parser.add_argument(
        "--interleave", action="store_true", help="alternate the loops step by step (a hand-written step after each)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = LanguageModelDataModule(shared_dataset("tiny_shakespeare"), batch_size=args.batch, tbptt_steps=args.tbptt)
    data.setup("fit")
    tokens = args.steps * args.batch * args.tbptt
    results = {"hand-written loop": [], "rnnzoo + Lightning": []}
    for _ in range(args.repeats):
        if args.interleave:
            hand, zoo = interleaved_seconds(data, args)
        else:
            hand, zoo = hand_written_seconds(data, args), rnnzoo_seconds(data, args)
        results["hand-written loop"].append(tokens / hand)
        results["rnnzoo + Lightning"].append(tokens / zoo)
    baseline = statistics.median(results["hand-written loop"])
    print(f"machine: {machine()}")
    print(
        f"model: {args.layers}x{args.hidden} LSTM char-LM, batch {args.batch} x {args.tbptt}, "
        f"precision {args.precision}, {args.steps} timed steps after {args.warmup}, {args.repeats} alternating runs, "
        f"{args.clock} clock{', interleaved step by step' if args.interleave else ''}"
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
        f"\npaired ratios (each rnnzoo run / the hand-written run of the same repeat): "
        f"{', '.join(f'{r:.3f}' for r in paired)}; median {statistics.median(paired):.3f}x"
    )


if __name__ == "__main__":
    main()
