"""What a model takes from its data besides weights: one schema, shared by data modules, checkpoints and artifacts.

A data module builds it from its training split (:meth:`data_state`); a task takes it
at ``setup()`` and checks it fits, and it is stored with the weights in a Lightning
checkpoint and in a pretrained artifact alike, so inference reads raw inputs exactly
as training did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rnnzoo.tokenizers import Tokenizer, tokenizer_from_dict

Label = int | str


@dataclass
class DataState:
    """The tokenizers, labels and input settings a model was trained with.

    Attributes:
        tokenizer: what the task reads (and writes) text with: a character, word or BPE
            tokenizer, a :class:`~rnnzoo.tokenizers.PairTokenizer` for translation, a
            :class:`~rnnzoo.tokenizers.WordVocabulary` for tagging; None for frames.
        char_tokenizer: the characters of each word (a tagger's character encoder), or None.
        labels: the label values by class index (class labels, tag values, category names), or None.
        label_names: readable names of ``labels``, or None.
        options: JSON-able settings the data applied that inference must repeat
            (``max_length``, ``max_word_length``, image size and normalisation, ...).
    """

    tokenizer: Tokenizer | None = None
    char_tokenizer: Tokenizer | None = None
    labels: list[Label] | None = None
    label_names: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (tokenizers by their ``to_dict``)."""
        return {
            "tokenizer": None if self.tokenizer is None else self.tokenizer.to_dict(),
            "char_tokenizer": None if self.char_tokenizer is None else self.char_tokenizer.to_dict(),
            "labels": self.labels,
            "label_names": self.label_names,
            "options": dict(self.options),
        }

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> DataState:
        """Rebuild from :meth:`to_dict`; also reads the flat keys of format 1 (``categories``, ``max_word_length``)."""
        options = dict(stored.get("options") or {})
        if stored.get("max_word_length") is not None:  # format 1
            options["max_word_length"] = stored["max_word_length"]
        labels, names = stored.get("labels"), stored.get("label_names")
        if stored.get("categories") is not None:  # format 1: a captioner's category names
            labels = names = list(stored["categories"])
        tokenizer, chars = stored.get("tokenizer"), stored.get("char_tokenizer")
        return cls(
            tokenizer=None if tokenizer is None else tokenizer_from_dict(tokenizer),
            char_tokenizer=None if chars is None else tokenizer_from_dict(chars),
            labels=None if labels is None else list(labels),
            label_names=None if names is None else list(names),
            options=options,
        )

    def differences(self, other: DataState) -> list[str]:
        """What ``other`` has that differs from what this state already holds (its unset fields are not compared)."""
        found = []
        for name in ("tokenizer", "char_tokenizer", "labels", "label_names"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None and mine != theirs:
                found.append(name)
        return found
