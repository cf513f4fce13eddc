"""Deprecated: moved to :mod:`rnnzoo.nn.crf` (this alias goes in the next release)."""

import warnings

from rnnzoo.nn.crf import FORBIDDEN, LinearChainCRF, TagScheme, allowed_transitions, split_tag  # noqa: F401

warnings.warn("rnnzoo.crf moved to rnnzoo.nn.crf", DeprecationWarning, stacklevel=2)
