"""Tokenizers built from a training split and saved with the model.

All follow one small interface (:class:`Tokenizer`): ``len()``, ``encode``,
``encode_batch``, ``decode``, ``pad_id`` and ``to_dict``, whose JSON-able output
goes into checkpoints and comes back through :func:`tokenizer_from_dict`.

* :class:`CharTokenizer`: one token per character (the char-level language model).
* :class:`TextTokenizer`: word-level or BPE, trained with HuggingFace ``tokenizers``.
* :class:`PairTokenizer`: a source and a target tokenizer (translation) kept together.
* :class:`WordVocabulary`: ids of words that come already split (tagging data).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers
from torch import Tensor

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
"""Special tokens of a :class:`TextTokenizer`, with ids 0 to 3 in this order."""

REPLACEMENT_CHARACTER = "\ufffd"
"""U+FFFD, the unknown token of the character vocabularies the data modules build."""

_PIECE = 1 << 20
"""Characters a :class:`CharTokenizer` encodes at a time, so that its temporary arrays stay a few MB."""


class Tokenizer:
    """The interface every rnnzoo tokenizer follows (see the module docstring)."""

    kind: ClassVar[str]
    pad_id: int = 0
    """The id padded steps hold; models never read them (they get the real lengths)."""

    def __len__(self) -> int:
        """Vocabulary size."""
        raise NotImplementedError

    def encode(self, text: str) -> Tensor:
        """The ids of ``text`` as an int64 tensor."""
        raise NotImplementedError

    def encode_batch(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """The ids of many texts, each cut to at most ``max_length`` tokens."""
        return [self.encode(text)[:max_length].tolist() for text in texts]

    def decode(self, ids: Iterable[int] | Tensor) -> str:
        """Turn ids back into text."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description, stored in checkpoints."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        """Equal when of the same class with the same description."""
        return type(other) is type(self) and self.to_dict() == other.to_dict()


