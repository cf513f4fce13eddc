"""Tokenizers built from a training split and saved with the model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch
from torch import Tensor


class CharTokenizer:
    """One token per character; the vocabulary is the characters seen in training.

    Characters outside the vocabulary are an error by default (``errors="strict"``)
    naming them; with an ``unk_token`` in the vocabulary, ``errors="replace"``
    maps them to it instead.

    Args:
        vocabulary: the characters, in id order.
        unk_token: an extra entry that stands for any unseen character, or None.
    """

    kind = "char"

    def __init__(self, vocabulary: Iterable[str], unk_token: str | None = None) -> None:
        self.vocabulary = list(vocabulary)
        if unk_token is not None and unk_token not in self.vocabulary:
            self.vocabulary.append(unk_token)
        if not self.vocabulary:
            raise ValueError("a CharTokenizer needs at least one character")
        self.unk_token = unk_token
        self.ids = {token: index for index, token in enumerate(self.vocabulary)}
        if len(self.ids) != len(self.vocabulary):
            raise ValueError("the vocabulary of a CharTokenizer holds a character twice")

    @classmethod
    def from_text(cls, text: str, unk_token: str | None = None) -> CharTokenizer:
        """Build the vocabulary from the distinct characters of ``text``, sorted."""
        return cls(sorted(set(text)), unk_token=unk_token)

    def __len__(self) -> int:
        """Vocabulary size."""
        return len(self.vocabulary)

    def encode(self, text: str, errors: Literal["strict", "replace"] = "replace") -> Tensor:
        """Return the ids of ``text`` as an int64 tensor.

        Raises:
            ValueError: naming the unseen characters, when ``text`` holds some and
                there is no ``unk_token`` to replace them (or ``errors="strict"``).
        """
        unseen = set(text) - self.ids.keys()
        if unseen:
            if errors == "strict" or self.unk_token is None:
                shown = ", ".join(repr(char) for char in sorted(unseen)[:20])
                hint = (
                    "" if self.unk_token is not None else " (build the tokenizer with an unk_token to map them to it)"
                )
                raise ValueError(
                    f"{len(unseen)} character(s) never seen in training: {shown}; "
                    f"the vocabulary has {len(self)} characters{hint}"
                )
            unk = self.ids[self.unk_token]
            return torch.tensor([self.ids.get(char, unk) for char in text], dtype=torch.long)
        return torch.tensor([self.ids[char] for char in text], dtype=torch.long)

    def decode(self, ids: Iterable[int] | Tensor) -> str:
        """Turn ids back into text."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return "".join(self.vocabulary[index] for index in ids)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description, stored in checkpoints."""
        return {"kind": self.kind, "vocabulary": self.vocabulary, "unk_token": self.unk_token}

    def __eq__(self, other: object) -> bool:
        """Equal when the vocabulary and unknown token are."""
        return isinstance(other, CharTokenizer) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        """Short summary."""
        return f"CharTokenizer(size={len(self)}, unk_token={self.unk_token!r})"


_TOKENIZERS: dict[str, type[CharTokenizer]] = {CharTokenizer.kind: CharTokenizer}


def tokenizer_from_dict(data: dict[str, Any]) -> CharTokenizer:
    """Rebuild a tokenizer from :meth:`CharTokenizer.to_dict` output (e.g. from a checkpoint)."""
    kind = data.get("kind")
    if kind not in _TOKENIZERS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; known kinds: {', '.join(sorted(_TOKENIZERS))}")
    options = {key: value for key, value in data.items() if key != "kind"}
    return _TOKENIZERS[kind](**options)
