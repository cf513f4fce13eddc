"""PretrainedEmbedding: an nn.Embedding that word vectors fill, frozen or projected; vector_words' errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnzoo.embeddings import WordVectors
from rnnzoo.nn.embedding import PretrainedEmbedding, vector_words
from rnnzoo.tokenizers import CharTokenizer, PairTokenizer, TextTokenizer, WordVocabulary

VOCABULARY = ["<pad>", "<unk>", "the", "Cat", "dog", "zebra-ish"]


def vectors(dim: int = 4) -> WordVectors:
    words = ["the", "cat", "dog", "fish"]
    rows = torch.arange(len(words) * dim, dtype=torch.float).view(len(words), dim) / 8 - 1
    return WordVectors(words, rows, source="tiny.txt")


def test_without_vectors_it_is_an_embedding_with_the_same_state_dict():
    plain = nn.Embedding(10, 6, padding_idx=0)
    embedding = PretrainedEmbedding(10, 6, padding_idx=0)
    assert list(embedding.state_dict()) == ["weight"] and embedding.projection is None
    embedding.load_state_dict(plain.state_dict())  # models built before PretrainedEmbedding load unchanged
    ids = torch.tensor([[0, 3, 9]])
    torch.testing.assert_close(embedding(ids), plain(ids))
    assert embedding.output_size == 6 and not embedding.frozen


def test_rows_take_their_words_vectors_pad_zeros_and_missing_words_random():
    embedding = PretrainedEmbedding(len(VOCABULARY), 4, padding_idx=0)
    coverage = embedding.load_vectors(vectors(), VOCABULARY, generator=torch.Generator().manual_seed(0))
    source = vectors()
    torch.testing.assert_close(embedding.weight[2], source["the"])
    torch.testing.assert_close(embedding.weight[3], source["cat"])  # 'Cat' matched lower-cased
    torch.testing.assert_close(embedding.weight[4], source["dog"])
    assert embedding.weight[0].abs().sum() == 0  # <pad>
    assert not torch.equal(embedding.weight[5], torch.zeros(4))  # no vector: random
    assert (coverage.exact, coverage.lowercased, coverage.missing, coverage.special) == (2, 1, 1, 2)


def test_a_projection_maps_the_vectors_to_embedding_size_and_trains_when_the_table_is_frozen():
    embedding = PretrainedEmbedding(len(VOCABULARY), 16, vectors_size=4, freeze=True)
    embedding.load_vectors(vectors(), VOCABULARY)
    assert embedding.weight.shape == (len(VOCABULARY), 4) and embedding.output_size == 16
    outputs = embedding(torch.tensor([[2, 3], [4, 0]]))
    assert outputs.shape == (2, 2, 16)
    outputs.sum().backward()
    assert embedding.weight.grad is None and embedding.projection.weight.grad is not None
    assert "frozen" in repr(embedding)


def test_a_width_that_is_not_the_tables_is_one_clear_error():
    embedding = PretrainedEmbedding(len(VOCABULARY), 8)
    with pytest.raises(
        ValueError,
        match=r"tiny.txt are 4 wide but the embedding table is 8 wide: set embedding_size to 4, or vectors_size to 4",
    ):
        embedding.load_vectors(vectors(), VOCABULARY)
    with pytest.raises(ValueError, match="3 words for an embedding of 6 rows"):
        PretrainedEmbedding(len(VOCABULARY), 4).load_vectors(vectors(), VOCABULARY[:3])


def test_no_word_covered_is_one_clear_error():
    with pytest.raises(ValueError, match="no word of the vocabulary"):
        PretrainedEmbedding(3, 4).load_vectors(vectors(), ["<pad>", "<unk>", "qwerty"])


def test_vector_words_of_word_tokenizers_and_clear_errors_for_the_others():
    texts = ["the cat sat", "the dog ran"]
    assert vector_words(WordVocabulary(VOCABULARY)) == VOCABULARY
    words = vector_words(TextTokenizer.train_word_level(texts))
    assert words[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"] and "cat" in words
    with pytest.raises(ValueError, match="this model reads characters"):
        vector_words(CharTokenizer.from_text("abc"))
    with pytest.raises(ValueError, match="BPE pieces"):
        vector_words(TextTokenizer.train_bpe(texts, vocab_size=300))
    pair = PairTokenizer(TextTokenizer.train_word_level(texts), TextTokenizer.train_word_level(texts))
    with pytest.raises(TypeError, match="source or target"):
        vector_words(pair)
    with pytest.raises(RuntimeError, match="no tokenizer yet"):
        vector_words(None)


def test_a_trained_table_joins_the_frozen_vectors():
    embedding = PretrainedEmbedding(len(VOCABULARY), 4, freeze=True, padding_idx=0, trained_size=3)
    embedding.load_vectors(vectors(), VOCABULARY)
    assert embedding.output_size == 7 and list(embedding.state_dict()) == ["weight", "trained.weight"]
    outputs = embedding(torch.tensor([[2, 0]]))
    torch.testing.assert_close(outputs[0, 0, :4], vectors()["the"])
    assert outputs[0, 1].abs().sum() == 0  # <pad> is zeros in both tables
    outputs.sum().backward()
    assert embedding.weight.grad is None and embedding.trained.weight.grad[2].abs().sum() > 0