class CharTokenizer(Tokenizer):
    """One token per character; the vocabulary is the characters seen in training.

    Padded steps hold id 0 (:attr:`pad_id`), which is also a real character: the
    models get each sequence's length and never read padding.

    Characters outside the vocabulary are an error by default (``errors="strict"``)
    naming them; with an ``unk_token`` in the vocabulary, ``errors="replace"``
    maps them to it instead.

    The unknown token is an entry of its own: :meth:`from_text` refuses one that is also a
    character of the text (the two would share an id), except U+FFFD, the replacement
    character, which already stands for a character that could not be read.

    Args:
        vocabulary: the characters, in id order.
        unk_token: the entry that stands for any unseen character (appended when the
            vocabulary does not hold it), or None.
    """

    kind = "char"

    def __init__(self, vocabulary: Iterable[str], unk_token: str | None = None) -> None:
        self.vocabulary = list(vocabulary)
        if unk_token is not None and unk_token not in self.vocabulary:
            self.vocabulary.append(unk_token)
        if not self.vocabulary:
            raise ValueError("a CharTokenizer needs at least one character")
        self.unk_token = unk_token
        self.ids = {token: index for index, token in enumerate(self.vocabulary)}
        if len(self.ids) != len(self.vocabulary):
            raise ValueError("the vocabulary of a CharTokenizer holds a character twice")
        self._lookup: np.ndarray | None = None

    @classmethod
    def from_text(cls, text: str, unk_token: str | None = None) -> CharTokenizer:
        """Build the vocabulary from the distinct characters of ``text``, sorted.

        Raises:
            ValueError: when ``unk_token`` is a character of ``text`` (other than U+FFFD).
        """
        return cls.from_texts([text], unk_token)

    @classmethod
    def from_texts(cls, texts: Iterable[str], unk_token: str | None = None) -> CharTokenizer:
        """:meth:`from_text` of the texts one after another, read one at a time (a corpus larger than memory).

        Raises:
            ValueError: when ``unk_token`` is a character of the texts (other than U+FFFD).
        """
        characters: set[str] = set()
        for text in texts:
            characters.update(text)
        if unk_token is not None and unk_token != REPLACEMENT_CHARACTER and unk_token in characters:
            raise ValueError(
                f"the unk_token {unk_token!r} is also a character of the text: unseen characters and it would "
                f"share one id. Choose an unk_token the text does not hold (e.g. {REPLACEMENT_CHARACTER!r})"
            )
        return cls(sorted(characters), unk_token=unk_token)

    def __len__(self) -> int:
        """Vocabulary size."""
        return len(self.vocabulary)

    def encode(self, text: str, errors: Literal["strict", "replace"] = "replace") -> Tensor:
        """Return the ids of ``text`` as an int64 tensor.

        Raises:
            ValueError: naming the unseen characters, when ``text`` holds some and
                there is no ``unk_token`` to replace them (or ``errors="strict"``).
        """
        return torch.from_numpy(self.encode_array(text, errors))

    def encode_array(self, text: str, errors: Literal["strict", "replace"] = "replace") -> np.ndarray:
        """:meth:`encode` as an int64 NumPy array (which :meth:`encode` wraps).

        One table lookup per character, a piece of the text at a time: a Python loop over the
        characters reads about 20 MB/s, this several times that (what tokenizing a large corpus needs).

        Raises:
            ValueError: as :meth:`encode`.
        """
        table = self._table()
        ids = np.empty(len(text), dtype=np.int64)
        unseen = []
        for start in range(0, len(text), _PIECE):
            # UTF-32 gives one code point per character; surrogatepass keeps a lone surrogate one of them.
            points = np.frombuffer(text[start : start + _PIECE].encode("utf-32-le", "surrogatepass"), np.uint32)
            # intp indices: NumPy would convert uint32 ones one by one, several times slower.
            piece = table.take(points.astype(np.intp), mode="clip")
            ids[start : start + len(piece)] = piece
            unseen.append(points[piece < 0])
        unseen_points = np.unique(np.concatenate(unseen)) if unseen else np.empty(0, np.uint32)
        if len(unseen_points):
            if errors == "strict" or self.unk_token is None:
                shown = ", ".join(repr(chr(point)) for point in unseen_points[:20])
                hint = (
                    "" if self.unk_token is not None else " (build the tokenizer with an unk_token to map them to it)"
                )
                raise ValueError(
                    f"{len(unseen_points)} character(s) never seen in training: {shown}; "
                    f"the vocabulary has {len(self)} characters{hint}"
                )
            ids[ids < 0] = self.ids[self.unk_token]
        return ids

    def _table(self) -> np.ndarray:
        """The id of every code point up to the vocabulary's largest, -1 where it has none (built once)."""
        if self._lookup is None:
            singles = {ord(token): index for token, index in self.ids.items() if len(token) == 1}
            # One slot more, left -1: take(mode="clip") sends every larger code point there.
            lookup = np.full(max(singles, default=0) + 2, -1, dtype=np.int64)
            lookup[list(singles)] = list(singles.values())
            self._lookup = lookup
        return self._lookup

    def decode(self, ids: Iterable[int] | Tensor) -> str:
        """Turn ids back into text."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return "".join(self.vocabulary[index] for index in ids)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description, stored in checkpoints."""
        return {"kind": self.kind, "vocabulary": self.vocabulary, "unk_token": self.unk_token}

    def encode_words(self, words: Sequence[str], max_word_length: int | None = None) -> Tensor:
        """``[len(words), L]`` character ids of each word (cut to ``max_word_length``), padded with id 0.

        Unseen characters map to ``unk_token`` (a tagger's character vocabulary has one);
        an empty word reads as one ``unk_token``.
        """
        rows = self.word_ids(words, max_word_length)
        width = max(len(row) for row in rows)
        return torch.tensor([row + [0] * (width - len(row)) for row in rows], dtype=torch.long)

    def word_ids(self, words: Sequence[str], max_word_length: int | None = None) -> list[list[int]]:
        """:meth:`encode_words` unpadded: the character ids of each word, as lists."""
        unk = self.ids.get(self.unk_token, 0) if self.unk_token is not None else 0
        return [[self.ids.get(char, unk) for char in word[:max_word_length]] or [unk] for word in words]

    def __repr__(self) -> str:
        """Short summary."""
        return f"CharTokenizer(size={len(self)}, unk_token={self.unk_token!r})"


