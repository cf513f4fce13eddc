"""Names by language: validation loss per character of Captioner variants, and sampled names per language.

python benchmarks/names_generation.py [--epochs 12]

Trains on ../shared/data/names (train only; 10% carved off for validation with
seed 0, as the recipes do); the last row is the same LSTM told nothing (every name
gets category 0), so the gap to it is what knowing the language is worth. The model
is the names recipes' (hidden 128, embedding 32, AdamW lr 3e-3), on one thread.
The loss counts the end token as one character.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import machine, print_table, shared_dataset
from lightning import Trainer, seed_everything

from rnnzoo import Captioner, CategorySequenceDataModule

LANGUAGES = ["Russian", "Japanese", "Italian", "German", "Arabic", "Chinese"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, samples = [], {}
    variants = [("lstm", "init_state"), ("gru", "init_state"), ("lstm", "first_input"), ("lstm", "none")]
    for cell, conditioning in variants:
        seed_everything(1234)
        data = CategorySequenceDataModule(
            shared_dataset("names"), label_column="language", text_column="name", batch_size=64
        )
        if conditioning == "none":  # the baseline: every name gets category 0, so the language is unknown
            data.setup("fit")
            for split in data.encoded.values():
                split.conditions = [0] * len(split.conditions)
        model = Captioner(
            data.vocab_size,
            num_categories=data.num_categories,
            conditioning="init_state" if conditioning == "none" else conditioning,
            cell=cell,
            embedding_size=32,
            hidden_size=128,
            dropout=0.1,
            max_decode_length=20,
            optimizer=lambda p: torch.optim.AdamW(p, lr=3e-3, weight_decay=0.01),
        )
        trainer = Trainer(
            max_epochs=args.epochs,
            gradient_clip_val=1.0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        start = time.perf_counter()
        trainer.fit(model, data)
        seconds = time.perf_counter() - start
        loss = trainer.validate(model, data, verbose=False)[0]["val_loss"]
        name = "none (one category for all: unconditional)" if conditioning == "none" else conditioning
        rows.append([cell, name, f"{loss:.3f}", f"{seconds:.0f}"])
        if (cell, conditioning) == ("lstm", "init_state"):
            for language in LANGUAGES:
                drawn = model.generate([language] * 4, temperature=0.8, seed=0)
                samples[language] = ", ".join(drawn)
            samples["(greedy, per language)"] = ", ".join(
                f"{lang}: {name}" for lang, name in zip(LANGUAGES, model.generate(LANGUAGES), strict=True)
            )
    print(machine())
    print_table(["cell", "conditioning", "val loss / char (nats)", "train s"], rows)
    print_table(["language", "sampled names (LSTM init_state, T=0.8)"], [[k, v] for k, v in samples.items()])


if __name__ == "__main__":
    main()
