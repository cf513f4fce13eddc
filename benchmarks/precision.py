"""Training tokens/s of the tiny-shakespeare recipes' model in fp32 vs bf16 autocast, side by side.

python benchmarks/precision.py --steps 10 --repeats 1
"""

from __future__ import annotations

import argparse

from common import alternate, machine, print_table, shared_dataset

from rnnzoo import LanguageModel, LanguageModelDataModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru"])
    args = parser.parse_args()
    data = LanguageModelDataModule(shared_dataset("tiny_shakespeare"), batch_size=64, tbptt_steps=128)
    data.setup("fit")
    rows = []
    for cell in args.cells:

        def make_model(cell: str = cell) -> LanguageModel:
            return LanguageModel(data.vocab_size, cell, hidden_size=512, num_layers=2, dropout=0.4)

        speeds = alternate(
            {"32": (make_model, "32"), "bf16-mixed": (make_model, "bf16-mixed")},
            data,
            args.steps,
            args.warmup,
            args.repeats,
        )
        fp32, bf16 = speeds["32"], speeds["bf16-mixed"]
        rows.append([cell, f"{fp32:,.0f}", f"{bf16:,.0f}", f"{bf16 / fp32:.2f}x"])
    print(f"machine: {machine()}")
    print(f"model: 2x512 char-LM, batch 64 x 128, {args.steps} timed steps after {args.warmup}, {args.repeats} runs")
    print_table(["cell", "fp32 tokens/s", "bf16-mixed tokens/s", "bf16 / fp32"], rows)


if __name__ == "__main__":
    main()
