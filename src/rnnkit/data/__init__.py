"""Data: batching for the trainer (`batches`)."""

from .batches import STRATEGIES, Conditioned, ExampleBatches, StreamBatches

__all__ = ["Conditioned", "ExampleBatches", "StreamBatches", "STRATEGIES"]
