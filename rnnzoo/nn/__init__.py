"""Building blocks that are neither cells nor tasks: masking, attention, pooling, CRF, encoders, embeddings, bridge.

The embedding (:class:`PretrainedEmbedding`) is the one pretrained word vectors fill.

``rnnzoo.nn.masking`` depends on torch alone (the cells use it); the other blocks may
use the cells, and the tasks use them all.
"""

from rnnzoo.nn.attention import Attention
from rnnzoo.nn.bridge import StateBridge
from rnnzoo.nn.char_encoder import CharEncoder
from rnnzoo.nn.cnn import SmallCNN
from rnnzoo.nn.crf import LinearChainCRF
from rnnzoo.nn.embedding import PretrainedEmbedding
from rnnzoo.nn.masking import lengths_to_mask, masked_softmax, reverse_padded
from rnnzoo.nn.pooling import SequencePooling

__all__ = [
    "Attention",
    "CharEncoder",
    "LinearChainCRF",
    "PretrainedEmbedding",
    "SequencePooling",
    "SmallCNN",
    "StateBridge",
    "lengths_to_mask",
    "masked_softmax",
    "reverse_padded",
]
