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

from rnnzoo.errors import preview
from rnnzoo.nn.masking import check_lengths, lengths_to_mask

TagScheme = Literal["BIO", "BIOES"]

FORBIDDEN = float("-inf")
"""Score of a forbidden transition: no emission, however large, makes a path through it possible.

The forward algorithm sums with :func:`_logsumexp`, whose gradient stays finite where every term is ``-inf``.
"""


def _logsumexp(scores: Tensor, dim: int) -> Tensor:
    """``torch.logsumexp`` whose gradient is 0, not NaN, where every term is ``-inf``.

    ``torch.logsumexp`` returns ``-inf`` there but back-propagates ``exp(-inf - -inf)``, a NaN
    that would reach every weight; here the all ``-inf`` slices sum 1 instead of 0 before the
    log, and are set back to ``-inf`` after.
    """
    peak = scores.amax(dim, keepdim=True).detach()
    impossible = torch.isneginf(peak)
    peak = peak.masked_fill(impossible, 0.0)
    total = (scores - peak).exp().sum(dim, keepdim=True).masked_fill(impossible, 1.0)
    return (total.log() + peak).masked_fill(impossible, float("-inf")).squeeze(dim)


def split_tag(name: str, scheme: TagScheme) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``, ``"O"`` -> ``("O", "")``.

    Raises:
        ValueError: when ``name`` is neither ``O`` nor ``<prefix>-<type>`` with a
            one-letter prefix of ``scheme`` other than ``O`` (``BI-X``, ``O-X``, ``-X`` are not tags).
    """
    if name == "O":
        return "O", ""
    prefix, dash, kind = name.partition("-")
    if not dash or not kind or len(prefix) != 1 or prefix not in scheme.replace("O", ""):
        raise ValueError(f"tag {name!r} is not a {scheme} tag")
    return prefix, kind


def _check_reachable(parsed: Sequence[tuple[str, str]], scheme: TagScheme) -> None:
    """Refuse a tag set under which some entity type could never be tagged (a BIO set under BIOES).

    Under BIO an entity starts with ``B-X``; under BIOES it is ``S-X`` or ``B-X ... E-X``. A type
    with ``I-X`` but no ``B-X`` (IOB1 data), or ``B-X`` but no ``E-X`` under BIOES, would only have
    forbidden paths: every one of its tags would be impossible.
    """
    prefixes: dict[str, set[str]] = {}
    for prefix, kind in parsed:
        if prefix != "O":
            prefixes.setdefault(kind, set()).add(prefix)
    needs = {"BIO": {"I": "B"}, "BIOES": {"B": "E", "I": "BE", "E": "B"}}[scheme]
    bio_only = not any(prefix in "ES" for prefix, _ in parsed)
    for kind, seen in sorted(prefixes.items()):
        for prefix, required in needs.items():
            missing = [f"{other}-{kind}" for other in required if prefix in seen and other not in seen]
            if missing:
                hint = " (the tags are BIO: set tag_scheme to BIO)" if scheme == "BIOES" and bio_only else ""
                raise ValueError(
                    f"under a {scheme} constraint the tag {prefix}-{kind} needs {' and '.join(missing)}, which the "
                    f"tag set lacks: every {kind} entity would be impossible{hint}; or set tag_scheme to null"
                )


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
        ValueError: naming the tags that do not belong to ``scheme``, or a tag the
            scheme makes impossible (``B-X`` without ``E-X`` under BIOES).
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
            f"a {scheme} constraint was asked for the CRF, but tag(s) {preview(bad)} are not {scheme} tags "
            f"('O' or {'/'.join(scheme.replace('O', ''))}-<type>); set tag_scheme to null for an unconstrained CRF"
        )
    _check_reachable(parsed, scheme)

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

    def _check(self, emissions: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Validated ``(emissions, lengths, mask)``, the emissions in the dtype the CRF computes in.

        That is the wider of the emissions' and the CRF's own dtypes, float32 at least: a float64
        CRF computes in float64, and half-precision scores (mixed precision) are summed in float32.
        """
        if emissions.dim() != 3 or emissions.shape[-1] != self.num_tags:
            raise ValueError(f"emissions must be [batch, steps, {self.num_tags}], got {list(emissions.shape)}")
        batch, steps = emissions.shape[:2]
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long)
        lengths = check_lengths(lengths, batch, steps).to(emissions.device)
        dtype = torch.promote_types(torch.promote_types(emissions.dtype, self.transitions.dtype), torch.float32)
        return emissions.to(dtype), lengths, lengths_to_mask(lengths, steps)

    def _check_tags(self, tags: Tensor, emissions: Tensor, mask: Tensor) -> Tensor:
        """``tags`` as int64, checked against the emissions: same ``[batch, steps]``, real steps in ``[0, K)``."""
        if tags.shape != emissions.shape[:2]:
            raise ValueError(
                f"tags must be [batch, steps] = {list(emissions.shape[:2])} like the emissions "
                f"{list(emissions.shape)}, got {list(tags.shape)}"
            )
        if tags.is_floating_point() or tags.is_complex() or tags.dtype == torch.bool:
            raise ValueError(f"tags must be integer tag indices, got {tags.dtype}")
        tags = tags.long().masked_fill(~mask, 0)
        if bool(((tags < 0) | (tags >= self.num_tags)).any()):
            raise ValueError(
                f"tags must lie in [0, {self.num_tags}) at the real steps (padding may hold anything), "
                f"got min {int(tags.min())} and max {int(tags.max())}"
            )
        return tags

    def path_score(self, emissions: Tensor, tags: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``score(y)`` of the tag paths ``tags [B, T]`` (padded steps ignored) -> ``[B]``."""
        emissions, lengths, mask = self._check(emissions, lengths)
        tags = self._check_tags(tags, emissions, mask)
        start, transitions, end = self._scores()
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
        moved = transitions[tags[:, :-1], tags[:, 1:]]
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        return start[tags[:, 0]] + (emitted * mask).sum(1) + (moved * mask[:, 1:]).sum(1) + end[last]

    def log_partition(self, emissions: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``log Z`` of every sequence by the forward algorithm -> ``[B]``."""
        emissions, lengths, mask = self._check(emissions, lengths)
        start, transitions, end = self._scores()
        alpha = start + emissions[:, 0]  # [B, K]: log-sum of the paths ending in each tag
        for t in range(1, emissions.shape[1]):
            step = _logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
        return _logsumexp(alpha + end, dim=1)

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
        checked, lengths, mask = self._check(emissions, lengths)
        self._check_allowed(self._check_tags(tags, checked, mask), lengths, mask)
        return -self.log_likelihood(emissions, tags, lengths).sum() / lengths.sum()

    def _check_allowed(self, tags: Tensor, lengths: Tensor, mask: Tensor) -> None:
        """Refuse gold paths the constraint forbids: their likelihood is 0, so the loss would be infinite."""
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        moves = ~self.allowed[tags[:, :-1], tags[:, 1:]] & mask[:, 1:]
        bad = ~self.allowed_start[tags[:, 0]] | moves.any(1) | ~self.allowed_end[last]
        if not bool(bad.any()):
            return
        row = int(bad.nonzero()[0])
        path = tags[row, : int(lengths[row])].tolist()
        if not self.allowed_start[path[0]]:
            where = f"starts with tag {path[0]}"
        elif moves[row].any():
            step = int(moves[row].nonzero()[0]) + 1
            where = f"has tag {path[step - 1]} followed by tag {path[step]} at step {step}"
        else:
            where = f"ends with tag {path[-1]}"
        raise ValueError(
            f"gold tag path {row} of the batch {where}, which the CRF's tag-scheme constraint forbids "
            f"(tags {preview(path)}): its likelihood is 0 and the loss infinite. Fix the data's tags "
            "(IOB1 data, where I-X starts an entity, converts to BIO), or set tag_scheme to null"
        )

    @torch.no_grad()
    def decode(self, emissions: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The most likely tag path of every sequence (Viterbi) -> ``[B, T]``; padded steps hold 0."""
        emissions, lengths, mask = self._check(emissions, lengths)
        start, transitions, end = self._scores()
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
