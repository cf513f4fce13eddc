"""A token embedding that pretrained word vectors can fill: trained or frozen, projected when its width differs.

:class:`PretrainedEmbedding` is an ``nn.Embedding`` (same parameter name, ``weight``, so
models built before it load unchanged) with two additions:

* ``vectors_size``: the table is as wide as the pretrained vectors, and a trainable
  linear layer (``projection``) maps each row to ``embedding_size``, what the model reads;
* ``freeze``: the table is not trained (its rows stay the vectors); the projection still is;
* ``trained_size``: a second, trained table of that width whose rows are concatenated to the
  vectors' (Kim 2014's two channels, static and trained; Stanza's pretrained plus trained word
  embeddings): what the data teaches goes there, while the vectors, frozen, stay in one space
  with the words the training data never showed. It starts at zeros, so such a word reads its
  vector and zeros.

:meth:`PretrainedEmbedding.load_vectors` fills the rows from :class:`~rnnzoo.embeddings.WordVectors`
through :func:`~rnnzoo.embeddings.align`; :func:`vector_words` lists a tokenizer's words,
with one clear error for tokenizers whose tokens are not words.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rnnzoo.embeddings import Coverage, WordVectors, align, vocabulary_words
from rnnzoo.tokenizers import CharTokenizer, PairTokenizer, TextTokenizer, Tokenizer


class PretrainedEmbedding(nn.Embedding):
    """Token ids ``[...]`` -> features ``[..., embedding_size]``, rows optionally from pretrained vectors.

    Args:
        num_embeddings: vocabulary size.
        embedding_size: width of the outputs (what the model reads).
        vectors_size: width of the table, i.e. of the pretrained vectors; when it differs from
            ``embedding_size`` a trainable ``Linear(vectors_size, embedding_size)`` follows the
            table. None: ``embedding_size`` (no projection).
        freeze: keep the table fixed in training (the projection, if any, still trains).
        padding_idx: as ``nn.Embedding``'s (that row gets no gradient).
        trained_size: width of a second, trained table concatenated after the first (0: none);
            the outputs are then ``embedding_size + trained_size`` wide (:attr:`output_size`).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_size: int,
        vectors_size: int | None = None,
        freeze: bool = False,
        padding_idx: int | None = None,
        trained_size: int = 0,
    ) -> None:
        width = embedding_size if vectors_size is None else vectors_size
        if width <= 0 or embedding_size <= 0 or trained_size < 0:
            raise ValueError(
                f"embedding sizes must be positive, got embedding_size={embedding_size}, vectors_size={vectors_size} "
                f"and trained_size={trained_size}"
            )
        super().__init__(num_embeddings, width, padding_idx=padding_idx)
        self.output_size = embedding_size + trained_size
        self.projection = nn.Linear(width, embedding_size) if width != embedding_size else None
        self.trained = nn.Embedding(num_embeddings, trained_size, padding_idx=padding_idx) if trained_size else None
        if self.trained is not None:  # zeros: a word the training data never shows adds nothing to its vector
            nn.init.zeros_(self.trained.weight)
        self.weight.requires_grad_(not freeze)

    @property
    def frozen(self) -> bool:
        """Whether the table is kept fixed in training."""
        return not self.weight.requires_grad

    def forward(self, ids: Tensor) -> Tensor:
        """The rows of ``ids`` (projected to ``embedding_size``), then those of the trained table if any."""
        rows = super().forward(ids)
        rows = rows if self.projection is None else self.projection(rows)
        return rows if self.trained is None else torch.cat([rows, self.trained(ids).to(rows.dtype)], dim=-1)

    def load_vectors(
        self, vectors: WordVectors, words: Sequence[str], generator: torch.Generator | None = None
    ) -> Coverage:
        """Fill row ``i`` with the vector of ``words[i]`` (exact, then lower-cased match; see :func:`align`).

        Words with no vector are drawn from a normal distribution with the vectors' own standard
        deviation (as Kim 2014 draws them, so they sit on the same scale); ``<pad>`` gets zeros.

        Args:
            vectors: from :func:`~rnnzoo.embeddings.load_vectors`.
            words: the vocabulary by id (:func:`vector_words`), one per row.
            generator: random generator of the rows with no vector.

        Returns:
            How many words got a vector.

        Raises:
            ValueError: when the vectors' width is not the table's (naming ``embedding_size`` and
                ``vectors_size``), the words are not one per row, or no word has a vector.
        """
        if vectors.dim != self.embedding_dim:
            raise ValueError(
                f"the vectors of {vectors.source or 'the embeddings file'} are {vectors.dim} wide but the embedding "
                f"table is {self.embedding_dim} wide: set embedding_size to {vectors.dim}, or vectors_size to "
                f"{vectors.dim} to learn a projection from the vectors to embedding_size"
            )
        if len(words) != self.num_embeddings:
            raise ValueError(
                f"{len(words)} words for an embedding of {self.num_embeddings} rows: give one word per row"
            )
        init_std = float(vectors.vectors.std()) if len(vectors) > 1 else 0.1
        matrix, coverage = align(vectors, words, init_std=init_std, generator=generator)
        with torch.no_grad():
            self.weight.copy_(matrix.to(self.weight.device, self.weight.dtype))
        return coverage

    def extra_repr(self) -> str:
        """``nn.Embedding``'s, plus whether the table is frozen."""
        return super().extra_repr() + (", frozen" if self.frozen else "")


def vector_words(tokenizer: Tokenizer | None, option: str = "embeddings") -> list[str]:
    """The words of a word-level tokenizer by id, for :meth:`PretrainedEmbedding.load_vectors`.

    Args:
        tokenizer: a :class:`~rnnzoo.tokenizers.WordVocabulary` or a word-level
            :class:`~rnnzoo.tokenizers.TextTokenizer` (a pair: pass its ``source``).
        option: the option that asked for vectors, named in messages.

    Raises:
        RuntimeError: without a tokenizer (the model was not given its data).
        ValueError: for characters or BPE pieces, which are not the words of a vectors file.
    """
    if tokenizer is None:
        raise RuntimeError(f"{option}: the model has no tokenizer yet to match the vectors to; fit it on a data module")
    if isinstance(tokenizer, CharTokenizer):
        raise ValueError(
            f"{option}: word vectors need word tokens, but this model reads characters ({tokenizer!r}); use a "
            f"word-level tokenizer (tokenizer: word), or drop {option}"
        )
    if isinstance(tokenizer, TextTokenizer) and not tokenizer.word_level:
        raise ValueError(
            f"{option}: word vectors need word tokens, but {tokenizer!r} splits text into BPE pieces (such as "
            f"'Ġthe'), which are not the words of a vectors file; use tokenizer: word, or drop {option}"
        )
    if isinstance(tokenizer, PairTokenizer):
        raise TypeError(f"{option}: a PairTokenizer holds two vocabularies; pass its source or target tokenizer")
    return vocabulary_words(tokenizer)
