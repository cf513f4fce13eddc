"""The CRF's clear errors and exactness: tag shapes, tag schemes, hard constraints, float64."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnnzoo.nn.crf import LinearChainCRF, allowed_transitions, split_tag

BIO = ["O", "B-X", "I-X", "B-Y", "I-Y"]


def random_crf(names: list[str], scheme: str | None, seed: int = 0) -> LinearChainCRF:
    torch.manual_seed(seed)
    crf = LinearChainCRF(len(names))
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.normal_()
    if scheme is not None:
        crf.constrain(names, scheme)
    return crf


def is_allowed(crf: LinearChainCRF, path: list[int]) -> bool:
    moves = all(crf.allowed[a, b] for a, b in itertools.pairwise(path))
    return bool(crf.allowed_start[path[0]] and moves and crf.allowed_end[path[-1]])


@pytest.mark.parametrize("name", ["BI-X", "IO-X", "-X", "OE-X", "O-X", "B-", "BX", "b-X"])
def test_split_tag_refuses_what_is_not_a_tag(name):
    with pytest.raises(ValueError, match="is not a BIOES tag"):
        split_tag(name, "BIOES")


def test_split_tag_reads_every_prefix_of_its_scheme():
    assert [split_tag(name, "BIOES") for name in ["O", "B-X", "I-X", "E-X", "S-X"]] == [
        ("O", ""),
        ("B", "X"),
        ("I", "X"),
        ("E", "X"),
        ("S", "X"),
    ]
    with pytest.raises(ValueError, match="not a BIO tag"):
        split_tag("E-X", "BIO")


def test_a_bioes_constraint_on_a_bio_tag_set_is_refused():
    with pytest.raises(ValueError, match=r"B-X needs E-X.*set tag_scheme to BIO"):
        allowed_transitions(BIO, "BIOES")


def test_a_bio_constraint_on_iob1_tags_is_refused():
    # IOB1 (the original CoNLL-2003) starts entities with I-X: under BIO every I-X would be impossible.
    with pytest.raises(ValueError, match="I-X needs B-X"):
        allowed_transitions(["O", "I-X"], "BIO")


def test_a_full_bioes_tag_set_is_accepted():
    start, transitions, end = allowed_transitions(["O", "B-X", "I-X", "E-X", "S-X"], "BIOES")
    assert start.tolist() == [True, True, False, False, True]
    assert end.tolist() == [True, False, False, True, True]
    assert transitions.sum() > 0


def test_large_emissions_never_decode_a_forbidden_path():
    crf = random_crf(BIO, "BIO")
    torch.manual_seed(1)
    emissions = torch.randn(64, 6, len(BIO)) * 1e5
    emissions[:, :, 2] += 1e6  # I-X everywhere, which may not start a sequence nor follow O
    for path in crf.decode(emissions).tolist():
        assert is_allowed(crf, path), path


def test_forbidden_paths_have_probability_exactly_zero_and_gradients_stay_finite():
    crf = random_crf(["O", "B-X", "I-X"], "BIO")
    emissions = (torch.randn(1, 3, 3) * 50).requires_grad_()
    paths = torch.tensor(list(itertools.product(range(3), repeat=3)))
    probabilities = crf.log_likelihood(emissions.expand(len(paths), -1, -1), paths).exp()
    allowed = torch.tensor([is_allowed(crf, path) for path in paths.tolist()])
    assert probabilities[~allowed].eq(0).all()
    torch.testing.assert_close(probabilities[allowed].sum(), torch.tensor(1.0))
    crf.log_partition(emissions).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in (emissions, crf.transitions, crf.start, crf.end))


def test_a_tag_no_transition_reaches_gives_finite_gradients():
    # Every sum over the previous tag of column 2 is -inf; torch.logsumexp's gradient there is NaN.
    crf = random_crf(["a", "b", "c"], None)
    crf.allowed[:, 2] = False
    emissions = torch.randn(2, 4, 3, requires_grad=True)
    crf(emissions, torch.tensor([[0, 1, 0, 1], [1, 1, 0, 0]])).backward()
    assert torch.isfinite(emissions.grad).all() and torch.isfinite(crf.transitions.grad).all()


def test_a_float64_crf_computes_in_float64():
    crf = random_crf(["O", "B-X", "I-X"], "BIO").double()
    emissions = torch.randn(1, 4, 3, dtype=torch.float64) + 1e3  # float32 keeps ~4 decimals of 1e3
    start, transitions, end = crf._scores()
    scores = []
    for path in itertools.product(range(3), repeat=4):
        score = start[path[0]] + end[path[-1]] + sum(emissions[0, t, tag] for t, tag in enumerate(path))
        scores.append(score + sum(transitions[a, b] for a, b in itertools.pairwise(path)))
    log_z = crf.log_partition(emissions)
    assert log_z.dtype == torch.float64
    torch.testing.assert_close(log_z, torch.logsumexp(torch.stack(scores), 0).unsqueeze(0), rtol=1e-13, atol=1e-10)


def test_half_precision_emissions_are_summed_in_float32():
    crf = random_crf(BIO, None)
    assert crf.log_partition(torch.randn(2, 3, len(BIO)).half()).dtype == torch.float32


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (torch.zeros(2, 2, dtype=torch.long), r"tags must be \[batch, steps\] = \[1, 2\].*got \[2, 2\]"),
        (torch.zeros(2, dtype=torch.long), r"got \[2\]"),
        (torch.zeros(1, 1, dtype=torch.long), r"got \[1, 1\]"),
        (torch.zeros(1, 2), "integer tag indices, got torch.float32"),
        (torch.tensor([[0, 3]]), r"lie in \[0, 3\).*max 3"),
        (torch.tensor([[-1, 0]]), "min -1"),
    ],
)
def test_tags_that_do_not_fit_the_emissions_are_one_clear_error(tags, message):
    crf = random_crf(["a", "b", "c"], None)
    with pytest.raises(ValueError, match=message):
        crf(torch.randn(1, 2, 3), tags)


def test_padding_may_hold_any_tag():
    crf = random_crf(["a", "b", "c"], None)
    emissions = torch.randn(1, 3, 3)
    tags = torch.tensor([[0, 1, -100]])
    torch.testing.assert_close(
        crf.log_likelihood(emissions, tags, torch.tensor([2])), crf.log_likelihood(emissions[:, :2], tags[:, :2])
    )


def test_a_gold_path_the_constraint_forbids_is_one_clear_error():
    crf = random_crf(["O", "B-X", "I-X"], "BIO")
    with pytest.raises(ValueError, match="path 1 .* tag 0 followed by tag 2 at step 2.*tag_scheme to null"):
        crf(torch.randn(2, 3, 3), torch.tensor([[0, 1, 2], [1, 0, 2]]))
    with pytest.raises(ValueError, match="starts with tag 2"):
        crf(torch.randn(1, 2, 3), torch.tensor([[2, 2]]))
