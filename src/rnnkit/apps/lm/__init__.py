"""`rnnkit lm`: the character- (or word-) level language model: train with truncated BPTT,
sample with temperature and top-k, measure perplexity, and inspect what the units respond to.
Stands on network.SequenceNetwork, train.Trainer, data.batches.StreamBatches, data.text, data.corpora."""
