"""Data: batching for the trainer (`batches`)."""

from .batches import STRATEGIES, Conditioned, ExampleBatches, Padded, StreamBatches

__all__ = ["Conditioned", "ExampleBatches", "Padded", "StreamBatches", "STRATEGIES"]
