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

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import torch
from torch import Tensor

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]
"""``(tokens [B], state) -> (logits [B, V], state)``."""

ReorderFn = Callable[[Any, Tensor], Any]
"""``(state, indices [B']) -> state`` whose row ``i`` is the old row ``indices[i]``."""


@dataclass(frozen=True)
class GenerationConfig:
    """How a generating task decodes: one object, from Python, a recipe or the command line.

    ``beam_size > 1`` or ``n_best > 1`` runs beam search; otherwise ``greedy`` (or no
    ``temperature``, or temperature 0) takes the most likely token at every step, and a
    ``temperature`` samples. A task fills the options left None from its own defaults
    (``max_decode_length``, ``length_penalty``, ...).

    Attributes:
        max_length: most tokens generated per sequence, end token included.
        min_length: the end token is not allowed before this many tokens.
        beam_size: beams per input (1: no beam search).
        n_best: hypotheses returned per input, best first (beam search; at most ``beam_size``).
        length_penalty: GNMT alpha of beam search (0: raw log-probability).
        greedy: decode greedily even when a ``temperature`` is set.
        temperature: sample with this temperature (0 or None: greedy).
        top_k: sample among the ``k`` most likely tokens only.
        top_p: sample among the smallest set of tokens whose probability reaches ``p`` (nucleus sampling).
        seed: seed of the sampling generator, for reproducible samples.
    """

    max_length: int | None = None
    min_length: int = 0
    beam_size: int = 1
    n_best: int = 1
    length_penalty: float | None = None
    greedy: bool = False
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        """Check every option, so a bad one is one clear error before decoding starts."""
        if not isinstance(self.beam_size, int) or self.beam_size < 1:
            raise ValueError(f"beam_size must be a positive integer (1: no beam search), got {self.beam_size!r}")
        if not isinstance(self.n_best, int) or not 1 <= self.n_best <= max(self.beam_size, 1):
            raise ValueError(f"n_best must lie in [1, beam_size={self.beam_size}], got {self.n_best!r}")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(
                f"max_length (max_new_tokens of a language model) must be a positive number of tokens, "
                f"got {self.max_length}"
            )
        if self.min_length < 0 or (self.max_length is not None and self.min_length > self.max_length):
            raise ValueError(f"min_length must lie in [0, max_length={self.max_length}], got {self.min_length}")
        if self.temperature is not None and not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0 (0 is greedy), got {self.temperature}")
        if self.top_k is not None and self.top_k <= 0:
            raise ValueError(f"top_k must be a positive integer or None, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}")
        if self.length_penalty is not None and not (math.isfinite(self.length_penalty) and self.length_penalty >= 0):
            raise ValueError(f"length_penalty (the GNMT alpha) must be a finite number >= 0, got {self.length_penalty}")
        if self.samples and self.beam_size > 1:
            raise ValueError("sampling (temperature) draws one sequence: use beam_size=1 with a temperature")

    @property
    def samples(self) -> bool:
        """Whether decoding samples (a positive temperature, not greedy)."""
        return not self.greedy and bool(self.temperature)

    @property
    def searches(self) -> bool:
        """Whether decoding runs beam search."""
        return self.beam_size > 1 or self.n_best > 1

    @classmethod
    def option_names(cls) -> list[str]:
        """The option names, as ``predict(..., **options)`` takes them."""
        return [field.name for field in fields(cls)]

    def generator(self, device: torch.device | str) -> torch.Generator | None:
        """A generator seeded with :attr:`seed` on ``device``, or None (the global one)."""
        return None if self.seed is None else torch.Generator(device=device).manual_seed(self.seed)


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
    top_p: float | None = None,
) -> Tensor:
    """Pick the next token of every row of ``logits [B, V]``.

    Args:
        logits: ``[B, V]`` unnormalised next-token scores.
        temperature: divides the logits; ``0`` means greedy (argmax).
        top_k: sample only among the ``k`` most likely tokens.
        generator: a seeded ``torch.Generator`` for reproducible samples.
        top_p: sample only among the most likely tokens whose probabilities add up to ``p``.

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
    if top_p is not None and top_p < 1:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        before = torch.softmax(ordered, dim=-1).cumsum(-1) - torch.softmax(ordered, dim=-1)
        logits = logits.scatter(1, order, ordered.masked_fill(before >= top_p, float("-inf")))
    probabilities = torch.softmax(logits, dim=-1)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


def forbid_end(logits: Tensor, eos_id: int | None, position: int, min_length: int) -> Tensor:
    """``logits`` with the end token forbidden while fewer than ``min_length`` tokens were generated."""
    if eos_id is None or position >= min_length:
        return logits
    return logits.index_fill(-1, torch.tensor([eos_id], device=logits.device), float("-inf"))


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
    top_p: float | None = None,
    min_length: int = 0,
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
        top_p: see :func:`sample_next`.
        min_length: the end token is forbidden before this many tokens.

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
        logits = forbid_end(logits, eos_id, position, min_length)
        token = sample_next(logits, temperature, top_k, generator, top_p)
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
    eos_id: int | None,
    alpha: float = 0.0,
    n_best: int = 1,
    reorder: ReorderFn = index_select_state,
    max_lengths: Tensor | None = None,
    min_length: int = 0,
) -> list[list[Hypothesis]]:
    """Batched beam search: keep the ``beam_size`` best prefixes of every row, all rows in one batch.

    Each step, the ``2 * beam_size`` best candidates of a row are read in order: those ending in
    ``eos_id`` among the first ``beam_size`` finish (scored ``log_prob / length_penalty(length,
    alpha)``, the end token counted), the first ``beam_size`` others stay alive. A row is done
    with ``beam_size`` finished hypotheses, or at ``max_length`` (or its ``max_lengths`` entry),
    where its alive beams finish as they are; done rows leave the batch. ``beam_size = 1`` is
    greedy; a row's result does not depend on the other rows (each starts as ``beam_size`` copies,
    only the first alive, so the first step picks distinct tokens).

    Args:
        step: the model's one-step function.
        logits: ``[B, V]`` logits of the first token (after the start token).
        state: the model state for those ``B`` rows.
        beam_size: beams per row (1: greedy).
        max_length: most tokens per hypothesis, end token included.
        eos_id: the end token; None (a model without one) ends every hypothesis at ``max_length``.
        alpha: GNMT length-penalty exponent (0: raw log-probability; 0.6 to 1 favours longer output).
        n_best: hypotheses returned per row, best first (at most ``beam_size``).
        reorder: ``(state, indices) -> state`` picking rows (default: :func:`index_select_state`, batch first).
        max_lengths: ``[B]`` per-row limits below ``max_length`` (e.g. from the source lengths), or None.
        min_length: the end token is forbidden before this many tokens.

    Returns:
        For every row, its ``n_best`` best :class:`Hypothesis`, best first.
    """
    GenerationConfig(max_length=max_length, beam_size=beam_size, n_best=n_best, length_penalty=alpha)  # checks
    (batch, vocab), beams = logits.shape, _Beams(logits.shape[0], beam_size, logits.device)
    expand = torch.arange(batch, device=logits.device).repeat_interleave(beam_size)
    state, logits = reorder(state, expand), logits.index_select(0, expand)
    limits = torch.full((batch,), max_length) if max_lengths is None else max_lengths.cpu().clamp(max=max_length)
    for position in range(max_length):
        alive = len(beams.active)
        log_probs = torch.log_softmax(forbid_end(logits.float(), eos_id, position, min_length), dim=-1)
        candidates = (beams.scores.view(alive * beam_size, 1) + log_probs).view(alive, beam_size * vocab)
        scores, flat = candidates.topk(min(2 * beam_size, beam_size * vocab), dim=1)
        origins, tokens = flat // vocab, flat % vocab
        ended = tokens == (-1 if eos_id is None else eos_id)  # no token is -1: nothing ends early
        at_limit = limits[beams.active] <= position + 1
        beams.finish(ended, at_limit, scores, origins, tokens, length_penalty(position + 1, alpha))
        done = torch.tensor([len(beams.finished[int(row)]) >= beam_size for row in beams.active]) | at_limit
        if bool(done.all()):
            break
        chosen, next_tokens = beams.advance(done, ended, scores, origins, tokens)
        logits, state = step(next_tokens, reorder(state, chosen))
    return [sorted(hypotheses, key=lambda h: -h.score)[:n_best] for hypotheses in beams.finished]


class _Beams:
    """Beam search's bookkeeping: the alive prefixes and their scores, the rows still searching, what finished."""

    def __init__(self, batch: int, beam_size: int, device: torch.device) -> None:
        self.beam_size = beam_size
        self.scores = torch.full((batch, beam_size), float("-inf"), device=device)
        self.scores[:, 0] = 0.0
        self.prefixes = torch.zeros(batch * beam_size, 0, dtype=torch.long, device=device)
        self.finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
        self.active = torch.arange(batch)  # the rows still searching; finished rows leave the batch

    def finish(
        self, ended: Tensor, at_limit: Tensor, scores: Tensor, origins: Tensor, tokens: Tensor, penalty: float
    ) -> None:
        """Finish the hypotheses that end here: end-token candidates among the best, all alive beams at a limit."""
        ends = ended[:, : self.beam_size] | at_limit.to(ended.device).unsqueeze(1)
        for local, rank in ends.nonzero().tolist():
            row = int(self.active[local])
            if len(self.finished[row]) >= self.beam_size or scores[local, rank] == float("-inf"):
                continue
            body = self.prefixes[local * self.beam_size + int(origins[local, rank])]
            if not bool(ended[local, rank]):  # cut at a length limit: the last token is a real one
                body = torch.cat([body, tokens[local, rank].view(1)])
            log_prob = float(scores[local, rank])
            self.finished[row].append(Hypothesis(body.cpu(), log_prob, log_prob / penalty))

    def advance(
        self, done: Tensor, ended: Tensor, scores: Tensor, origins: Tensor, tokens: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Keep the first ``beam_size`` candidates that do not end, on the rows not done: ``(chosen rows, tokens)``."""
        keep = torch.sort(ended.int(), dim=1, stable=True).indices[:, : self.beam_size]
        going = (~done).nonzero().squeeze(1).to(ended.device)
        keep, origins, tokens = keep[going], origins[going], tokens[going]
        self.scores = scores[going].gather(1, keep)
        chosen = (going.unsqueeze(1) * self.beam_size + origins.gather(1, keep)).view(-1)
        next_tokens = tokens.gather(1, keep).view(-1)
        self.prefixes = torch.cat([self.prefixes.index_select(0, chosen), next_tokens.unsqueeze(1)], dim=1)
        self.active = self.active[going.cpu()]
        return chosen, next_tokens


def decode(
    step: StepFn,
    logits: Tensor,
    state: Any,
    config: GenerationConfig,
    eos_id: int | None,
    reorder: ReorderFn = index_select_state,
    max_lengths: Tensor | None = None,
) -> list[list[Hypothesis]]:
    """Greedy, sampling or beam search as ``config`` says, each as a list of hypotheses per row.

    Greedy and sampled hypotheses carry no score (NaN); every hypothesis stops before ``eos_id``.

    Args:
        step: the model's one-step function.
        logits: ``[B, V]`` logits of the first token.
        state: the model state for those ``B`` rows.
        config: the decoding options; ``max_length`` and ``length_penalty`` must be filled in.
        eos_id: the end token, or None.
        reorder: see :func:`beam_search`.
        max_lengths: ``[B]`` per-row limits below ``config.max_length``, or None.
    """
    if config.max_length is None:
        raise ValueError("the generation config needs a max_length")
    if config.searches:
        alpha = config.length_penalty or 0.0
        return beam_search(
            step,
            logits,
            state,
            config.beam_size,
            config.max_length,
            eos_id,
            alpha,
            config.n_best,
            reorder,
            max_lengths,
            config.min_length,
        )
    temperature = config.temperature if config.samples else 0.0
    generator = config.generator(logits.device)
    tokens = sample(
        step, logits, state, config.max_length, temperature, config.top_k, generator, eos_id, max_lengths,
        config.top_p, config.min_length,
    )  # fmt: skip
    results = []
    for row in tokens.cpu():
        ends = (row == eos_id).nonzero() if eos_id is not None else []
        body = row[: int(ends[0])] if len(ends) else row
        results.append([Hypothesis(body, float("nan"), float("nan"))])
    return results
