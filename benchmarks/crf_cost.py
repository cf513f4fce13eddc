"""What the linear-chain CRF costs: training and decoding tokens/s of a tagger with and without it.

Same WNUT-17 batches, same model (word embedding + char CNN -> BiLSTM -> linear head), bf16 autocast
as in the recipe; the two variants take turns so the machine's noise hits them alike. One thread:

    OMP_NUM_THREADS=1 python benchmarks/crf_cost.py --batches 40 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import machine, print_table, shared_dataset

from rnnzoo import Tagger, TaggingDataModule
from rnnzoo.batches import TaggingBatch

WNUT_NAMES = [
    "O", "B-corporation", "I-corporation", "B-creative-work", "I-creative-work", "B-group", "I-group",
    "B-location", "I-location", "B-person", "I-person", "B-product", "I-product",
]  # fmt: skip


def tokens_per_second(model: Tagger, batches: list[TaggingBatch], train: bool) -> float:
    """Tokens/s of training steps (forward, loss, backward, Adam) or of decoding (forward + argmax/Viterbi)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train(train)
    start = time.perf_counter()
    for batch in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.set_grad_enabled(train):
            scores = model(batch.inputs, batch.lengths, batch.chars)
            if train:
                loss = model.loss(scores, batch.tags, batch.lengths)
        if train:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        else:
            model.decode(scores, batch.lengths)
    return sum(int(batch.lengths.sum()) for batch in batches) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--eval_batch_size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = TaggingDataModule(
        shared_dataset("wnut17"),
        tags_column="ner_tags",
        label_names=WNUT_NAMES,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
    )
    data.setup("fit")
    torch.manual_seed(0)
    train = [batch for _, batch in zip(range(args.batches), data.train_dataloader(), strict=False)]
    evaluation = list(data.val_dataloader())
    models = {}
    for crf in (False, True):
        torch.manual_seed(0)
        model = Tagger(13, data.vocab_size, data.char_vocab_size, hidden_size=128, num_layers=1, crf=crf)
        if crf:
            model.crf.constrain(WNUT_NAMES, "BIO")
        models["CRF" if crf else "softmax"] = model
    for model in models.values():  # warm-up, untimed
        tokens_per_second(model, train[:2], train=True)
        tokens_per_second(model, evaluation[:1], train=False)
    speeds = {(name, stage): [] for name in models for stage in ("train", "decode")}
    for _ in range(args.repeats):
        for name, model in models.items():
            speeds[name, "train"].append(tokens_per_second(model, train, train=True))
            speeds[name, "decode"].append(tokens_per_second(model, evaluation, train=False))
    median = {key: statistics.median(values) for key, values in speeds.items()}
    rows = []
    for stage in ("train", "decode"):
        soft, crf = median["softmax", stage], median["CRF", stage]
        rows.append([stage, f"{soft:,.0f}", f"{crf:,.0f}", f"{crf / soft:.3f}x"])
    print(f"machine: {machine()}")
    print(
        f"model: WNUT-17 recipe sizes (1x128 BiLSTM, char CNN), bf16 autocast; train: {args.batches} batches of "
        f"{args.batch_size}, decode: the validation split in batches of {args.eval_batch_size}; "
        f"median of {args.repeats}"
    )
    print_table(["stage", "softmax tokens/s", "CRF tokens/s", "CRF / softmax"], rows)


if __name__ == "__main__":
    main()
