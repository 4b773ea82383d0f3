"""Task models: a network, a head and the task's own inference loop."""

from .caption import Captioner
from .classify import SequenceClassifier, SequenceRegressor
from .forecast import Forecaster
from .language import LanguageModel
from .seq2seq import Seq2Seq

__all__ = ["Captioner", "Forecaster", "LanguageModel", "Seq2Seq", "SequenceClassifier", "SequenceRegressor"]
