"""BLEU as sacrebleu computes it (unsmoothed), with one or several references."""

from __future__ import annotations

import pytest
import sacrebleu

from rnnzoo.metrics import BLEU

HYPOTHESES = ["a dog runs on the grass", "two men sit", "the cat is on a red mat today"]
REFERENCES = [
    ["a dog runs on the grass in the park", "a brown dog is running on grass", "dog runs on the grass"],
    ["two men are sitting on a bench", "two men sit down", "men sit"],
    ["the cat sits on the red mat", "a cat is on a mat", "the cat is on the mat today ."],
]


def test_multi_reference_bleu_equals_sacrebleu():
    metric = BLEU(tokenize="none")
    metric.update(HYPOTHESES, REFERENCES)
    # sacrebleu takes references as streams: the k-th reference of every hypothesis.
    streams = [list(stream) for stream in zip(*REFERENCES, strict=True)]
    expected = sacrebleu.corpus_bleu(HYPOTHESES, streams, tokenize="none", smooth_method="none").score
    assert metric.compute().item() == pytest.approx(expected, abs=1e-4)


def test_the_order_of_the_references_does_not_matter():
    ordered, shuffled = BLEU(), BLEU()
    ordered.update(HYPOTHESES, REFERENCES)
    shuffled.update(HYPOTHESES, [list(reversed(refs)) for refs in REFERENCES])
    assert ordered.compute().item() == pytest.approx(shuffled.compute().item(), abs=1e-6)


def test_one_reference_as_a_string_and_as_a_list_agree():
    single, listed = BLEU(), BLEU()
    single.update(HYPOTHESES, [refs[0] for refs in REFERENCES])
    listed.update(HYPOTHESES, [[refs[0]] for refs in REFERENCES])
    assert single.compute().item() == pytest.approx(listed.compute().item())
    expected = sacrebleu.corpus_bleu(
        HYPOTHESES, [[refs[0] for refs in REFERENCES]], tokenize="none", smooth_method="none"
    ).score
    assert single.compute().item() == pytest.approx(expected, abs=1e-4) and expected > 0
