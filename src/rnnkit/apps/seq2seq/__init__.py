"""`rnnkit seq2seq`: the encoder-decoder (generated addition, dates, reversal, or a TSV of pairs):
the encoder's final state starts the decoder, trained by teacher forcing, decoded greedily or by beam.
Stands on conditioned.ConditionedDecoder, decoding, network.SequenceNetwork, train.Trainer, schedules.
In Python: `Translator(...).fit(pairs).translate(strings, beam=)` (`api.py`)."""

from .api import Translator

__all__ = ["Translator"]
