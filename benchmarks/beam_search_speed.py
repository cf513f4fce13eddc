"""Beam-search cost: sentences/s for beam 1, 5 and 10, batched vs one sentence at a time.

python benchmarks/beam_search_speed.py runs/multi30k_de_en-gru_additive/version_0/checkpoints/last.ckpt --sentences 200

Decodes the first ``--sentences`` Multi30k test sources with the checkpoint, in
batches of ``--batch_size`` (sorted by length, as the test loader does) and one
at a time, and checks that both give the same translations. Runs on one thread.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import machine, print_table, shared_dataset

from rnnzoo import TranslationDataModule, load_task
from rnnzoo.data import pad_sequences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--beams", nargs="+", type=int, default=[1, 5, 10])
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_task(args.checkpoint).eval()
    data = TranslationDataModule(shared_dataset("multi30k"))
    sources = data.encoded_split("test").sources[: args.sentences]
    sources = sorted(sources, key=len)
    rows = []
    for beam in args.beams:
        start = time.perf_counter()
        batched = []
        for first in range(0, len(sources), args.batch_size):
            source, lengths = pad_sequences(sources[first : first + args.batch_size])
            batched += model.decode_ids(source, lengths, beam_size=beam)
        batched_seconds = time.perf_counter() - start
        start = time.perf_counter()
        alone = [model.decode_ids(s.unsqueeze(0), torch.tensor([len(s)]), beam_size=beam)[0] for s in sources]
        alone_seconds = time.perf_counter() - start
        same = sum(a[0].tokens.tolist() == b[0].tokens.tolist() for a, b in zip(alone, batched, strict=True))
        rows.append(
            [
                beam,
                f"{len(sources) / batched_seconds:.1f}",
                f"{len(sources) / alone_seconds:.1f}",
                f"{alone_seconds / batched_seconds:.1f}x",
                f"{same}/{len(sources)}",
            ]
        )
    print(f"machine: {machine()}")
    print(f"{len(sources)} Multi30k test sentences, batches of {args.batch_size}")
    print_table(["beam", "batched sentences/s", "one at a time sentences/s", "speed-up", "same output"], rows)


if __name__ == "__main__":
    main()
