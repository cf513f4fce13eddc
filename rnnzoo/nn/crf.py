"""A linear-chain CRF over per-step tag scores: log-likelihood, Viterbi decoding and BIO/BIOES constraints.

For emissions ``e [B, T, K]`` (one score per step and tag), transitions ``A [K, K]``
(``A[i, j]``: tag ``i`` followed by tag ``j``), start and end scores ``s``, ``u``,
a tag path ``y`` of a sequence of length ``n`` scores

    score(y) = s[y_0] + sum_t e[t, y_t] + sum_{t>0} A[y_{t-1}, y_t] + u[y_{n-1}]

and ``log p(y) = score(y) - log Z`` with ``log Z = logsumexp`` over all ``K^n``
paths, computed by the forward algorithm in ``O(n K^2)``. Everything is
vectorised over the batch; padded steps (beyond each sequence's length) are
never read. Transitions a tag scheme forbids (``O -> I-PER`` under BIO) can be
removed from both training and decoding (:func:`allowed_transitions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from rnnzoo.nn.masking import check_lengths, lengths_to_mask

TagScheme = Literal["BIO", "BIOES"]

FORBIDDEN = -1e4
"""Score added to a forbidden transition: exp(-1e4) is 0 in float32, and the sums stay finite."""


def split_tag(name: str, scheme: TagScheme) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``, ``"O"`` -> ``("O", "")``.

    Raises:
        ValueError: when ``name`` is neither ``O`` nor ``<prefix>-<type>`` with a
            prefix of ``scheme``.
    """
    if name == "O":
        return "O", ""
    prefix, dash, kind = name.partition("-")
    if not dash or not kind or prefix not in scheme:
        raise ValueError(f"tag {name!r} is not a {scheme} tag")
    return prefix, kind


def allowed_transitions(names: Sequence[str], scheme: TagScheme) -> tuple[Tensor, Tensor, Tensor]:
    """Which tag may start a sequence, follow another, and end it, under ``scheme``.

    BIO: ``I-X`` only follows ``B-X`` or ``I-X`` (so never starts a sequence).
    BIOES: additionally ``B-X`` and ``I-X`` go on with ``I-X`` or ``E-X`` only,
    ``E-X`` / ``S-X`` / ``O`` are followed by ``O``, ``B-*`` or ``S-*``, and a
    sequence starts with ``O``, ``B`` or ``S`` and ends with ``O``, ``E`` or ``S``.

    Args:
        names: the tag names, by tag index.
        scheme: ``BIO`` or ``BIOES``.

    Returns:
        ``(start [K], transitions [K, K], end [K])`` bool tensors, True where allowed.

    Raises:
        ValueError: naming the tags that do not belong to ``scheme``.
    """
    if scheme not in ("BIO", "BIOES"):
        raise ValueError(f"tag_scheme must be 'BIO', 'BIOES' or None, got {scheme!r}")
    parsed, bad = [], []
    for name in names:
        try:
            parsed.append(split_tag(name, scheme))
        except ValueError:
            bad.append(name)
    if bad:
        raise ValueError(
            f"a {scheme} constraint was asked for the CRF, but tag(s) {bad} are not {scheme} tags "
            f"('O' or {'/'.join(scheme.replace('O', ''))}-<type>); set tag_scheme to null for an unconstrained CRF"
        )

    def may_follow(previous: tuple[str, str], current: tuple[str, str]) -> bool:
        (p, p_kind), (c, c_kind) = previous, current
        if scheme == "BIO":
            return c != "I" or (p in "BI" and p_kind == c_kind)
        if c in "IE":
            return p in "BI" and p_kind == c_kind
        return p in "OES"

    size = len(parsed)
    transitions = torch.tensor([[may_follow(p, c) for c in parsed] for p in parsed], dtype=torch.bool)
    start = torch.tensor([prefix in ("O", "B", "S") for prefix, _ in parsed], dtype=torch.bool)
    end = torch.tensor([prefix in ("O", "E", "S") or scheme == "BIO" for prefix, _ in parsed], dtype=torch.bool)
    return start.reshape(size), transitions.reshape(size, size), end.reshape(size)


