"""Deprecated: moved to :mod:`rnnzoo.nn.pooling` (this alias goes in the next release)."""

import warnings

from rnnzoo.nn.pooling import PoolingMode, SequencePooling  # noqa: F401

warnings.warn("rnnzoo.pooling moved to rnnzoo.nn.pooling", DeprecationWarning, stacklevel=2)
