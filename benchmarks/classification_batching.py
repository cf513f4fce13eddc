"""Batching for classification: bucketed vs random batches, and rnnzoo's padded path vs PackedSequence.

Trains a BiLSTM sentence classifier (forward + backward + AdamW step) on batches of real
sentences and reports real (unpadded) tokens per second, plus each batching's padding
efficiency (real tokens / padded tokens) over a whole epoch.

* ``rnnzoo``: the Classifier as shipped (the backbone gets the lengths and never reads padding).
* ``packed``: the same sizes with torch's ``nn.LSTM`` over a ``PackedSequence``, the usual exact
  alternative.
* ``padding read``: ``nn.LSTM`` over the padded batch without lengths: fast, but the backward
  direction starts on padding, so predictions change with the batch. Shown for scale only.

OMP_NUM_THREADS=1 python benchmarks/classification_batching.py --batches 40 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import machine, print_table, shared_dataset
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.data import RandomSampler

from rnnzoo import ClassificationDataModule, Classifier
from rnnzoo.batches import collate_classification
from rnnzoo.data.batching import BucketBatchSampler


class TorchLSTMClassifier(nn.Module):
    """Embedding -> nn.LSTM (packed or not) -> max pooling -> head, the same sizes as the Classifier."""

    def __init__(self, vocab_size: int, embedding: int, hidden: int, packed: bool) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 2)
        self.packed = packed

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        inputs = self.embedding(tokens)
        if self.packed:
            packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
            outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, padding_value=float("-inf"))
        else:
            outputs = self.lstm(inputs)[0]
            mask = torch.arange(tokens.shape[1]) < lengths.unsqueeze(1)
            outputs = outputs.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        return self.head(outputs.amax(1))


def batches(data, lengths, batch_size: int, bucketed: bool, count: int | None = None) -> list:
    """One epoch's batches (the first ``count``), bucketed by length or drawn at random."""
    sampler = RandomSampler(range(len(data)), generator=torch.Generator().manual_seed(0))
    if bucketed:
        indices = list(BucketBatchSampler(sampler, batch_size, False, lengths))
    else:
        order = list(sampler)
        indices = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [collate_classification([data[i] for i in batch]) for batch in indices[:count]]


def efficiency(epoch: list) -> float:
    """Real tokens / padded tokens over a list of batches."""
    return sum(int(lengths.sum()) for _, lengths, _ in epoch) / sum(tokens.numel() for tokens, _, _ in epoch)


def train_speed(model: nn.Module, epoch: list) -> float:
    """Real tokens per second of training steps over ``epoch`` (after one warm-up step)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(tokens, lengths, labels) -> None:
        loss = nn.functional.cross_entropy(model(tokens, lengths), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step(*epoch[0])
    start = time.perf_counter()
    for batch in epoch:
        step(*batch)
    return sum(int(lengths.sum()) for _, lengths, _ in epoch) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="rotten_tomatoes")
    parser.add_argument("--text_column", default="text")
    parser.add_argument("--batches", type=int, default=40, help="timed batches per variant and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--embedding", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    datamodule = ClassificationDataModule(shared_dataset(args.dataset), text_column=args.text_column)
    data = datamodule.encoded_split("train")
    epochs = {kind: batches(data, data.lengths, args.batch_size, kind == "bucketed") for kind in ("random", "bucketed")}
    timed = {kind: epoch[: args.batches] for kind, epoch in epochs.items()}

    def rnnzoo_model() -> nn.Module:
        return Classifier(datamodule.vocab_size, 2, "lstm", args.hidden, embedding_size=args.embedding, dropout=0.0)

    models = {
        "rnnzoo": rnnzoo_model,
        "packed": lambda: TorchLSTMClassifier(datamodule.vocab_size, args.embedding, args.hidden, packed=True),
        "padding read": lambda: TorchLSTMClassifier(datamodule.vocab_size, args.embedding, args.hidden, packed=False),
    }
    speeds: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):  # variants take turns, so noise hits them alike
        for kind, epoch in timed.items():
            for name, make in models.items():
                torch.manual_seed(0)
                speeds.setdefault((name, kind), []).append(train_speed(make(), epoch))
    base = statistics.median(speeds[("rnnzoo", "random")])
    rows = []
    for (name, kind), values in speeds.items():
        speed = statistics.median(values)
        exact = "no" if name == "padding read" else "yes"
        rows.append([name, kind, exact, f"{efficiency(epochs[kind]):.3f}", f"{speed:,.0f}", f"{speed / base:.2f}x"])
    print(f"machine: {machine()}")
    print(
        f"data: {args.dataset} train, BiLSTM {args.embedding}->{args.hidden}, batch {args.batch_size}, fp32, "
        f"{args.batches} timed batches x {args.repeats} repeats (median)"
    )
    headers = ["model path", "batches", "exact", "padding efficiency (epoch)", "real tokens/s", "vs rnnzoo random"]
    print_table(headers, rows)


if __name__ == "__main__":
    main()
