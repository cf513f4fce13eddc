"""The contract between data and tasks: every batch type, and the collate functions that build them.

Data modules produce these batches and tasks read them; neither imports the other.
Every batch is a ``NamedTuple`` (Lightning moves its tensors to the device and reads
its batch size), its tensors batch-first and left-aligned, padding id 0, and real
lengths given wherever rows are padded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor


def pad_sequences(sequences: Sequence[Tensor], padding_value: int | float = 0) -> tuple[Tensor, Tensor]:
    """Left-aligned padding: ``[len_i, *]`` tensors -> ``(padded [B, T_max, *], lengths [B])``."""
    lengths = torch.tensor([len(sequence) for sequence in sequences], dtype=torch.long)
    padded = torch.nn.utils.rnn.pad_sequence(list(sequences), batch_first=True, padding_value=padding_value)
    return padded, lengths


def pad_chars(rows: Sequence[Tensor], steps: int) -> Tensor:
    """Character ids of each row's words (``[T_i, L_i]``) -> one ``[B, steps, L_max]`` tensor padded with 0."""
    width = max(row.shape[1] for row in rows)
    padded = torch.zeros(len(rows), steps, width, dtype=torch.long)
    for index, row in enumerate(rows):
        padded[index, : row.shape[0], : row.shape[1]] = row
    return padded


class TokenChunk(NamedTuple):
    """One truncated-BPTT chunk of a language model's parallel streams.

    Attributes:
        inputs: ``[B, t]`` token ids.
        targets: ``[B, t]`` the next token of every position (``inputs`` shifted by one).
    """

    inputs: Tensor
    targets: Tensor


class PromptBatch(NamedTuple):
    """Prompts for a language model to continue.

    Attributes:
        tokens: ``[B, T]`` prompt ids, padded with 0.
        lengths: ``[B]`` real prompt lengths (at least 1).
        texts: the prompts as given.
    """

    tokens: Tensor
    lengths: Tensor
    texts: list[str]


class ClassificationBatch(NamedTuple):
    """Texts to classify.

    Attributes:
        tokens: ``[B, T]`` token ids, padded with 0.
        lengths: ``[B]`` real lengths.
        labels: ``[B]`` class indices, -1 where unknown (prediction).
    """

    tokens: Tensor
    lengths: Tensor
    labels: Tensor


def collate_classification(items: Sequence[tuple[Tensor, int]]) -> ClassificationBatch:
    """``(token ids, label index)`` items -> a :class:`ClassificationBatch`."""
    tokens, lengths = pad_sequences([ids for ids, _ in items])
    return ClassificationBatch(tokens, lengths, torch.tensor([label for _, label in items], dtype=torch.long))


class TaggingBatch(NamedTuple):
    """Sequences with one tag per step.

    Attributes:
        inputs: ``[B, T]`` word ids or ``[B, T, F]`` frames, padded with 0.
        lengths: ``[B]`` real lengths.
        tags: ``[B, T]`` tag indices, -100 at padding and where unknown.
        chars: ``[B, T, L]`` character ids of every word (0 at padding), or None (frames, no char encoder).
        words: the words of every row (word inputs), for naming predictions; None for frames.
        continues: ``[B]`` bool, for truncated-BPTT chunks: True where row ``b`` continues row ``b``
            of the previous batch (the model carries its state there), False where a sequence
            starts; None for whole sequences.
    """

    inputs: Tensor
    lengths: Tensor
    tags: Tensor
    chars: Tensor | None = None
    words: list[list[str]] | None = None
    continues: Tensor | None = None


def collate_tagging(items: Sequence[tuple[Tensor, Tensor | None, Tensor]]) -> TaggingBatch:
    """``(inputs [T] or [T, F], chars [T, L] or None, tags [T])`` items -> a :class:`TaggingBatch`."""
    inputs, lengths = pad_sequences([row for row, _, _ in items])
    tags = pad_sequences([tags for _, _, tags in items], -100)[0]
    chars = None if items[0][1] is None else pad_chars([chars for _, chars, _ in items], inputs.shape[1])
    return TaggingBatch(inputs, lengths, tags, chars)


class TranslationBatch(NamedTuple):
    """Sentence pairs.

    Attributes:
        source: ``[B, S]`` source ids, padded with 0.
        source_lengths: ``[B]`` real source lengths.
        target: ``[B, T]`` target ids ``<bos> y_1 ... y_n <eos>``, padded with 0 (``[B, 0]`` when unknown).
        target_lengths: ``[B]`` real target lengths (``n + 2``; 0 when unknown).
        references: the raw target texts, for BLEU (empty strings when unknown).
    """

    source: Tensor
    source_lengths: Tensor
    target: Tensor
    target_lengths: Tensor
    references: list[str]


def collate_translation(items: Sequence[tuple[Tensor, Tensor, str]]) -> TranslationBatch:
    """``(source ids, target ids, reference)`` items -> a :class:`TranslationBatch`."""
    source, source_lengths = pad_sequences([source for source, _, _ in items])
    target, target_lengths = pad_sequences([target for _, target, _ in items])
    return TranslationBatch(source, source_lengths, target, target_lengths, [text for _, _, text in items])


class CaptionBatch(NamedTuple):
    """Conditions and the sequences they should produce.

    Attributes:
        condition: ``[B]`` category indices, ``[B, F]`` feature vectors or ``[B, C, H, W]`` images.
        tokens: ``[B, T]`` ids ``<bos> y_1 ... y_n <eos>``, padded with 0 (``[B, 0]`` when unknown).
        lengths: ``[B]`` real lengths (``n + 2``).
        references: every reference text of each row (BLEU reads them all).
    """

    condition: Tensor
    tokens: Tensor
    lengths: Tensor
    references: list[list[str]]


def collate_captions(items: Sequence[tuple[Any, Tensor, list[str]]]) -> CaptionBatch:
    """``(condition, target ids, references)`` items -> a :class:`CaptionBatch`."""
    conditions = [condition for condition, _, _ in items]
    condition = torch.stack(conditions) if isinstance(conditions[0], Tensor) else torch.tensor(conditions)
    tokens, lengths = pad_sequences([ids for _, ids, _ in items])
    return CaptionBatch(condition, tokens, lengths, [refs for _, _, refs in items])


class FrameBatch(NamedTuple):
    """Sequences of continuous frames with one target each.

    Attributes:
        frames: ``[B, T, F]`` features.
        targets: ``[B]`` regression targets (float) or class indices (int64; -1 where unknown).
    """

    frames: Tensor
    targets: Tensor


def collate_frames(items: Sequence[tuple[Tensor, Tensor]]) -> FrameBatch:
    """``(frames [T, F], target)`` items of equal length -> a :class:`FrameBatch`."""
    return FrameBatch(torch.stack([frames for frames, _ in items]), torch.stack([target for _, target in items]))
