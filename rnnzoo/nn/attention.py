"""Attention of decoder states over a padded memory (encoder outputs), padding masked out.

Scores, as in OpenNMT-py's global attention (Luong et al. 2015, section 3.1):

* ``additive`` (Bahdanau et al. 2015, "mlp"): ``v^T tanh(W_q q + W_k m_s)``.
* ``general`` (Luong): ``q^T W m_s``.
* ``dot`` (Luong): ``q^T m_s`` (query and memory of the same size).

The memory side (``W_k m`` or ``W m``) depends only on the source, so
:meth:`Attention.keys` computes it once per sentence and decoding reuses it at
every step. Weights come from :func:`~rnnzoo.masking.masked_softmax`: padded
source positions get exactly zero weight and the rest sum to one.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from rnnzoo.nn.masking import masked_softmax

AttentionScore = Literal["additive", "general", "dot"]


class Attention(nn.Module):
    """Score queries against a memory, softmax over real positions, return the weighted memory.

    Args:
        score: ``additive``, ``general`` or ``dot`` (see the module docstring).
        query_size: features of a query (the decoder's hidden state).
        memory_size: features of a memory step (the encoder's output).
        attention_size: hidden features of the additive score (default ``query_size``).
    """

    def __init__(
        self, score: AttentionScore, query_size: int, memory_size: int, attention_size: int | None = None
    ) -> None:
        super().__init__()
        if score not in ("additive", "general", "dot"):
            raise ValueError(f"attention score must be 'additive', 'general' or 'dot', got {score!r}")
        if score == "dot" and query_size != memory_size:
            raise ValueError(
                f"dot attention needs query_size == memory_size, got {query_size} and {memory_size}; "
                "use 'general', or make the decoder's hidden size equal the encoder's output size"
            )
        self.score = score
        if score == "additive":
            attention_size = attention_size or query_size
            self.key = nn.Linear(memory_size, attention_size, bias=False)
            self.query = nn.Linear(query_size, attention_size)
            self.energy = nn.Linear(attention_size, 1, bias=False)
        elif score == "general":
            self.key = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """The memory side of the score, computed once per source: ``[B, S, memory_size] -> [B, S, *]``."""
        return memory if self.score == "dot" else self.key(memory)

    def forward(self, queries: Tensor, memory: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Attend from every query to the memory.

        Args:
            queries: ``[B, T, query_size]`` (``T = 1`` when decoding step by step).
            memory: ``[B, S, memory_size]`` encoder outputs.
            keys: :meth:`keys` of ``memory``.
            mask: ``[B, S]`` bool, True at real source positions.

        Returns:
            ``(contexts [B, T, memory_size], weights [B, T, S])``; weights are zero on
            padded positions and sum to one over the real ones.
        """
        if self.score == "additive":
            # [B, T, 1, A] + [B, 1, S, A] -> [B, T, S]
            energies = self.energy((self.query(queries).unsqueeze(2) + keys.unsqueeze(1)).tanh()).squeeze(-1)
        else:
            energies = queries @ keys.transpose(1, 2)
        weights = masked_softmax(energies, mask.unsqueeze(1))
        return weights @ memory, weights
