"""`rnnkit lm`: the character- (or word-) level language model: train with truncated BPTT,
sample with temperature and top-k, measure perplexity, and inspect what the units respond to.
Stands on network.SequenceNetwork, train.Trainer, data.batches.StreamBatches, data.text, data.corpora.
In Python: `lm.train(text_or_corpus, **settings)` -> a `TextModel` (sample, perplexity, history,
save), `lm.load(path)` (`api.py`)."""

from .api import TextModel, load, train

__all__ = ["TextModel", "load", "train"]
