"""Deprecated: moved to :mod:`rnnzoo.nn.attention` (this alias goes in the next release)."""

import warnings

from rnnzoo.nn.attention import Attention, AttentionScore  # noqa: F401

warnings.warn("rnnzoo.attention moved to rnnzoo.nn.attention", DeprecationWarning, stacklevel=2)
