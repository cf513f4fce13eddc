"""Tokenizers: exact round trips, special-token text read as text, unknown tokens apart, any string saved."""

from __future__ import annotations

import pytest

from rnnzoo.serialization import read_json, write_json
from rnnzoo.tokenizers import CharTokenizer, TextTokenizer, tokenizer_from_dict

TEXTS = ["the cat sat on the mat", "a dog ran in the park"] * 20


@pytest.fixture(scope="module")
def bpe() -> TextTokenizer:
    return TextTokenizer.train_bpe(TEXTS, vocab_size=300)


@pytest.mark.parametrize("text", ["the <eos> end", "<bos><pad><unk>", "a<eos>"])
def test_bpe_reads_special_token_text_as_text(bpe, text):
    ids = bpe.encode(text).tolist()
    assert not {bpe.pad_id, bpe.unk_id, bpe.bos_id, bpe.eos_id} & set(ids)
    assert bpe.decode(ids) == text


def test_bpe_reads_special_token_text_as_text_after_a_reload(bpe):
    copy = tokenizer_from_dict(bpe.to_dict())
    assert copy.encode("x <eos>").tolist() == bpe.encode("x <eos>").tolist()
    assert bpe.eos_id not in copy.encode("x <eos>").tolist()


def test_word_level_reads_special_token_words_as_those_tokens():
    # Penn Treebank writes <unk> for its rare words: that word is the unknown token.
    tokenizer = TextTokenizer.train_word_level(["the <unk> sat"], split_punctuation=False)
    assert tokenizer.encode("the <unk>").tolist()[1] == tokenizer.unk_id


@pytest.mark.parametrize("text", ["a\u00a0b", "ﬁne", "Ⅻ", "e\u0301", "ℌ²"])
def test_bpe_round_trips_compatibility_characters_exactly(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


def test_nfkc_is_a_choice_that_folds_a_no_break_space():
    folded = TextTokenizer.train_bpe(TEXTS, vocab_size=300, normalization="NFKC")
    assert folded.decode(folded.encode("a\u00a0b ﬁne")) == "a b fine"


def test_a_char_unk_token_that_is_also_a_character_of_the_text_is_refused():
    with pytest.raises(ValueError, match="the unk_token '\\?' is also a character of the text"):
        CharTokenizer.from_text("what? why?", unk_token="?")
    tokenizer = CharTokenizer.from_text("what", unk_token="?")
    assert tokenizer.encode("wh?").tolist()[-1] == tokenizer.encode("z").item()  # both unknown


def test_the_replacement_character_stands_for_unknown_characters_by_design():
    tokenizer = CharTokenizer.from_text("ab\ufffd", unk_token="\ufffd")
    assert tokenizer.encode("z").tolist() == tokenizer.encode("\ufffd").tolist()
    assert len(tokenizer) == 3


def test_lone_surrogates_save_and_load_unchanged(tmp_path):
    text = "ab\udcff\ud800c"  # what errors="surrogateescape" makes of bytes that are not UTF-8
    tokenizer = CharTokenizer.from_text(text, unk_token="\ufffd")
    write_json(tmp_path / "tokenizer.json", tokenizer.to_dict())
    copy = tokenizer_from_dict(read_json(tmp_path / "tokenizer.json"))
    assert copy == tokenizer
    assert copy.decode(copy.encode(text)) == text


@pytest.mark.parametrize("unk_token", [None, "<unk>", "\ufffd"])
def test_char_encoding_is_a_lookup_per_character(unk_token, monkeypatch):
    monkeypatch.setattr("rnnzoo.tokenizers._PIECE", 7)  # several pieces per text
    text = "naïve café\n😀 \ud800 ok\x00\U0010ffff" * 3
    tokenizer = CharTokenizer.from_text(text, unk_token)
    assert tokenizer.encode(text).tolist() == [tokenizer.ids[char] for char in text]
    assert tokenizer.encode("").tolist() == []
    unseen = "caféZ\u4e00é"
    if unk_token is None:
        with pytest.raises(ValueError, match=r"2 character\(s\) never seen in training: 'Z', '\u4e00'"):
            tokenizer.encode(unseen)
    else:
        unk = tokenizer.ids[unk_token]
        assert tokenizer.encode(unseen).tolist() == [tokenizer.ids.get(char, unk) for char in unseen]
        assert tokenizer.encode(unseen).tolist().count(unk) == 2
