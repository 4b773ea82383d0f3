"""Recurrent dropout in the compiled loops (Gal & Ghahramani 2016; `rnnkit.cells.base`).

With the layer's mask m, one per sequence and the same at every step, W_hh reads m * h_{t-1}
and nothing else changes:

    forward:   r_t = W_hh (m * h_{t-1})            one masked copy of the GEMM's operand per step
    backward:  dL/dh_{t-1} += m * (W_hh^T dr_t)    the GEMM into scratch, then masked and added

The weight gradient dW_hh = sum_t dr_t^T (m * h_{t-1}) is the NumPy code's, after the loop (the
cell's `fed_states` reads `cache.recurrent_mask`).

`dropped` is m in the loop's layout, (H, B) for the feature-major LSTM loops and (B, H) for the
batch-major GRU and Elman ones, or an empty (0, 0) array when there is no recurrent dropout.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .blas import product


def mask_for_loop(mask: np.ndarray | None, dtype, feature_major: bool) -> np.ndarray:
    """`dropped` from the layer's (B, H) mask (None: no recurrent dropout)."""
    if mask is None:
        return np.zeros((0, 0), dtype)
    return np.ascontiguousarray(mask.T if feature_major else mask, dtype=dtype)


@njit(inline="always")
def fed(h, dropped, scratch):
    """The operand of the step's GEMM: h itself, or scratch = dropped * h."""
    if dropped.shape[0] == 0:
        return h
    rows, columns = h.shape
    for k in range(rows):
        for n in range(columns):
            scratch[k, n] = h[k, n] * dropped[k, n]
    return scratch


@njit(inline="always")
def add_product(addresses, a, b, dh, dropped, scratch):
    """dh += a @ b, or dh += dropped * (a @ b) (the product made in scratch first)."""
    if dropped.shape[0] == 0:
        product(addresses, a, b, dh, 1.0)
        return
    product(addresses, a, b, scratch, 0.0)
    rows, columns = dh.shape
    for k in range(rows):
        for n in range(columns):
            dh[k, n] += scratch[k, n] * dropped[k, n]
