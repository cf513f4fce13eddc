"""Deprecated: moved to :mod:`rnnzoo.nn.masking` (this alias goes in the next release)."""

import warnings

from rnnzoo.nn.masking import check_lengths, lengths_to_mask, masked_softmax, reverse_padded  # noqa: F401

warnings.warn("rnnzoo.masking moved to rnnzoo.nn.masking", DeprecationWarning, stacklevel=2)
