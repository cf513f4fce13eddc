"""rnnzoo.embeddings: reading vectors files, aligning them to a vocabulary, extending a vocabulary."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_dataset

import rnnzoo.embeddings as embeddings
from rnnzoo.embeddings import Coverage, WordVectors, align, extend_vocabulary, load_vectors, vocabulary_words
from rnnzoo.tokenizers import CharTokenizer, PairTokenizer, TextTokenizer, WordVocabulary, tokenizer_from_dict

WORDS = ["the", ",", "Paris", "cat", "dog", "naïve", "1.5", "e-mail"]


def vector_rows(count: int, dim: int, seed: int = 0) -> np.ndarray:
    """Values with few digits, so that their text form parses back to the same float32."""
    return np.random.default_rng(seed).integers(-9999, 9999, size=(count, dim)) / 1000


def write_vectors(path: Path, words: list[str], rows: np.ndarray, header: bool = False, end: str = "\n") -> Path:
    lines = [f"{len(words)} {rows.shape[1]}"] if header else []
    lines += [" ".join([word, *(f"{value:g}" for value in row)]) for word, row in zip(words, rows, strict=True)]
    text = "".join(line + end for line in lines)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def glove_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rows = vector_rows(len(WORDS), 5)
    return write_vectors(tmp_path / "tiny.txt", WORDS, rows), rows


# ----------------------------------------------------------------------------- reading


def test_glove_style_file(glove_file):
    path, rows = glove_file
    vectors = load_vectors(path)
    assert vectors.words == WORDS
    assert vectors.vectors.dtype == torch.float32
    assert vectors.vectors.shape == (len(WORDS), 5) and vectors.dim == 5 and len(vectors) == len(WORDS)
    torch.testing.assert_close(vectors.vectors, torch.tensor(rows, dtype=torch.float32), rtol=0, atol=0)
    assert "naïve" in vectors and "Naïve" not in vectors
    torch.testing.assert_close(vectors["cat"], torch.tensor(rows[3], dtype=torch.float32), rtol=0, atol=0)
    assert vectors.index("dog") == 4 and vectors.get("wolf") is None
    with pytest.raises(KeyError, match="'wolf' has no vector in .*tiny.txt"):
        vectors["wolf"]
    assert vectors.source == str(path)


def test_word2vec_header_crlf_and_trailing_spaces(tmp_path, glove_file):
    _, rows = glove_file
    plain = load_vectors(glove_file[0])
    # fastText .vec files end each line with a space; Windows files with \r\n.
    path = write_vectors(tmp_path / "tiny.vec", WORDS, rows, header=True, end=" \r\n")
    vectors = load_vectors(path)
    assert vectors.words == WORDS
    assert torch.equal(vectors.vectors, plain.vectors)
    assert load_vectors(path, max_words=3).words == WORDS[:3]


def test_header_must_match_the_file(tmp_path, glove_file):
    _, rows = glove_file
    path = write_vectors(tmp_path / "tiny.vec", WORDS, rows, header=True)
    lines = path.read_text().splitlines()
    (tmp_path / "cut.vec").write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(ValueError, match=r"cut.vec: the header says 8 words but the file holds 6 \(cut short\?\)"):
        load_vectors(tmp_path / "cut.vec")
    assert len(load_vectors(tmp_path / "cut.vec", max_words=5)) == 5
    with pytest.raises(ValueError, match="header=True but line 1 is not a word2vec header"):
        load_vectors(glove_file[0], header=True)


def test_a_first_word_that_is_a_number_is_not_a_header(tmp_path):
    # "3 5": the word "3" with a 1-d vector, not a header (the other lines are 1-d too).
    (tmp_path / "one_d.txt").write_text("3 5\nfour 4\n")
    vectors = load_vectors(tmp_path / "one_d.txt")
    assert vectors.words == ["3", "four"] and vectors.vectors.tolist() == [[5.0], [4.0]]
    (tmp_path / "header.txt").write_text("2 3\nthe 1 2 3\nfour 4 5 6\n")
    assert load_vectors(tmp_path / "header.txt").words == ["the", "four"]
    with pytest.raises(ValueError, match="line 1 has 1 values after its word where most lines have 3"):
        load_vectors(tmp_path / "header.txt", header=False)  # read as the word "2" and the vector [3]


def test_gzipped_file(tmp_path, glove_file):
    _, rows = glove_file
    path = write_vectors(tmp_path / "tiny.vec.gz", WORDS, rows, header=True)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    vectors = load_vectors(path)
    assert vectors.words == WORDS
    assert torch.equal(vectors.vectors, load_vectors(glove_file[0]).vectors)


def test_wide_vectors_across_chunk_boundaries(tmp_path, monkeypatch):
    """300-d rows read 1 KiB at a time: every row crosses a chunk boundary; values are exact."""
    words = [f"w{index}" for index in range(40)]
    rows = vector_rows(40, 300, seed=1)
    path = write_vectors(tmp_path / "wide.txt", words, rows)
    monkeypatch.setattr(embeddings, "_CHUNK_BYTES", 1024)
    vectors = load_vectors(path)
    assert vectors.words == words and vectors.dim == 300
    assert torch.equal(vectors.vectors, torch.tensor(rows, dtype=torch.float32))
    assert load_vectors(path, max_words=7).words == words[:7]


def test_words_with_spaces_take_the_last_dim_fields(tmp_path):
    # GloVe 840B holds words such as ". . ." and "at name@domain.com".
    (tmp_path / "spaces.txt").write_text("the 1 2 3\n. . . 4 5 6\nat name@domain.com 7 8 9\n")
    vectors = load_vectors(tmp_path / "spaces.txt")
    assert vectors.words == ["the", ". . .", "at name@domain.com"]
    assert vectors["at name@domain.com"].tolist() == [7.0, 8.0, 9.0]


def test_chunks_keep_line_numbers_in_errors(tmp_path, monkeypatch):
    words = [f"w{index}" for index in range(50)]
    lines = [f"{word} 0.1 0.2 0.3" for word in words]
    lines[36] = "w36 0.1 0.2"
    (tmp_path / "bad.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(embeddings, "_CHUNK_BYTES", 64)
    with pytest.raises(ValueError, match=r"bad.txt: line 37 has 2 values after its word where most lines have 3"):
        load_vectors(tmp_path / "bad.txt")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("cat 0.1 0.2", r"line 3 has 2 values after its word where most lines have 3"),
        ("cat 0.1 0.2 0.3 0.4", r"line 3 has 4 values after its word where most lines have 3"),
        ("cat 0.1 x 0.3", r"line 3 does not hold 3 numbers after its word \('x' is not a number\)"),
        ("cat 0.1 nan 0.3", r"line 3 holds a value that is not a finite float32"),
        ("cat", r"line 3 has 0 values after its word"),
    ],
)
def test_a_bad_line_is_named(tmp_path, line, message):
    text = f"the 1 2 3\ndog 4 5 6\n{line}\nfish 7 8 9\n"
    (tmp_path / "bad.txt").write_text(text)
    with pytest.raises(ValueError, match=message):
        load_vectors(tmp_path / "bad.txt")


def test_a_header_sets_the_width(tmp_path):
    (tmp_path / "bad.vec").write_text("2 4\nthe 1 2 3\ndog 4 5 6\n")
    with pytest.raises(ValueError, match="line 2 has 3 values after its word where the header says 4"):
        load_vectors(tmp_path / "bad.vec")


def test_invalid_utf8_names_the_line(tmp_path):
    (tmp_path / "latin1.txt").write_bytes(b"the 1 2\ncaf\xe9 3 4\n")
    with pytest.raises(ValueError, match=r"the word on line 2 is not valid UTF-8.*unicode_errors='replace'"):
        load_vectors(tmp_path / "latin1.txt")
    assert load_vectors(tmp_path / "latin1.txt", unicode_errors="replace").words == ["the", "caf\ufffd"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"Hello there, this is\na plain text file of prose\nand not vectors at all\n", "does not look like a vectors"),
        (b'{"the": [0.1, 0.2]}\n', "does not look like a vectors file"),
        (b"one\ntwo\nthree\n", "is not a vectors file .*: its lines hold a single field"),
        (b"PK\x03\x04rest of a zip", "is a zip archive, not a vectors file: unzip it"),
        (b"3 2\nthe \x00\x01\x02\x03\x04\x05\x06\x07\n", "is a binary file, not a text vectors file"),
    ],
)
def test_not_a_vectors_file(tmp_path, content, message):
    (tmp_path / "file.txt").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_vectors(tmp_path / "file.txt")


@pytest.mark.parametrize(
    ("content", "message"), [(b"", "is empty"), (b"\n\n", "is empty"), (b"0 50\n", "holds a header but no vectors")]
)
def test_empty_file(tmp_path, content, message):
    (tmp_path / "empty.txt").write_bytes(content)
    with pytest.raises(ValueError, match=f"empty.txt {message}"):
        load_vectors(tmp_path / "empty.txt")


def test_max_words_must_be_positive(glove_file):
    with pytest.raises(ValueError, match="max_words must be at least 1"):
        load_vectors(glove_file[0], max_words=0)


def test_duplicate_words_first_one_wins():
    vectors = WordVectors(["a", "b", "a"], torch.arange(6.0).reshape(3, 2))
    assert vectors.index("a") == 0 and vectors["a"].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="needs a \\[len\\(words\\), D\\] matrix"):
        WordVectors(["a"], torch.zeros(2, 3))


# ----------------------------------------------------------------------------- aligning


def test_align_exact_then_lowercase_then_random(glove_file):
    vectors = load_vectors(glove_file[0])
    words = ["<pad>", "<unk>", "the", "The", "paris", "CAT", "Naïve", "zebra", "wolf"]
    matrix, coverage = align(vectors, words, init_std=0.01, generator=torch.Generator().manual_seed(0))
    assert matrix.shape == (len(words), 5) and matrix.dtype == torch.float32
    assert (coverage.exact, coverage.lowercased, coverage.missing, coverage.special) == (1, 4, 2, 2)
    assert coverage.covered == 5 and coverage.total == 7 and coverage.fraction == pytest.approx(5 / 7)
    assert coverage.missing_examples == ("zebra", "wolf")
    assert torch.equal(matrix[0], torch.zeros(5))  # <pad>
    assert torch.equal(matrix[2], vectors["the"]) and torch.equal(matrix[3], vectors["the"])
    assert torch.equal(matrix[4], vectors["Paris"])  # the file's casing, found once both are lower-cased
    assert torch.equal(matrix[5], vectors["cat"]) and torch.equal(matrix[6], vectors["naïve"])
    random_rows = matrix[[1, 7, 8]]
    assert 0 < random_rows.abs().max() < 0.1  # small random values, not zeros or copies
    text = str(coverage)
    assert "5 of 7 words covered (71.4%)" in text and "1 exact, 4 lower-cased, 2 missing" in text
    assert "'zebra'" in text and "tiny.txt" in text


def test_align_without_lowercase_fallback(glove_file):
    vectors = load_vectors(glove_file[0])
    _, coverage = align(vectors, ["the", "The", "CAT"], lowercase_fallback=False)
    assert (coverage.exact, coverage.lowercased, coverage.missing) == (1, 0, 2)


def test_align_is_reproducible_with_a_generator(glove_file):
    vectors = load_vectors(glove_file[0])
    first, _ = align(vectors, ["the", "zebra"], generator=torch.Generator().manual_seed(3))
    second, _ = align(vectors, ["the", "zebra"], generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, second)


def test_no_coverage_is_an_error(glove_file):
    vectors = load_vectors(glove_file[0])
    with pytest.raises(ValueError, match=r"no word of the vocabulary \(3 words: 'Hund', 'Katze', 'Maus'\).*tiny.txt"):
        align(vectors, ["<pad>", "<unk>", "Hund", "Katze", "Maus"])
    with pytest.raises(ValueError, match="none besides special tokens"):
        align(vectors, ["<pad>", "<unk>"])


def test_coverage_str_without_missing_words():
    coverage = Coverage(exact=3, lowercased=0, missing=0, special=1, source="v.txt")
    assert str(coverage) == "v.txt: 3 of 3 words covered (100.0%): 3 exact, 0 lower-cased, 0 missing; 1 special tokens"


# ----------------------------------------------------------------------------- tokenizers


TEXTS = ["The cat sat on the mat.", "The dog barked at the cat!"]


def test_vocabulary_words_of_each_tokenizer():
    vocabulary = WordVocabulary.from_sentences([["The", "cat"], ["the", "dog"]])
    assert vocabulary_words(vocabulary) == ["<pad>", "<unk>", "the", "cat", "dog"]
    text = TextTokenizer.train_word_level(TEXTS)
    words = vocabulary_words(text)
    assert words[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"] and len(words) == len(text)
    assert all(text.id_to_token(index) == word for index, word in enumerate(words))
    assert vocabulary_words(CharTokenizer.from_text("abca")) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="not word-level: its BPE pieces"):
        vocabulary_words(TextTokenizer.train_bpe(TEXTS * 10, vocab_size=300))
    with pytest.raises(TypeError, match="pass tokenizer.source or tokenizer.target"):
        vocabulary_words(PairTokenizer(text, text))


def test_extend_word_vocabulary(glove_file):
    vectors = load_vectors(glove_file[0])
    vocabulary = WordVocabulary.from_sentences([["The", "cat", "sat"]])
    extended = extend_vocabulary(vocabulary, vectors)
    assert extended.words[: len(vocabulary)] == vocabulary.words  # old ids unchanged
    assert extended.words[len(vocabulary) :] == [",", "paris", "dog", "naïve", "1.5", "e-mail"]
    assert extended.lowercase
    # A word unseen in training now has an id, and that id's row holds its vector.
    assert vocabulary.encode_words(["Dog"]).tolist() == [vocabulary.unk_id]
    dog = extended.encode_words(["Dog"]).item()
    matrix, coverage = align(vectors, vocabulary_words(extended))
    assert torch.equal(matrix[dog], vectors["dog"])
    assert coverage.missing == 1  # "sat" only
    assert extend_vocabulary(vocabulary, vectors, max_new=2).words[len(vocabulary) :] == [",", "paris"]
    assert tokenizer_from_dict(extended.to_dict()) == extended


def test_extend_cased_word_vocabulary_keeps_the_file_casing(glove_file):
    vectors = load_vectors(glove_file[0])
    vocabulary = WordVocabulary.from_sentences([["the"]], lowercase=False)
    assert "Paris" in extend_vocabulary(vocabulary, vectors).words


def test_extend_word_level_text_tokenizer(glove_file):
    vectors = load_vectors(glove_file[0])
    tokenizer = TextTokenizer.train_word_level(TEXTS)
    extended = extend_vocabulary(tokenizer, vectors)
    assert isinstance(extended, TextTokenizer) and extended.word_level
    old = vocabulary_words(tokenizer)
    new = vocabulary_words(extended)
    assert new[: len(old)] == old
    # Normalized (NFKC, lower-cased) and only words the pre-tokenizer keeps whole: not "1.5" or "e-mail".
    assert new[len(old) :] == [",", "paris", "naïve"]
    sentence = "The dog met Naïve folk in Paris"
    assert tokenizer.encode(sentence).tolist()[-1] == tokenizer.unk_id
    ids = extended.encode(sentence).tolist()
    assert ids[:2] == tokenizer.encode(sentence).tolist()[:2]
    assert [extended.id_to_token(index) for index in ids] == ["the", "dog", "<unk>", "naïve", "<unk>", "<unk>", "paris"]
    matrix, _ = align(vectors, new)
    assert torch.equal(matrix[ids[-1]], vectors["Paris"])
    assert extended.decode([0, ids[-1], 3]) == "paris"  # special tokens are still special
    assert tokenizer_from_dict(extended.to_dict()) == extended
    assert len(extend_vocabulary(tokenizer, vectors, max_new=1)) == len(tokenizer) + 1
    assert vocabulary_words(tokenizer) == old  # the original is untouched


def test_extend_cased_text_tokenizer_without_normalizer(glove_file):
    vectors = load_vectors(glove_file[0])
    tokenizer = TextTokenizer.train_word_level(TEXTS, lowercase=False, normalization=None)
    assert tokenizer.tokenizer.normalizer is None
    extended = extend_vocabulary(tokenizer, vectors)
    assert vocabulary_words(extended)[len(tokenizer) :] == [",", "Paris", "naïve"]  # cased: "Paris" kept
    assert extended.tokens("Paris") == ["Paris"]


def test_extend_rejects_other_tokenizers(glove_file):
    vectors = load_vectors(glove_file[0])
    with pytest.raises(ValueError, match="not word-level"):
        extend_vocabulary(TextTokenizer.train_bpe(TEXTS * 10, vocab_size=300), vectors)
    with pytest.raises(ValueError, match="characters"):
        extend_vocabulary(CharTokenizer.from_text("abc"), vectors)
    with pytest.raises(TypeError, match="word-level TextTokenizer"):
        text = TextTokenizer.train_word_level(TEXTS)
        extend_vocabulary(PairTokenizer(text, text), vectors)
    with pytest.raises(ValueError, match="max_new must be at least 0"):
        extend_vocabulary(WordVocabulary(["<pad>", "<unk>"]), vectors, max_new=-1)


# ----------------------------------------------------------------------------- the real GloVe file


@pytest.mark.slow  # 2 to 7 s here, depending on the other work on the 2 cores
def test_real_glove_6b_50d():
    path = shared_dataset("glove_6b_50d") / "glove.6B.50d.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with path.open(encoding="utf-8") as file:
        lines = [next(file) for _ in range(12_346)]
    word, *fields = lines[12_345].rstrip("\n").split(" ")
    start = time.perf_counter()
    vectors = load_vectors(path)
    seconds = time.perf_counter() - start
    assert vectors.vectors.shape == (400_000, 50) and len(vectors.words) == 400_000
    assert vectors.words[0] == "the" and vectors.index(word) == 12_345
    assert torch.equal(vectors[word], torch.tensor([float(field) for field in fields], dtype=torch.float32))
    assert vectors["the"][0].item() == pytest.approx(0.418)
    assert seconds < 30, f"loading the 400,000-word file took {seconds:.1f} s"
    vocabulary = WordVocabulary.from_sentences([["The", "Cat", "sat", "xqzvv", "Zürich"]])
    _, coverage = align(vectors, vocabulary_words(vocabulary))
    assert (coverage.exact, coverage.lowercased, coverage.missing) == (4, 0, 1)
