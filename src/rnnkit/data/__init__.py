"""Data: batching for the trainer (`batches`)."""

from .batches import STRATEGIES, ExampleBatches, StreamBatches

__all__ = ["ExampleBatches", "StreamBatches", "STRATEGIES"]
