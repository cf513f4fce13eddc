"""Frame normalisation: the training statistics, and the one function data modules and tasks both apply."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnzoo.frames import MEAN_OPTION, STD_OPTION, frame_statistics, normalize_frames, normalize_with


def test_statistics_are_the_population_mean_and_deviation_of_every_frame():
    rows = [torch.randn(5, 3) * 4 + 2, torch.randn(2, 3), torch.zeros(0, 3)]
    mean, std = frame_statistics(rows)
    flat = torch.cat(rows).numpy().astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, flat.std(0), rtol=1e-12)  # numpy's default: ddof=0, as the LTC protocol


def test_a_constant_feature_is_only_centred():
    mean, std = frame_statistics([torch.tensor([[1.0, 7.0], [3.0, 7.0]])])
    assert (mean, std) == ([2.0, 7.0], [1.0, 1.0])
    assert normalize_frames(torch.tensor([[3.0, 7.0]]), mean, std).tolist() == [[1.0, 0.0]]


def test_no_frames_is_a_clear_error():
    with pytest.raises(ValueError, match="no frames"):
        frame_statistics([torch.zeros(0, 4)])


def test_normalize_with_reads_the_data_state_options():
    frames = torch.tensor([[2.0, 4.0]], dtype=torch.float64)
    options = {MEAN_OPTION: [1.0, 2.0], STD_OPTION: [0.5, 2.0]}
    normalised = normalize_with(options, frames)
    assert normalised.dtype == torch.float32 and normalised.tolist() == [[2.0, 1.0]]
    untouched = normalize_with({"max_word_length": 20}, frames)
    assert untouched.dtype == torch.float32 and untouched.tolist() == [[2.0, 4.0]]
