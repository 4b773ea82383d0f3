"""What the compiled kernels of `gru.py` and `elman.py` share with `rnnkit.timeloop`: the input
projection before the loop, the weight gradients and dL/dx after it (the same NumPy code)."""

from __future__ import annotations

import numpy as np


def input_projection(cell, x: np.ndarray) -> np.ndarray:
    """a = x W_ih^T + b_ih for all T steps in one GEMM: x (T, B, I) -> (T, B, G*H)."""
    steps, batch, features = x.shape
    rows = cell.weight_ih.value.shape[0]
    projection = (x.reshape(steps * batch, features) @ cell.weight_ih.value.T).reshape(steps, batch, rows)
    if cell.bias_ih is not None:
        projection += cell.bias_ih.value
    return projection


def finish_backward(cell, cache, x: np.ndarray, d_input: np.ndarray, d_recurrent: np.ndarray) -> np.ndarray:
    """Add the weight gradients (one GEMM each) and return dL/dx = dL/da W_ih, (T, B, I)."""
    steps, batch, features = x.shape
    rows = d_input.shape[-1]
    cell.accumulate_grads(cache, x, d_input, d_recurrent)
    return (d_input.reshape(steps * batch, rows) @ cell.weight_ih.value).reshape(steps, batch, features)
