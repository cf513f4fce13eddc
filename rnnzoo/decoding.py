"""The one decoding module: turning next-token logits into sequences.

A task exposes a ``step`` function, ``(tokens [B], state) -> (logits [B, V], state)``,
and these functions drive it. The language model uses it for sampling; seq2seq
and captioning decode through the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]
"""``(tokens [B], state) -> (logits [B, V], state)``."""


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick the next token of every row of ``logits [B, V]``.

    Args:
        logits: ``[B, V]`` unnormalised next-token scores.
        temperature: divides the logits; ``0`` means greedy (argmax).
        top_k: sample only among the ``k`` most likely tokens.
        generator: a seeded ``torch.Generator`` for reproducible samples.

    Returns:
        ``[B]`` token ids.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
    if top_k is not None and top_k <= 0:
        raise ValueError(f"top_k must be a positive integer or None, got {top_k}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probabilities = torch.softmax(logits, dim=-1)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def sample(
    step: StepFn,
    logits: Tensor,
    state: Any,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample ``max_new_tokens`` tokens, feeding each one back through ``step``.

    Args:
        step: the model's one-step function.
        logits: ``[B, V]`` next-token logits after the prompt (or start token).
        state: the model state after the prompt.
        max_new_tokens: how many tokens to draw.
        temperature: see :func:`sample_next`.
        top_k: see :func:`sample_next`.
        generator: see :func:`sample_next`.

    Returns:
        ``[B, max_new_tokens]`` generated ids.
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    tokens = []
    for position in range(max_new_tokens):
        token = sample_next(logits, temperature, top_k, generator)
        tokens.append(token)
        if position + 1 < max_new_tokens:
            logits, state = step(token, state)
    if not tokens:
        return logits.new_zeros(logits.shape[0], 0, dtype=torch.long)
    return torch.stack(tokens, dim=1)
