"""Recurrent cells, one file per family: the lecture's equations in each docstring."""

from .base import Cell
from .elman import ElmanCell
from .gru import GRUCell
from .lstm import VARIANTS, LSTMCell, LSTMStructure, lstm_structure

__all__ = ["Cell", "ElmanCell", "GRUCell", "LSTMCell", "LSTMStructure", "VARIANTS", "lstm_structure"]
