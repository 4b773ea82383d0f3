"""rnnkit: recurrent neural networks as the lectures teach them, with hand-derived
backpropagation through time in NumPy."""

__version__ = "0.1.0"

from .module import Module, Parameter  # noqa: E402  (the version first: submodules read it)
from .recurrent import GRU, LSTM, RNN  # noqa: E402

__all__ = ["GRU", "LSTM", "RNN", "Module", "Parameter", "__version__"]
