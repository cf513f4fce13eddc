"""Multi30k de->en BLEU of a trained Seq2Seq checkpoint: greedy and beam search, validation and test.

python benchmarks/translation_quality.py runs/multi30k_de_en-gru_additive/version_0/checkpoints/last.ckpt

BLEU is computed with sacrebleu directly (``corpus_bleu``) on the forms the task
logs (``Seq2Seq.bleu_forms``): for word-level targets, lowercased tokens with
``tokenize="none"`` (bentrevett/pytorch-seq2seq's setting); for BPE, detokenized
text with sacrebleu's default 13a tokenizer. Runs on one thread.
"""

from __future__ import annotations

import argparse
import time

import sacrebleu
import torch
from common import machine, print_table, shared_dataset

from rnnzoo import Seq2Seq, TranslationDataModule, load_task


def corpus_bleu(model: Seq2Seq, data: TranslationDataModule, split: str, beam_size: int, alpha: float) -> tuple:
    """``(BLEU, seconds, sentences)`` of ``split`` decoded with ``beam_size`` (1: greedy)."""
    hypotheses, references = [], []
    start = time.perf_counter()
    data.setup("test") if split == data.hparams.test_split else data.setup("validate")
    loader = data.test_dataloader() if split == data.hparams.test_split else data.val_dataloader()
    for batch in loader:
        decoded = model.decode_ids(batch.source, batch.source_lengths, beam_size=beam_size, length_penalty=alpha)
        for best, reference in zip(decoded, batch.references, strict=True):
            hypothesis, reference_form = model.bleu_forms(best[0].tokens, reference)
            hypotheses.append(hypothesis)
            references.append(reference_form)
    seconds = time.perf_counter() - start
    bleu = sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none", force=True).score  # tokenized on purpose
    return bleu, seconds, len(hypotheses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--beams", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--alpha", type=float, default=0.6, help="GNMT length penalty of beam search")
    parser.add_argument("--splits", nargs="+", default=["validation", "test"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_task(args.checkpoint).eval()
    hp = model.hparams
    data = TranslationDataModule(shared_dataset("multi30k"), eval_batch_size=128)
    if data.tokenizer != model.tokenizer:
        raise SystemExit("the checkpoint's tokenizers differ from the ones built on ../shared/data/multi30k")
    rows = []
    for split in args.splits:
        for beam in args.beams:
            bleu, seconds, count = corpus_bleu(model, data, split, beam, args.alpha)
            rows.append([split, "greedy" if beam == 1 else f"beam {beam}", f"{bleu:.2f}", f"{count / seconds:.1f}"])
    print(f"machine: {machine()}")
    print(
        f"model: {hp.encoder_cell} encoder ({'bi, ' if hp.bidirectional else ''}{hp.num_layers}x{hp.hidden_size}), "
        f"{hp.decoder_cell or hp.encoder_cell} decoder ({hp.decoder_hidden_size}), attention {hp.attention}, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters; length penalty alpha {args.alpha}"
    )
    print_table(["split", "decoding", "BLEU", "sentences/s"], rows)


if __name__ == "__main__":
    main()