class LinearChainCRF(nn.Module):
    """A linear-chain CRF layer (see the module docstring for the model).

    The constraint masks are buffers (True everywhere until :meth:`constrain` is
    called), so a constrained CRF restores them from its state dict.

    Args:
        num_tags: number of tags ``K``.
    """

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be a positive integer, got {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        self.register_buffer("allowed_start", torch.ones(num_tags, dtype=torch.bool))
        self.register_buffer("allowed", torch.ones(num_tags, num_tags, dtype=torch.bool))
        self.register_buffer("allowed_end", torch.ones(num_tags, dtype=torch.bool))

    def constrain(self, names: Sequence[str], scheme: TagScheme) -> None:
        """Forbid the transitions ``scheme`` rules out for the tags ``names`` (see :func:`allowed_transitions`)."""
        if len(names) != self.num_tags:
            raise ValueError(f"{len(names)} tag names for a CRF over {self.num_tags} tags")
        start, transitions, end = allowed_transitions(names, scheme)
        self.allowed_start.copy_(start)
        self.allowed.copy_(transitions)
        self.allowed_end.copy_(end)

    def _scores(self) -> tuple[Tensor, Tensor, Tensor]:
        """Start, transition and end scores with the forbidden ones pushed to :data:`FORBIDDEN`."""
        return (
            self.start.masked_fill(~self.allowed_start, FORBIDDEN),
            self.transitions.masked_fill(~self.allowed, FORBIDDEN),
            self.end.masked_fill(~self.allowed_end, FORBIDDEN),
        )

    def _check(self, emissions: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        if emissions.dim() != 3 or emissions.shape[-1] != self.num_tags:
            raise ValueError(f"emissions must be [batch, steps, {self.num_tags}], got {list(emissions.shape)}")
        batch, steps = emissions.shape[:2]
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long)
        lengths = check_lengths(lengths, batch, steps).to(emissions.device)
        return lengths, lengths_to_mask(lengths, steps)

    def path_score(self, emissions: Tensor, tags: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``score(y)`` of the tag paths ``tags [B, T]`` (padded steps ignored) -> ``[B]``."""
        lengths, mask = self._check(emissions, lengths)
        start, transitions, end = self._scores()
        emissions = emissions.float()
        tags = tags.masked_fill(~mask, 0)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
        moved = transitions[tags[:, :-1], tags[:, 1:]]
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        return start[tags[:, 0]] + (emitted * mask).sum(1) + (moved * mask[:, 1:]).sum(1) + end[last]

    def log_partition(self, emissions: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``log Z`` of every sequence by the forward algorithm -> ``[B]``."""
        lengths, mask = self._check(emissions, lengths)
        start, transitions, end = self._scores()
        emissions = emissions.float()
        alpha = start + emissions[:, 0]  # [B, K]: log-sum of the paths ending in each tag
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    def log_likelihood(self, emissions: Tensor, tags: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``log p(tags | emissions)`` of each sequence -> ``[B]``.

        Args:
            emissions: ``[B, T, K]`` per-step tag scores.
            tags: ``[B, T]`` gold tag indices (padded steps may hold anything).
            lengths: ``[B]`` real lengths, or None when nothing is padded.
        """
        return self.path_score(emissions, tags, lengths) - self.log_partition(emissions, lengths)

    def forward(self, emissions: Tensor, tags: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The training loss: negative log-likelihood summed over the batch, divided by its real steps."""
        lengths, _ = self._check(emissions, lengths)
        return -self.log_likelihood(emissions, tags, lengths).sum() / lengths.sum()

    @torch.no_grad()
    def decode(self, emissions: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The most likely tag path of every sequence (Viterbi) -> ``[B, T]``; padded steps hold 0."""
        lengths, mask = self._check(emissions, lengths)
        start, transitions, end = self._scores()
        emissions = emissions.float()
        batch, steps, _ = emissions.shape
        best = start + emissions[:, 0]  # [B, K]: best score of a path ending in each tag
        keep = torch.arange(self.num_tags, device=emissions.device).expand(batch, -1)
        pointers = []
        for t in range(1, steps):
            scores, previous = (best.unsqueeze(2) + transitions).max(dim=1)
            real = mask[:, t].unsqueeze(1)
            best = torch.where(real, scores + emissions[:, t], best)
            pointers.append(torch.where(real, previous, keep))  # padding points to itself
        tag = (best + end).argmax(dim=1)
        path = [tag]
        for previous in reversed(pointers):
            tag = previous.gather(1, tag.unsqueeze(1)).squeeze(1)
            path.append(tag)
        path.reverse()
        # The padded tail repeated the last real tag; the path read back through it unchanged.
        return torch.stack(path, dim=1).masked_fill(~mask, 0)
