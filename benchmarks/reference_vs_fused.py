"""Training throughput of the gate-level reference cells vs torch's fused kernels, same model and data.

python benchmarks/reference_vs_fused.py --steps 6 --repeats 1
"""

from __future__ import annotations

import argparse

from common import alternate, machine, print_table, shared_dataset

from rnnzoo import LanguageModel, LanguageModelDataModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tbptt", type=int, default=64)
    args = parser.parse_args()
    data = LanguageModelDataModule(shared_dataset("tiny_shakespeare"), batch_size=args.batch, tbptt_steps=args.tbptt)
    data.setup("fit")
    rows = []
    for kind in ("rnn", "lstm", "gru"):
        variants = {
            variant: (lambda cell=cell: LanguageModel(data.vocab_size, cell, args.hidden, 2, dropout=0.0), "32")
            for variant, cell in (("fused", kind), ("reference", f"reference_{kind}"))
        }
        speeds = alternate(variants, data, args.steps, args.warmup, args.repeats)
        fused, reference = speeds["fused"], speeds["reference"]
        rows.append([kind, f"{fused:,.0f}", f"{reference:,.0f}", f"{reference / fused:.3f}x"])
    print(f"machine: {machine()}")
    print(f"model: 2x{args.hidden} char-LM, batch {args.batch} x {args.tbptt}, fp32, {args.steps} timed steps")
    print_table(["cell", "fused tokens/s", "reference tokens/s", "reference / fused"], rows)


if __name__ == "__main__":
    main()
