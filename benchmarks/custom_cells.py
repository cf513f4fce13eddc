"""Training-step time of the cells we write ourselves vs torch's fused kernels, side by side in one run.

OMP_NUM_THREADS=1 python benchmarks/custom_cells.py --repeats 3
"""

from __future__ import annotations

import argparse

import torch
from common import alternate_calls, machine, print_table

from rnnzoo import build_cell


def training_step(backbone, inputs, with_gates: bool = False):
    """One forward + backward of a loss over every output step (what a training step costs the backbone)."""

    def run() -> None:
        backbone.zero_grad(set_to_none=True)
        outputs = backbone.forward_with_gates(inputs)[0] if with_gates else backbone(inputs)[0]
        outputs.square().mean().backward()

    return run


def compile_gate_math(backbone):
    """torch.compile each minGRU/minLSTM layer's point-wise gate math (the part that is not a matmul)."""
    for directions in backbone.layers:
        for layer in directions:
            layer.interpolation = torch.compile(layer.interpolation)
    return backbone


def compare(cells: dict, baseline: str, batch: int, steps: int, hidden: int, warmup: int, repeats: int):
    """Rows ``[variant, ms per step, speed vs baseline]`` for ``cells`` = {variant: (cell name, with_gates)}.

    A cell name may carry flags: ``mingru+scan`` (``mode="scan"``), ``mingru+compile`` (:func:`compile_gate_math`),
    ``reference_gru+replay`` (its step's backward replayed under autograd instead of written out).
    """
    inputs = torch.randn(batch, steps, hidden)
    variants = {}
    for variant, (spec, with_gates) in cells.items():
        name, *flags = spec.split("+")
        torch.manual_seed(0)
        backbone = build_cell(name, hidden, hidden, **({"mode": "scan"} if "scan" in flags else {}))
        if "compile" in flags:
            backbone = compile_gate_math(backbone)
        if "replay" in flags:
            for directions in backbone.layers:
                for layer in directions:
                    layer.cell_backward = lambda *step: None  # the default: replay cell under autograd
        variants[variant] = training_step(backbone, inputs, with_gates)
    seconds = alternate_calls(variants, warmup, repeats)
    return [[v, f"{1000 * s:,.0f}", f"{seconds[baseline] / s:.2f}x"] for v, s in seconds.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="add minGRU with torch.compile'd gate math")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    headers = ["variant", "ms per training step", "speed vs fused"]

    print("\nLSTM-type cells, H=512, B=64, T=100 (forward + backward)")
    cells = {
        "lstm (torch fused)": ("lstm", False),
        "reference_lstm (whole-sequence autograd function)": ("reference_lstm", False),
        "reference_lstm (step loop under autograd)": ("reference_lstm", True),
        "layernorm_lstm": ("layernorm_lstm", False),
    }
    print_table(headers, compare(cells, "lstm (torch fused)", 64, 100, 512, args.warmup, args.repeats))

    print("\nGRU and vanilla cells, H=512, B=64, T=100 (forward + backward)")
    cells = {
        "gru (torch fused)": ("gru", False),
        "reference_gru": ("reference_gru", False),
        "reference_gru (backward replayed under autograd)": ("reference_gru+replay", False),
        "layernorm_gru": ("layernorm_gru", False),
    }
    print_table(headers, compare(cells, "gru (torch fused)", 64, 100, 512, args.warmup, args.repeats))
    cells = {
        "rnn (torch fused)": ("rnn", False),
        "reference_rnn": ("reference_rnn", False),
        "indrnn": ("indrnn", False),
    }
    print_table(headers, compare(cells, "rnn (torch fused)", 64, 100, 512, args.warmup, args.repeats))

    print("\nminGRU / minLSTM vs torch's GRU, H=256, B=32, T=1024 (forward + backward)")
    cells = {
        "gru (torch fused)": ("gru", False),
        "mingru (sequential loop, the CPU default)": ("mingru", False),
        "minlstm (sequential loop, the CPU default)": ("minlstm", False),
        "mingru (log-space scan)": ("mingru+scan", False),
        "minlstm (log-space scan)": ("minlstm+scan", False),
    }
    if args.compile:
        cells["mingru (sequential, torch.compile'd gate math)"] = ("mingru+compile", False)
    print_table(headers, compare(cells, "gru (torch fused)", 32, 1024, 256, args.warmup, args.repeats))


if __name__ == "__main__":
    main()
