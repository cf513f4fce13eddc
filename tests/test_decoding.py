"""One GenerationConfig drives greedy decoding, sampling (temperature, top-k, top-p) and beam search."""

from __future__ import annotations

import pytest
import torch

from rnnzoo.decoding import GenerationConfig, beam_search, decode, sample, sample_next


def bigram_step(tokens, state):
    """A fixed bigram model over 5 tokens (4 is the end): after any token, 4 is the most likely."""
    table = torch.log(torch.tensor([[0.1, 0.2, 0.1, 0.1, 0.5]] * 5))
    return table[tokens], state


def test_top_p_samples_only_inside_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).expand(2000, -1)
    drawn = sample_next(logits, 1.0, generator=torch.Generator().manual_seed(0), top_p=0.75)
    assert set(drawn.tolist()) == {0, 1}  # 0.5 + 0.3 reach 0.75; 2 and 3 never drawn
    share = (drawn == 0).float().mean().item()
    assert share == pytest.approx(0.5 / 0.8, abs=0.04)  # renormalised inside the nucleus


def test_top_p_of_one_changes_nothing():
    logits = torch.randn(4, 7)
    a = sample_next(logits, 1.0, generator=torch.Generator().manual_seed(3), top_p=1.0)
    b = sample_next(logits, 1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_min_length_forbids_the_end_token_before_it(beam_size):
    logits, _ = bigram_step(torch.zeros(2, dtype=torch.long), None)
    config = GenerationConfig(max_length=10, min_length=4, beam_size=beam_size, length_penalty=0.0)
    for row in decode(bigram_step, logits, None, config, eos_id=4):
        assert len(row[0].tokens) >= 4
    shortest = decode(bigram_step, logits, None, GenerationConfig(max_length=10, beam_size=beam_size), eos_id=4)
    assert min(len(row[0].tokens) for row in shortest) < 4  # without it the end comes first


def test_sampling_with_a_seed_is_reproducible_and_greedy_wins_over_temperature():
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    sampled = GenerationConfig(max_length=6, temperature=1.0, seed=1)
    first = decode(bigram_step, logits, None, sampled, eos_id=None)
    again = decode(bigram_step, logits, None, sampled, eos_id=None)
    assert [r[0].tokens.tolist() for r in first] == [r[0].tokens.tolist() for r in again]
    greedy = GenerationConfig(max_length=6, temperature=1.0, greedy=True)
    expected = sample(bigram_step, logits, None, 6, temperature=0)
    assert [r[0].tokens.tolist() for r in decode(bigram_step, logits, None, greedy, eos_id=None)] == expected.tolist()


def test_without_an_end_token_beams_run_to_max_length():
    logits, _ = bigram_step(torch.zeros(1, dtype=torch.long), None)
    hypotheses = beam_search(bigram_step, logits, None, beam_size=2, max_length=5, eos_id=None, n_best=2)
    assert [len(h.tokens) for h in hypotheses[0]] == [5, 5]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"beam_size": 0}, "beam_size must be a positive integer"),
        ({"beam_size": 2, "n_best": 3}, r"n_best must lie in \[1, beam_size=2\]"),
        ({"max_length": 0}, r"max_length \(max_new_tokens of a language model\) must be a positive"),
        ({"max_length": 3, "min_length": 4}, "min_length must lie in"),
        ({"temperature": -1.0}, "temperature must be a finite number >= 0"),
        ({"temperature": float("nan")}, "temperature must be a finite number >= 0"),
        ({"temperature": float("inf")}, "temperature must be a finite number >= 0"),
        ({"top_p": float("nan")}, r"top_p must lie in \(0, 1\]"),
        ({"length_penalty": float("nan")}, "length_penalty .* must be a finite number"),
        ({"top_k": 0}, "top_k must be a positive"),
        ({"top_p": 1.5}, r"top_p must lie in \(0, 1\]"),
        ({"length_penalty": -1.0}, "length_penalty"),
        ({"temperature": 0.8, "beam_size": 2}, "sampling .* draws one sequence"),
    ],
)
def test_a_bad_option_is_one_clear_error(options, message):
    with pytest.raises(ValueError, match=message):
        GenerationConfig(**options)


def test_option_names_are_the_fields():
    assert GenerationConfig.option_names()[:3] == ["max_length", "min_length", "beam_size"]
    assert "top_p" in GenerationConfig.option_names() and "seed" in GenerationConfig.option_names()
