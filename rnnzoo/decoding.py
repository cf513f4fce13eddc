"""The one decoding module: turning next-token logits into sequences.

A task exposes a ``step`` function, ``(tokens [B], state) -> (logits [B, V], state)``,
and these functions drive it: :func:`sample` (greedy with ``temperature=0``, or
sampling with temperature / top-k, optionally stopping at an end token) and
:func:`beam_search` (batched, GNMT length penalty, ``n_best``). The language model,
seq2seq and captioning decode through the same code.

A state is whatever the task's ``step`` carries: a tensor, or tuples, lists and
dicts of tensors. Beam search reorders it with a ``reorder(state, indices)``
function; :func:`index_select_state` does that for states whose tensors all have
the batch on one dimension (``dim=1`` for a backbone's ``[layers, B, H]``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]
"""``(tokens [B], state) -> (logits [B, V], state)``."""

ReorderFn = Callable[[Any, Tensor], Any]
"""``(state, indices [B']) -> state`` whose row ``i`` is the old row ``indices[i]``."""


def index_select_state(state: Any, indices: Tensor, dim: int = 0) -> Any:
    """Pick rows ``indices`` of every tensor of a state (tensors, and tuples, lists, dicts of them).

    Args:
        state: the state; anything that is not a tensor or container (None, ints) is kept as is.
        indices: ``[B']`` int64 row indices.
        dim: the batch dimension of every tensor (1 for a backbone's ``[layers, B, H]``).
    """
    if isinstance(state, Tensor):
        return state.index_select(dim, indices.to(state.device))
    if isinstance(state, dict):
        return {key: index_select_state(value, indices, dim) for key, value in state.items()}
    if isinstance(state, tuple | list):
        return type(state)(index_select_state(value, indices, dim) for value in state)
    return state


backbone_reorder: ReorderFn = partial(index_select_state, dim=1)
"""Reorder a backbone state (``[layers * directions, B, H]`` or a tuple of them)."""


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
    eos_id: int | None = None,
    max_lengths: Tensor | None = None,
) -> Tensor:
    """Sample up to ``max_new_tokens`` tokens, feeding each one back through ``step``.

    Args:
        step: the model's one-step function.
        logits: ``[B, V]`` next-token logits after the prompt (or start token).
        state: the model state after the prompt.
        max_new_tokens: how many tokens to draw at most.
        temperature: see :func:`sample_next` (0: greedy decoding).
        top_k: see :func:`sample_next`.
        generator: see :func:`sample_next`.
        eos_id: an end token: a row that drew it only repeats it, and sampling stops
            once every row has; None draws exactly ``max_new_tokens``.
        max_lengths: ``[B]`` per-row limits (needs ``eos_id``): a row that drew its
            limit of tokens only repeats ``eos_id`` after them.

    Returns:
        ``[B, t]`` generated ids, ``t <= max_new_tokens`` (``t = max_new_tokens`` without ``eos_id``).
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if max_lengths is not None and eos_id is None:
        raise ValueError("max_lengths needs an eos_id to fill the rows that reached their limit")
    tokens = []
    finished = torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)
    for position in range(max_new_tokens):
        token = sample_next(logits, temperature, top_k, generator)
        if eos_id is not None:
            token = token.masked_fill(finished, eos_id)
            finished = finished | (token == eos_id)
            if max_lengths is not None:
                finished = finished | (max_lengths.to(finished.device) <= position + 1)
        tokens.append(token)
        if eos_id is not None and bool(finished.all()):
            break
        if position + 1 < max_new_tokens:
            logits, state = step(token, state)
    if not tokens:
        return logits.new_zeros(logits.shape[0], 0, dtype=torch.long)
    return torch.stack(tokens, dim=1)


@dataclass
class Hypothesis:
    """One finished beam: its tokens (end token excluded) and scores.

    Attributes:
        tokens: ``[length]`` ids, without the end token.
        log_prob: sum of the log-probabilities of the tokens (end token included when it ended).
        score: ``log_prob`` divided by the length penalty: what beams are ranked by.
    """

    tokens: Tensor
    log_prob: float
    score: float


def length_penalty(length: int | Tensor, alpha: float) -> float | Tensor:
    """GNMT's length penalty ``((5 + length) / 6) ** alpha`` (Wu et al. 2016); 1 when ``alpha = 0``."""
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(
    step: StepFn,
    logits: Tensor,
    state: Any,
    beam_size: int,
    max_length: int,
    eos_id: int,
    alpha: float = 0.0,
    n_best: int = 1,
    reorder: ReorderFn = index_select_state,
    max_lengths: Tensor | None = None,
) -> list[list[Hypothesis]]:
    """Batched beam search: keep the ``beam_size`` best prefixes of every row, all rows in one batch.

    At each step every alive beam proposes its tokens; the ``2 * beam_size`` best
    candidates of a row are read in order, those ending in ``eos_id`` among the
    first ``beam_size`` finish (scored ``log_prob / length_penalty(length, alpha)``,
    the end token counted in the length), and the first ``beam_size`` others stay
    alive. A row is done once it holds ``beam_size`` finished hypotheses; at
    ``max_length`` (or its own ``max_lengths`` entry) its alive beams finish as they are.
    Done rows leave the batch, so the step function runs on the rows still searching. ``beam_size = 1`` is greedy
    decoding, and a row's result does not depend on the other rows of the batch.

    Args:
        step: the model's one-step function.
        logits: ``[B, V]`` logits of the first token (after the start token).
        state: the model state for those ``B`` rows.
        beam_size: beams per row (1: greedy).
        max_length: most tokens per hypothesis, end token included.
        eos_id: the end token.
        alpha: GNMT length-penalty exponent (0: raw log-probability; 0.6 to 1 favours longer output).
        n_best: hypotheses returned per row, best first (at most ``beam_size``).
        reorder: ``(state, indices) -> state`` picking rows of the state; the default
            suits states whose tensors have the batch first (see :func:`index_select_state`).
        max_lengths: ``[B]`` per-row limits below ``max_length`` (e.g. from the source lengths), or None.

    Returns:
        For every row, its ``n_best`` best :class:`Hypothesis`, best first.
    """
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive integer, got {beam_size!r}")
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must lie in [1, beam_size={beam_size}], got {n_best}")
    if max_length < 1:
        raise ValueError(f"max_length must be a positive number of tokens, got {max_length}")
    if alpha < 0:
        raise ValueError(f"the length-penalty alpha must be >= 0, got {alpha}")
    batch, vocab = logits.shape
    device = logits.device
    # Every row starts with beam_size copies; only the first is alive, so the first step picks distinct tokens.
    expand = torch.arange(batch, device=device).repeat_interleave(beam_size)
    state = reorder(state, expand)
    logits = logits.index_select(0, expand)
    beam_scores = torch.full((batch, beam_size), float("-inf"), device=device)
    beam_scores[:, 0] = 0.0
    prefixes = torch.zeros(batch * beam_size, 0, dtype=torch.long, device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    active = torch.arange(batch)  # the rows still searching; finished rows leave the batch
    limits = None if max_lengths is None else max_lengths.cpu()
    for position in range(max_length):
        alive = len(active)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        candidates = (beam_scores.view(alive * beam_size, 1) + log_probs).view(alive, beam_size * vocab)
        scores, flat = candidates.topk(min(2 * beam_size, beam_size * vocab), dim=1)
        beams, tokens = flat // vocab, flat % vocab
        ended = tokens == eos_id
        last = position + 1 == max_length
        at_limit = torch.full((alive,), last, dtype=torch.bool)
        if limits is not None:
            at_limit |= limits[active] <= position + 1
        # Hypotheses that end here: end-token candidates among the best beam_size (all alive beams at a limit).
        ends = ended[:, :beam_size] | at_limit.to(device).unsqueeze(1)
        for local, rank in ends.nonzero().tolist():
            row = int(active[local])
            if len(finished[row]) >= beam_size or scores[local, rank] == float("-inf"):
                continue
            body = prefixes[local * beam_size + int(beams[local, rank])]
            if not bool(ended[local, rank]):  # cut at a length limit: the last token is a real one
                body = torch.cat([body, tokens[local, rank].view(1)])
            log_prob = float(scores[local, rank])
            finished[row].append(Hypothesis(body.cpu(), log_prob, log_prob / length_penalty(position + 1, alpha)))
        done = torch.tensor([len(finished[int(row)]) >= beam_size for row in active]) | at_limit
        if bool(done.all()):
            break
        # The first beam_size candidates that do not end stay alive (a row has at most beam_size that end).
        keep = torch.sort(ended.int(), dim=1, stable=True).indices[:, :beam_size]
        going = (~done).nonzero().squeeze(1)
        keep, beams, tokens = keep[going.to(device)], beams[going.to(device)], tokens[going.to(device)]
        beam_scores = scores[going.to(device)].gather(1, keep)
        chosen = (going.to(device).unsqueeze(1) * beam_size + beams.gather(1, keep)).view(-1)
        next_tokens = tokens.gather(1, keep).view(-1)
        prefixes = torch.cat([prefixes.index_select(0, chosen), next_tokens.unsqueeze(1)], dim=1)
        active = active[going]
        state = reorder(state, chosen)
        logits, state = step(next_tokens, state)
    return [sorted(hypotheses, key=lambda h: -h.score)[:n_best] for hypotheses in finished]


def decode(
    step: StepFn,
    logits: Tensor,
    state: Any,
    max_length: int,
    eos_id: int,
    beam_size: int = 1,
    n_best: int = 1,
    alpha: float = 0.0,
    reorder: ReorderFn = index_select_state,
    temperature: float | None = None,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    max_lengths: Tensor | None = None,
) -> list[list[Hypothesis]]:
    """Greedy, sampling or beam search, chosen by the options, each as a list of hypotheses per row.

    ``beam_size > 1`` or ``n_best > 1`` runs :func:`beam_search`; otherwise :func:`sample`
    runs greedily, or with ``temperature`` draws one sequence. Greedy and sampled
    hypotheses carry no score (NaN); every hypothesis stops before ``eos_id``.

    Raises:
        ValueError: for a ``beam_size`` below 1, or a temperature with a beam.
    """
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive integer (1 is greedy), got {beam_size!r}")
    if temperature is not None and beam_size != 1:
        raise ValueError("sampling (temperature) draws one sequence: use beam_size=1 with a temperature")
    if beam_size > 1 or n_best > 1:
        return beam_search(step, logits, state, beam_size, max_length, eos_id, alpha, n_best, reorder, max_lengths)
    tokens = sample(step, logits, state, max_length, temperature or 0.0, top_k, generator, eos_id, max_lengths)
    results = []
    for row in tokens.cpu():
        ends = (row == eos_id).nonzero()
        body = row[: int(ends[0])] if len(ends) else row
        results.append([Hypothesis(body, float("nan"), float("nan"))])
    return results
