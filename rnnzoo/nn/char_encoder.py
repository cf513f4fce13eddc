"""Characters of every word -> one vector per word, so that unseen words still get a representation."""

from __future__ import annotations

from torch import Tensor, nn

from rnnzoo.nn.masking import lengths_to_mask
from rnnzoo.nn.pooling import SequencePooling


class CharEncoder(nn.Module):
    """Characters of every word ``[B, T, L]`` (id 0 = padding) -> one vector per word ``[B, T, output_size]``.

    Without ``rnn``: a convolution over character embeddings, max-pooled over each
    word's real characters (Ma and Hovy 2016). With ``rnn`` (a bidirectional backbone
    from the cell registry): its final states, read at each word's ends, concatenated
    (Lample et al. 2016).

    Args:
        vocab_size: characters in the vocabulary (id 0 is padding).
        embedding_size: features of each character embedding.
        hidden_size: CNN filters (ignored with ``rnn``).
        kernel_size: CNN width in characters.
        rnn: a bidirectional backbone reading ``embedding_size`` features, or None for the CNN.
    """

    def __init__(
        self, vocab_size: int, embedding_size: int, hidden_size: int, kernel_size: int = 3, rnn: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=0)
        self.rnn = rnn
        if rnn is None:
            self.conv = nn.Conv1d(embedding_size, hidden_size, kernel_size, padding=kernel_size // 2)
            self.output_size = hidden_size
        else:
            self.pooling = SequencePooling("last", rnn.output_size, bidirectional=True)
            self.output_size = rnn.output_size

    def forward(self, chars: Tensor, word_mask: Tensor) -> Tensor:
        """``chars [B, T, L]`` and the real-word mask ``[B, T]`` -> ``[B, T, output_size]`` (0 at padded words)."""
        batch, steps, width = chars.shape
        words = chars[word_mask]  # [N, L]: the real words only
        char_lengths = (words != 0).sum(1).clamp(min=1)
        embedded = self.embedding(words)
        if self.rnn is None:
            features = self.conv(embedded.transpose(1, 2)).transpose(1, 2)  # [N, L, H]
            real = lengths_to_mask(char_lengths, width).unsqueeze(2)
            encoded = features.masked_fill(~real, float("-inf")).max(dim=1).values
        else:
            outputs, _ = self.rnn(embedded, char_lengths)
            encoded = self.pooling(outputs, char_lengths)
        result = encoded.new_zeros(batch, steps, self.output_size)
        result[word_mask] = encoded
        return result
