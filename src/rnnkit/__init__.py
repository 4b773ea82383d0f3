"""rnnkit: recurrent neural networks as the lectures teach them, with hand-derived
backpropagation through time in NumPy."""

from .module import Module, Parameter
from .recurrent import GRU, LSTM, RNN

__version__ = "0.1.0"

__all__ = ["GRU", "LSTM", "RNN", "Module", "Parameter", "__version__"]
