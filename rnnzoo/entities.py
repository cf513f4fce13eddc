"""Entity-level precision, recall and F1 over BIO / BIOES tag sequences, as ``seqeval`` computes them.

An entity is a typed span ``(type, first, last)``; a predicted entity counts when
a gold entity has the same type and the same boundaries. Spans are read as
``seqeval``'s default mode (and CoNLL's ``conlleval``) reads them: a chunk
ends at ``O``, at a new ``B``/``S``, after an ``E``/``S``, or where the type
changes, and an ``I``/``E`` that follows ``O`` (or another type) starts a new
chunk, so ill-formed predictions are scored leniently but deterministically.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

Entity = tuple[str, int, int]
"""``(type, first step, last step)``, both ends included."""


def _parts(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "_")``; a tag with no type gets ``"_"``."""
    return tag[0], tag[1:].split("-", maxsplit=1)[-1] or "_"


def _ends(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    return prev_tag in "ES" or (prev_tag in "BI" and tag in "BSO") or (prev_tag not in "O." and prev_type != kind)


def _starts(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    return tag in "BS" or (prev_tag in "ESO" and tag in "EI") or (tag not in "O." and prev_type != kind)


def get_entities(tags: Sequence[str]) -> list[Entity]:
    """The typed spans of one tag sequence.

    >>> get_entities(["B-PER", "I-PER", "O", "B-LOC"])
    [('PER', 0, 1), ('LOC', 3, 3)]
    """
    entities: list[Entity] = []
    prev_tag, prev_type, begin = "O", "", 0
    for position, chunk in enumerate([*tags, "O"]):
        tag, kind = _parts(chunk)
        if _ends(prev_tag, tag, prev_type, kind):
            entities.append((prev_type, begin, position - 1))
        if _starts(prev_tag, tag, prev_type, kind):
            begin = position
        prev_tag, prev_type = tag, kind
    return entities


def detect_scheme(names: Sequence[str]) -> str | None:
    """``"BIOES"``, ``"BIO"`` or None: the entity scheme a tag set follows, if any.

    A tag set is BIO when every name is ``O`` or ``B-``/``I-`` plus a type, and
    BIOES when it also uses ``E-`` or ``S-``. Anything else (UPOS tags such as
    ``NOUN``) has no entities to score.
    """
    prefixes = set()
    for name in names:
        if name == "O":
            continue
        prefix, dash, kind = name.partition("-")
        if not dash or not kind or prefix not in ("B", "I", "E", "S"):
            return None
        prefixes.add(prefix)
    if "B" not in prefixes:
        return None
    return "BIOES" if prefixes & {"E", "S"} else "BIO"


def entity_counts(targets: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]]) -> tuple[int, int, int]:
    """``(correct, predicted, gold)`` entity counts over pairs of tag sequences.

    Raises:
        ValueError: when the lists or a pair of sequences differ in length.
    """
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} gold sequences but {len(predictions)} predicted ones")
    correct = predicted = gold = 0
    for position, (target, prediction) in enumerate(zip(targets, predictions, strict=True)):
        if len(target) != len(prediction):
            raise ValueError(f"sequence {position} has {len(target)} gold tags but {len(prediction)} predicted")
        true_entities, predicted_entities = set(get_entities(target)), set(get_entities(prediction))
        correct += len(true_entities & predicted_entities)
        predicted += len(predicted_entities)
        gold += len(true_entities)
    return correct, predicted, gold


def _scores(correct: float, predicted: float, gold: float) -> dict[str, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def entity_scores(targets: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro-averaged entity ``precision``, ``recall`` and ``f1`` (seqeval's defaults; 0 where undefined)."""
    return _scores(*entity_counts(targets, predictions))


class EntityF1(Metric):
    """Entity-level precision, recall and F1 accumulated over batches (a torchmetrics metric).

    ``update`` takes tag-name sequences; ``compute`` returns a dict with
    ``precision``, ``recall`` and ``f1``. Counts are summed across processes.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        for name in ("correct", "predicted", "gold"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, predictions: Sequence[Sequence[str]], targets: Sequence[Sequence[str]]) -> None:
        """Count the entities of a batch of predicted and gold tag sequences."""
        correct, predicted, gold = entity_counts(targets, predictions)
        self.correct += correct
        self.predicted += predicted
        self.gold += gold

    def compute(self) -> dict[str, Tensor]:
        """``{"precision", "recall", "f1"}`` over everything seen since the last reset."""
        scores = _scores(float(self.correct), float(self.predicted), float(self.gold))
        return {name: torch.tensor(value) for name, value in scores.items()}
