"""Metrics the tasks share beyond torchmetrics' own: corpus BLEU as sacrebleu computes it."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor
from torchmetrics.text import SacreBLEUScore

from rnnzoo.entities import EntityF1

__all__ = ["BLEU", "EntityF1"]


class BLEU(SacreBLEUScore):
    """Corpus BLEU on a 0-100 scale, equal to sacrebleu's ``corpus_bleu`` with one or several references.

    With several references of equally close length, sacrebleu takes the shortest as the
    reference length and torchmetrics the first it meets; sorting each row's references
    shortest-first makes the two agree.

    Args:
        n_gram: the largest n-gram order.
        tokenize: sacrebleu's tokenizer (``none`` for text already split on spaces, ``13a``).
    """

    def __init__(self, n_gram: int = 4, tokenize: str = "none") -> None:
        super().__init__(n_gram=n_gram, tokenize=tokenize)

    def update(self, hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]) -> None:
        """Add hypotheses and their references (one string or a list of strings per hypothesis)."""
        rows = [
            [refs] if isinstance(refs, str) else sorted(refs, key=lambda ref: len(ref.split())) for refs in references
        ]
        super().update(list(hypotheses), rows)

    def compute(self) -> Tensor:
        """BLEU from 0 to 100."""
        return 100 * super().compute()