class TextTokenizer(Tokenizer):
    """A word-level or BPE tokenizer from HuggingFace ``tokenizers``, trained on a training split.

    Ids 0 to 3 are ``<pad>``, ``<unk>``, ``<bos>`` and ``<eos>``; words or pieces
    never seen in training become ``<unk>``. Build one with :meth:`train_word_level`
    or :meth:`train_bpe`; it is stored as the library's own JSON.

    Text spelled like a special token is read as text by a BPE tokenizer (``<eos>`` in an
    input is its five characters, so any text round-trips), and as that token by a
    word-level one (Penn Treebank writes ``<unk>`` for its rare words).

    Args:
        tokenizer: a trained ``tokenizers.Tokenizer`` whose vocabulary starts
            with :data:`SPECIAL_TOKENS`.
    """

    kind = "text"

    def __init__(self, tokenizer: HFTokenizer) -> None:
        for expected, token in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(token) != expected:
                raise ValueError(f"a TextTokenizer needs {token!r} at id {expected}; train it with train_word_level()")
        if isinstance(tokenizer.model, models.BPE):
            # Not stored in the tokenizer's JSON, so set on every load: match no special token in the text.
            tokenizer.encode_special_tokens = True
        self.tokenizer = tokenizer
        self.unk_id, self.bos_id, self.eos_id = 1, 2, 3

    @staticmethod
    def _normalizer(lowercase: bool, normalization: str | None) -> normalizers.Normalizer | None:
        steps = []
        if normalization is not None:
            if normalization not in ("NFC", "NFD", "NFKC", "NFKD"):
                raise ValueError(f"normalization must be NFC, NFD, NFKC, NFKD or None, got {normalization!r}")
            steps.append(getattr(normalizers, normalization)())
        if lowercase:
            steps.append(normalizers.Lowercase())
        return normalizers.Sequence(steps) if steps else None

    @classmethod
    def _train(
        cls,
        model: models.Model,
        trainer: trainers.Trainer,
        texts: Iterable[str],
        pre_tokenizer: pre_tokenizers.PreTokenizer,
        decoder: decoders.Decoder | None,
        lowercase: bool,
        normalization: str | None,
    ) -> TextTokenizer:
        tokenizer = HFTokenizer(model)
        normalizer = cls._normalizer(lowercase, normalization)
        if normalizer is not None:
            tokenizer.normalizer = normalizer
        tokenizer.pre_tokenizer = pre_tokenizer
        if decoder is not None:
            tokenizer.decoder = decoder
        # The trainer counts a special token written in the text (Penn Treebank's ``<unk>``) as a word
        # and moves it off its reserved id: leave them out of the counts; encoding still maps them.
        specials = re.compile("|".join(re.escape(token) for token in SPECIAL_TOKENS))
        tokenizer.train_from_iterator((specials.sub(" ", text) for text in texts), trainer=trainer)
        return cls(tokenizer)

    @classmethod
    def train_word_level(
        cls,
        texts: Iterable[str],
        lowercase: bool = True,
        normalization: str | None = "NFKC",
        min_freq: int = 1,
        max_vocab_size: int | None = None,
        split_punctuation: bool = True,
    ) -> TextTokenizer:
        """One token per word (runs of letters and digits, or of punctuation).

        Args:
            texts: the training texts.
            lowercase: fold case before splitting.
            normalization: a Unicode normal form applied first, or None.
            min_freq: words seen fewer times become ``<unk>``.
            max_vocab_size: keep at most this many entries (special tokens included),
                the most frequent words first.
            split_punctuation: split runs of punctuation from letters and digits (``don't`` ->
                ``don ' t``); False splits on whitespace only, for text that is tokenized already
                (Penn Treebank's ``n't`` and ``'s`` stay the tokens its published perplexities count).
        """
        trainer = trainers.WordLevelTrainer(
            vocab_size=max_vocab_size or 2**31 - 1, min_frequency=min_freq, special_tokens=list(SPECIAL_TOKENS)
        )
        model = models.WordLevel(unk_token="<unk>")
        pre_tokenizer = pre_tokenizers.Whitespace() if split_punctuation else pre_tokenizers.WhitespaceSplit()
        return cls._train(model, trainer, texts, pre_tokenizer, None, lowercase, normalization)

    @classmethod
    def train_bpe(
        cls,
        texts: Iterable[str],
        vocab_size: int = 8000,
        lowercase: bool = False,
        normalization: str | None = None,
        min_freq: int = 2,
    ) -> TextTokenizer:
        """Byte-level BPE (as GPT-2): any text encodes without ``<unk>`` and decodes back exactly.

        Exactly with the defaults: ``lowercase`` or a ``normalization`` is a choice to read text
        otherwise (NFKC reads a no-break space as a space, ``ﬁ`` as ``fi``), and decoding gives the
        normalized text back.

        Args:
            texts: the training texts.
            vocab_size: entries in all, special tokens and the 256 bytes included.
            lowercase: fold case first.
            normalization: a Unicode normal form applied first (NFKC folds compatibility
                characters), or None to keep the text as it is.
            min_freq: pairs seen fewer times are not merged.
        """
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_freq,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
        model = models.BPE(unk_token="<unk>")
        pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        return cls._train(model, trainer, texts, pre_tokenizer, decoders.ByteLevel(), lowercase, normalization)

    def __len__(self) -> int:
        """Vocabulary size, special tokens included."""
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> Tensor:
        """The ids of ``text`` (no ``<bos>``/``<eos>``)."""
        return torch.tensor(self.tokenizer.encode(text).ids, dtype=torch.long)

    def encode_batch(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """The ids of many texts at once (in parallel), each cut to at most ``max_length`` tokens."""
        return [encoding.ids[:max_length] for encoding in self.tokenizer.encode_batch(list(texts))]

    def tokens(self, text: str) -> list[str]:
        """The tokens of ``text`` as strings (to see what the model reads)."""
        return self.tokenizer.encode(text).tokens

    def decode(self, ids: Iterable[int] | Tensor) -> str:
        """Turn ids back into text, dropping special tokens."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return self.tokenizer.decode(list(ids))

    @property
    def word_level(self) -> bool:
        """True for a word-level tokenizer (whose tokens are words), False for BPE."""
        return isinstance(self.tokenizer.model, models.WordLevel)

    def words(self, text: str) -> list[str]:
        """``text`` normalized and split into words as the tokenizer sees them, unknown words kept.

        For a word-level tokenizer these are its tokens before the vocabulary lookup:
        the tokenized form BLEU is computed on (references keep words ``<unk>`` would hide).
        """
        if self.tokenizer.normalizer is not None:
            text = self.tokenizer.normalizer.normalize_str(text)
        pre_tokenizer = self.tokenizer.pre_tokenizer or pre_tokenizers.Whitespace()
        return [word for word, _ in pre_tokenizer.pre_tokenize_str(text)]

    def id_to_token(self, index: int) -> str:
        """The token string of id ``index`` (``<unk>`` and the other special tokens included)."""
        return self.tokenizer.id_to_token(index)

    def detokenize(self, ids: Iterable[int] | Tensor) -> str:
        """Readable text from ids: BPE decodes exactly; word tokens are joined, no space before punctuation."""
        if not self.word_level:
            return self.decode(ids)
        text = self.decode(ids)
        text = re.sub(r" ([.,!?;:%)\]}])", r"\1", text)
        text = re.sub(r"([(\[{]) ", r"\1", text)
        return re.sub(r" ?' ?(s|t|re|ve|ll|d|m)\b", r"'\1", text)

    def to_dict(self) -> dict[str, Any]:
        """The tokenizer's own JSON, stored in checkpoints."""
        return {"kind": self.kind, "json": self.tokenizer.to_str()}

    @classmethod
    def from_json(cls, json: str) -> TextTokenizer:
        """Rebuild from :meth:`to_dict`'s ``json``."""
        return cls(HFTokenizer.from_str(json))

    def __repr__(self) -> str:
        """Short summary."""
        return f"TextTokenizer({type(self.tokenizer.model).__name__}, size={len(self)})"


class PairTokenizer(Tokenizer):
    """A source and a target tokenizer, kept together as a translation model's one tokenizer.

    ``encode`` reads source text and ``decode`` writes target text; ``len()`` is the
    target (output) vocabulary. Both are stored in checkpoints like any tokenizer.

    Args:
        source: tokenizer of the input language.
        target: tokenizer of the output language (needs ``bos_id`` and ``eos_id``).
    """

    kind = "pair"

    def __init__(self, source: Tokenizer, target: Tokenizer) -> None:
        for side, tokenizer in (("source", source), ("target", target)):
            if not isinstance(tokenizer, Tokenizer):
                raise TypeError(f"the {side} tokenizer must be an rnnzoo Tokenizer, got {type(tokenizer).__name__}")
        if not (hasattr(target, "bos_id") and hasattr(target, "eos_id")):
            raise ValueError(f"the target tokenizer needs <bos> and <eos> tokens (a TextTokenizer), got {target!r}")
        self.source = source
        self.target = target

    def __len__(self) -> int:
        """Target vocabulary size."""
        return len(self.target)

    @property
    def vocab_sizes(self) -> dict[str, int]:
        """``{"source": ..., "target": ...}`` vocabulary sizes."""
        return {"source": len(self.source), "target": len(self.target)}

    def encode(self, text: str) -> Tensor:
        """Source ids of ``text``."""
        return self.source.encode(text)

    def encode_batch(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """Source ids of many texts, each cut to at most ``max_length`` tokens."""
        return self.source.encode_batch(texts, max_length)

    def decode(self, ids: Iterable[int] | Tensor) -> str:
        """Target text of ``ids``."""
        return self.target.decode(ids)

    def to_dict(self) -> dict[str, Any]:
        """Both tokenizers' descriptions."""
        return {"kind": self.kind, "source": self.source.to_dict(), "target": self.target.to_dict()}

    @classmethod
    def from_dicts(cls, source: dict[str, Any], target: dict[str, Any]) -> PairTokenizer:
        """Rebuild from :meth:`to_dict`'s output."""
        return cls(tokenizer_from_dict(source), tokenizer_from_dict(target))

    def __repr__(self) -> str:
        """Short summary."""
        return f"PairTokenizer(source={self.source!r}, target={self.target!r})"


class WordVocabulary(Tokenizer):
    """Ids of already-split words (tagging data comes tokenized): one id per word, unseen words -> ``<unk>``.

    Ids 0 and 1 are ``<pad>`` and ``<unk>``. With ``lowercase`` the words are folded
    before lookup, in training and at inference alike (a tagger's character
    features keep the case).

    Args:
        words: the vocabulary in id order, starting with ``<pad>`` and ``<unk>``.
        lowercase: fold case before lookup.
    """

    kind = "words"
    unk_id = 1

    def __init__(self, words: Iterable[str], lowercase: bool = True) -> None:
        self.words = list(words)
        if self.words[:2] != ["<pad>", "<unk>"]:
            raise ValueError("a WordVocabulary starts with '<pad>' and '<unk>'; build it with from_sentences()")
        self.lowercase = lowercase
        self.ids = {word: index for index, word in enumerate(self.words)}
        if len(self.ids) != len(self.words):
            raise ValueError("the vocabulary of a WordVocabulary holds a word twice")

    @classmethod
    def from_sentences(
        cls,
        sentences: Iterable[Sequence[str]],
        lowercase: bool = True,
        min_freq: int = 1,
        max_vocab_size: int | None = None,
    ) -> WordVocabulary:
        """Count the words of tokenized training sentences and keep the frequent ones.

        Args:
            sentences: lists of words.
            lowercase: fold case before counting (and before every lookup after).
            min_freq: words seen fewer times become ``<unk>``.
            max_vocab_size: keep at most this many entries (the two special ones
                included), the most frequent words first (ties by first sight).
        """
        counts: dict[str, int] = {}
        for sentence in sentences:
            for word in sentence:
                word = word.lower() if lowercase else word
                counts[word] = counts.get(word, 0) + 1
        kept = sorted((word for word, count in counts.items() if count >= min_freq), key=lambda w: -counts[w])
        kept = [word for word in kept if word not in ("<pad>", "<unk>")]
        if max_vocab_size is not None:
            kept = kept[: max(max_vocab_size - 2, 0)]
        return cls(["<pad>", "<unk>", *kept], lowercase)

    def __len__(self) -> int:
        """Vocabulary size, special entries included."""
        return len(self.words)

    def encode_words(self, words: Sequence[str]) -> Tensor:
        """The ids of a list of words as an int64 tensor (unseen words -> ``<unk>``)."""
        return torch.tensor(self.word_ids(words), dtype=torch.long)

    def word_ids(self, words: Sequence[str]) -> list[int]:
        """:meth:`encode_words` as a list."""
        if self.lowercase:
            words = [word.lower() for word in words]
        return [self.ids.get(word, self.unk_id) for word in words]

    def encode(self, text: str) -> Tensor:
        """The ids of ``text`` split on whitespace."""
        return self.encode_words(text.split())

    def decode(self, ids: Iterable[int] | Tensor) -> str:
        """The words of ``ids`` joined with spaces (folded when ``lowercase``)."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return " ".join(self.words[index] for index in ids)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description, stored in checkpoints."""
        return {"kind": self.kind, "words": self.words, "lowercase": self.lowercase}

    def __repr__(self) -> str:
        """Short summary."""
        return f"WordVocabulary(size={len(self)}, lowercase={self.lowercase})"


_TOKENIZERS: dict[str, Any] = {
    CharTokenizer.kind: CharTokenizer,
    TextTokenizer.kind: TextTokenizer.from_json,
    PairTokenizer.kind: PairTokenizer.from_dicts,
    WordVocabulary.kind: WordVocabulary,
}


GENERATION_CHARS = ("<pad>", "<bos>", "<eos>")
"""The first entries of a character vocabulary that generates sequences: padding, start and end."""


def generation_char_tokenizer(texts: Sequence[str]) -> CharTokenizer:
    """A character vocabulary for generation: ``<pad>``, ``<bos>``, ``<eos>``, then the characters of ``texts``."""
    return CharTokenizer([*GENERATION_CHARS, *sorted(set("".join(texts)))], unk_token=REPLACEMENT_CHARACTER)


def special_ids(tokenizer: Tokenizer) -> tuple[int, int, int]:
    """``(pad, bos, eos)`` ids of a tokenizer that generates sequences with start and end tokens.

    Raises:
        ValueError: for a character vocabulary without ``<pad>``, ``<bos>``, ``<eos>`` first, or
            a tokenizer of another kind.
    """
    if isinstance(tokenizer, CharTokenizer):
        if tuple(tokenizer.vocabulary[:3]) != GENERATION_CHARS:
            raise ValueError(
                f"a character tokenizer for generation needs {list(GENERATION_CHARS)} as its first entries, "
                f"got {tokenizer.vocabulary[:3]}; build it with generation_char_tokenizer()"
            )
        return 0, 1, 2
    if isinstance(tokenizer, TextTokenizer):
        return 0, tokenizer.bos_id, tokenizer.eos_id
    raise ValueError(f"generating sequences needs a CharTokenizer or a TextTokenizer, got {tokenizer!r}")


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from its ``to_dict()`` output (e.g. from a checkpoint)."""
    kind = data.get("kind")
    if kind not in _TOKENIZERS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; known kinds: {', '.join(sorted(_TOKENIZERS))}")
    options = {key: value for key, value in data.items() if key != "kind"}
    return _TOKENIZERS[kind](**options)
