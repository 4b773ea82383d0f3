"""Layer normalisation inside the feature-major LSTM loop (`lstm_variants.py`).

The equations of `rnnkit.cells.layernorm` (the reference), applied to one step's column of each
sequence: a (R, B) array normalised over its R rows, separately for each of its B columns,

    mu = mean_r v      inv = 1 / sqrt(mean_r (v - mu)^2 + eps)      v_hat = (v - mu) inv
    y = gain v_hat (+ shift)
    backward: dv = (d_hat - mean_r d_hat - v_hat mean_r(d_hat v_hat)) inv,   d_hat = dy gain
              d_gain += sum_n dy v_hat,   d_shift += sum_n dy   (over all T*B columns: `add_gain_gradients`)

The LSTM normalises two things per step (its NumPy cell, `cells/lstm.py`): the recurrent product
W_hh h_{t-1} (4H rows, no shift: b_hh follows) and the cell state c_t before the output
activation (H rows, its own shift). The input projection is normalised for all steps at once,
before the loop and back after it (`normalise_all`, `normalise_backward_all`). The arrays a step
writes are column slabs of (rows, T*B) arrays, rows T*B apart: each row loop prefetches AHEAD
rows on (`_prefetch`). The gains' and shifts' gradients are sums over every column; summed in
the per-step loop they made it scalar (a float sum over b is a chain LLVM may not reorder), so
they are one NumPy pass each over the whole (rows, T*B) arrays after the loop.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._loop_kernel import loop_kernel
from ._prefetch import AHEAD, prefetch_rows

EPS = 1e-5  # as `rnnkit.cells.layernorm.EPS`


@njit(inline="always")
def _ahead(array, r):
    """Prefetch array's row r + AHEAD (its first columns), if it has one."""
    if r + AHEAD < array.shape[0]:
        prefetch_rows(array, r + AHEAD, 0, 1, 0, array.shape[1])


@njit(inline="always", error_model="numpy")
def normalise_columns(v, gain, shift, v_hat, inv, out, add, sums):
    """For each column b of v (R, B): v_hat[:, b] and inv[b] as above, and out[:, b] = gain *
    v_hat (+ shift when it has entries), added to out when `add`. sums: (2, B) scratch."""
    rows, columns = v.shape
    zero = v.dtype.type(0.0)
    mean, variance = sums[0, :columns], sums[1, :columns]
    mean[:] = zero
    variance[:] = zero
    for r in range(rows):
        _ahead(v, r)
        for b in range(columns):
            mean[b] += v[r, b]
    for b in range(columns):
        mean[b] /= rows
    for r in range(rows):
        for b in range(columns):
            centred = v[r, b] - mean[b]
            variance[b] += centred * centred
    for b in range(columns):
        inv[b] = 1.0 / math.sqrt(variance[b] / rows + EPS)
    has_shift = shift.shape[0] > 0
    for r in range(rows):
        _ahead(v_hat, r)
        _ahead(out, r)
        g, s = gain[r], (shift[r] if has_shift else zero)
        for b in range(columns):
            normalised = (v[r, b] - mean[b]) * inv[b]
            v_hat[r, b] = normalised
            y = normalised * g + s if has_shift else normalised * g
            out[r, b] = out[r, b] + y if add else y


@njit(inline="always", error_model="numpy")
def normalise_backward_columns(dy, gain, v_hat, inv, dv, sums):
    """dv (R, B) from dy (R, B), column by column. sums: (2, B) scratch."""
    rows, columns = dy.shape
    first, second = sums[0, :columns], sums[1, :columns]  # mean_r d_hat, mean_r d_hat v_hat
    first[:] = 0.0
    second[:] = 0.0
    for r in range(rows):
        _ahead(dy, r)
        _ahead(v_hat, r)
        g = gain[r]
        for b in range(columns):
            d_hat = dy[r, b] * g
            first[b] += d_hat
            second[b] += d_hat * v_hat[r, b]
    for b in range(columns):
        first[b] /= rows
        second[b] /= rows
    for r in range(rows):
        _ahead(dv, r)
        g = gain[r]
        for b in range(columns):
            dv[r, b] = (dy[r, b] * g - first[b] - v_hat[r, b] * second[b]) * inv[b]


@loop_kernel
def normalise_all(v, gain, shift, v_hat, inv, sums):
    """v (R, N) normalised column by column in place, v = gain v_hat (+ shift): the input
    projections of every step at once (N = T*B). sums: (2, N) scratch."""
    normalise_columns(v, gain, shift, v_hat, inv, v, False, sums)


@loop_kernel
def normalise_backward_all(dy, gain, v_hat, inv, dv, sums):
    """`normalise_backward_columns` over every step's columns at once."""
    normalise_backward_columns(dy, gain, v_hat, inv, dv, sums)


def add_gain_gradients(norm, dy: np.ndarray, v_hat: np.ndarray) -> None:
    """A LayerNorm's parameter gradients from every column at once, feature-major (R, T*B):
    d_gain += sum_n dy v_hat, d_shift += sum_n dy (NumPy: one vectorised pass each)."""
    norm.weight.grad += np.einsum("rn,rn->r", dy, v_hat)
    if norm.bias is not None:
        norm.bias.grad += dy.sum(axis=1)
