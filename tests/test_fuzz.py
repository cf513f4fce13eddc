"""Property-based fuzzing (hypothesis): tokenizer round trips, CRF constraints, beam 1 equals greedy."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the dev extra")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rnnzoo.cells import build_cell, list_cells  # noqa: E402
from rnnzoo.decoding import beam_search, sample  # noqa: E402
from rnnzoo.nn import SequencePooling  # noqa: E402
from rnnzoo.nn.crf import LinearChainCRF  # noqa: E402
from rnnzoo.serialization import read_json, write_json  # noqa: E402
from rnnzoo.tokenizers import CharTokenizer, TextTokenizer, tokenizer_from_dict  # noqa: E402

FAST = settings(max_examples=50, deadline=None)
SEARCHING = settings(max_examples=200, deadline=None)  # a wider space: every cell x pooling x direction
BPE = TextTokenizer.train_bpe(["the cat sat on the mat", "ein Hund läuft im Park", "日本語のテキスト"] * 10, 400)
# Every code point, lone surrogates included (text read with errors="surrogateescape" holds them).
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())


@FAST
@given(st.text())
def test_bpe_decodes_any_text_back_exactly(text):
    ids = BPE.encode(text)
    assert BPE.decode(ids) == text
    assert BPE.unk_id not in ids.tolist()


@FAST
@given(st.text(alphabet=ANY_CHARACTER, min_size=1))
def test_char_tokenizer_round_trips_and_saves_any_string(text):
    tokenizer = CharTokenizer.from_text(text)
    assert tokenizer.decode(tokenizer.encode(text)) == text
    with tempfile.TemporaryDirectory() as folder:
        write_json(Path(folder) / "tokenizer.json", tokenizer.to_dict())
        assert tokenizer_from_dict(read_json(Path(folder) / "tokenizer.json")) == tokenizer


SCHEMES = {
    "BIO": ["O", "B-X", "I-X", "B-Y", "I-Y"],
    "BIOES": ["O", "B-X", "I-X", "E-X", "S-X"],
}


@FAST
@given(
    scheme=st.sampled_from(sorted(SCHEMES)),
    steps=st.integers(1, 6),
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    scale=st.sampled_from([1.0, 1e3, 1e6]),
    seed=st.integers(0, 2**16),
)
def test_crf_decoding_never_takes_a_forbidden_transition(scheme, steps, lengths, scale, seed):
    names = SCHEMES[scheme]
    generator = torch.Generator().manual_seed(seed)
    crf = LinearChainCRF(len(names))
    crf.constrain(names, scheme)
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    lengths = torch.tensor([min(n, steps) for n in lengths])
    emissions = torch.randn(len(lengths), steps, len(names), generator=generator) * scale
    paths = crf.decode(emissions, lengths)
    for path, length in zip(paths.tolist(), lengths.tolist(), strict=True):
        path = path[:length]
        assert crf.allowed_start[path[0]] and crf.allowed_end[path[-1]]
        assert all(crf.allowed[a, b] for a, b in itertools.pairwise(path))
    score = crf.path_score(emissions, paths, lengths)
    assert torch.isfinite(score).all() and (score <= crf.log_partition(emissions, lengths) + 1e-3 * scale).all()


@FAST
@given(vocabulary=st.integers(2, 8), rows=st.integers(1, 4), length=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_beam_search_with_one_beam_is_greedy_decoding(vocabulary, rows, length, seed):
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(vocabulary, vocabulary, generator=generator).log_softmax(-1)
    eos = vocabulary - 1

    def step(tokens, state):
        return table[tokens], state

    logits = torch.randn(rows, vocabulary, generator=generator).log_softmax(-1)
    greedy = sample(step, logits, None, length, temperature=0, eos_id=eos).tolist()
    beams = beam_search(step, logits, None, beam_size=1, max_length=length, eos_id=eos)
    for row, hypotheses in zip(greedy, beams, strict=True):
        end = row.index(eos) if eos in row else len(row)  # a hypothesis holds no end token
        assert hypotheses[0].tokens.tolist() == row[:end]


@SEARCHING
@given(
    cell=st.sampled_from([*list_cells(), "mingru+scan", "minlstm+scan"]),  # every registered cell
    pooling=st.sampled_from(["last", "mean", "max", "attention"]),
    bidirectional=st.booleans(),
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    junk=st.sampled_from([0.0, 1e3, -1e3]),
    seed=st.integers(0, 2**16),
)
def test_padding_changes_no_backbone_or_pooling_output(cell, pooling, bidirectional, lengths, junk, seed):
    torch.manual_seed(seed)
    name, _, mode = cell.partition("+")
    backbone = build_cell(name, 3, 4, num_layers=2, bidirectional=bidirectional, **({"mode": mode} if mode else {}))
    pool = SequencePooling(pooling, backbone.output_size, bidirectional)
    steps = max(lengths) + 1  # at least one padded step in every row
    inputs = torch.randn(len(lengths), steps, 3)
    lengths = torch.tensor(lengths)
    padded = inputs.clone()
    for row, length in enumerate(lengths.tolist()):
        padded[row, length:] = junk
    with torch.no_grad():
        outputs, _ = backbone(padded, lengths)
        pooled = pool(outputs, lengths)
        for row, length in enumerate(lengths.tolist()):
            alone, _ = backbone(inputs[row : row + 1, :length], torch.tensor([length]))
            torch.testing.assert_close(outputs[row, :length], alone[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(pooled[row], pool(alone, torch.tensor([length]))[0], atol=1e-5, rtol=1e-5)
