"""One LightningModule per RNN task type, all on the shared backbones and the one task layer of :mod:`.base`."""

from rnnzoo.tasks.base import RNNTask, load_task
from rnnzoo.tasks.captioner import Captioner
from rnnzoo.tasks.classifier import Classifier
from rnnzoo.tasks.generative import GenerativeTask
from rnnzoo.tasks.language_model import LanguageModel
from rnnzoo.tasks.seq2seq import Seq2Seq
from rnnzoo.tasks.sequence import SequencePredictor
from rnnzoo.tasks.tagger import Tagger

__all__ = [
    "Captioner",
    "Classifier",
    "GenerativeTask",
    "LanguageModel",
    "RNNTask",
    "Seq2Seq",
    "SequencePredictor",
    "Tagger",
    "load_task",
]
