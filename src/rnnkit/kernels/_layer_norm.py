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
before the loop and back after it (`normalise_all`, `normalise_backward_all`).

Inside the loop the two per-step normalisations are not separate passes over the step's slab:
they are split into row pieces (`add_row`, `normalise_row`, `add_backward_row`, `backward_row`)
that run in the unit loops, on rows those loops have just read or written. Forward, the
product's statistics come from its dense (4H, B) buffer and each unit normalises its own rows
as it reads them; c_t's sums are added as each unit makes it, and LN(c_t) is written unit by
unit in the output half. Backward, d_out's sums build up in the output half and LN'(d_out) is
made row by row in the cell half, where dz's sums for the product's normalisation build up too;
only dL/d(W_hh h_{t-1}) needs a pass of its own, as every dz row must be known first.

The arrays a step writes are column slabs of (rows, T*B) arrays, rows T*B apart: each row loop
prefetches AHEAD rows on (`_prefetch`). The gains' and shifts' gradients are sums over every column; summed in
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
def start_sums(sums, columns):
    """Zero the (2, B) running sums' first `columns` columns; returns the two rows."""
    first, second = sums[0, :columns], sums[1, :columns]
    first[:] = 0.0
    second[:] = 0.0
    return first, second


@njit(inline="always", error_model="numpy")
def add_row(row, total):
    """total[b] += row[b]: a row's share of the column sums (mu's)."""
    for b in range(row.shape[0]):
        total[b] += row[b]


@njit(inline="always", error_model="numpy")
def finish_statistics(v, mean, variance, inv):
    """From mean = sum_r v (per column, summed already): mean = mu, and inv = 1/sigma by a pass
    over v's rows (variance: (B,) scratch)."""
    rows, columns = v.shape
    for b in range(columns):
        mean[b] /= rows
    variance[:] = 0.0
    for r in range(rows):
        _ahead(v, r)
        for b in range(columns):
            centred = v[r, b] - mean[b]
            variance[b] += centred * centred
    for b in range(columns):
        inv[b] = 1.0 / math.sqrt(variance[b] / rows + EPS)


@njit(inline="always", error_model="numpy")
def normalise_row(v_row, mean, inv, g, s, has_shift, v_hat_row, out_row, add):
    """One row r of a normalised (R, B) array: v_hat[r] = (v[r] - mu) inv and out[r] = g v_hat[r]
    (+ s), or out[r] += that when `add`."""
    for b in range(v_row.shape[0]):
        normalised = (v_row[b] - mean[b]) * inv[b]
        v_hat_row[b] = normalised
        y = normalised * g + s if has_shift else normalised * g
        out_row[b] = out_row[b] + y if add else y


@njit(inline="always", error_model="numpy")
def add_backward_row(dy_row, g, v_hat_row, first, second):
    """Row r's share of the backward's column sums: first += d_hat, second += d_hat v_hat."""
    for b in range(dy_row.shape[0]):
        d_hat = dy_row[b] * g
        first[b] += d_hat
        second[b] += d_hat * v_hat_row[b]


@njit(inline="always", error_model="numpy")
def backward_row(dy_row, g, v_hat_row, first, second, inv, dv_row):
    """dv[r] = (d_hat - mean_r d_hat - v_hat mean_r(d_hat v_hat)) inv, from the column means."""
    for b in range(dy_row.shape[0]):
        dv_row[b] = (dy_row[b] * g - first[b] - v_hat_row[b] * second[b]) * inv[b]


@njit(inline="always", error_model="numpy")
def scale_sums(first, second, rows):
    """The backward's column sums -> means (over `rows` rows)."""
    for b in range(first.shape[0]):
        first[b] /= rows
        second[b] /= rows


@njit(inline="always", error_model="numpy")
def column_statistics(v, inv, sums):
    """mu (returned: sums' first row) and inv = 1/sigma of each column of v (R, B)."""
    mean, variance = start_sums(sums, v.shape[1])
    for r in range(v.shape[0]):
        _ahead(v, r)
        add_row(v[r], mean)
    finish_statistics(v, mean, variance, inv)
    return mean


@njit(inline="always", error_model="numpy")
def normalise_unit_rows(v, gain, mean, inv, v_hat, out, blocks, j, now):
    """Hidden unit j's rows of a normalised (G*H, B) product v, one per block present (`blocks`:
    the blocks' row offsets, -1 for one absent), added into out: out[row, now:now + B] +=
    gain v_hat, v_hat kept in v_hat[row, now:now + B] (the recurrent product's normalisation,
    done unit by unit inside the unit loop where out's rows are read anyway)."""
    batch, zero = v.shape[1], v.dtype.type(0.0)
    for block in range(4):
        if blocks[block] >= 0:
            row = blocks[block] + j
            normalise_row(v[row], mean, inv, gain[row], zero, False, v_hat[row, now:now + batch],
                          out[row, now:now + batch], True)


@njit(inline="always", error_model="numpy")
def add_unit_backward_rows(dy, gain, v_hat, blocks, j, now, batch, first, second):
    """Hidden unit j's rows' share of the backward sums (`add_backward_row`), one row per block
    present, of (G*H, T*B) arrays at columns now ... now + B."""
    for block in range(4):
        if blocks[block] >= 0:
            row = blocks[block] + j
            add_backward_row(dy[row, now:now + batch], gain[row], v_hat[row, now:now + batch], first, second)


@njit(inline="always", error_model="numpy")
def normalise_columns(v, gain, shift, v_hat, inv, out, add, sums):
    """For each column b of v (R, B): v_hat[:, b] and inv[b] as above, and out[:, b] = gain *
    v_hat (+ shift when it has entries), added to out when `add`. sums: (2, B) scratch."""
    mean = column_statistics(v, inv, sums)
    has_shift, zero = shift.shape[0] > 0, v.dtype.type(0.0)
    for r in range(v.shape[0]):
        _ahead(v_hat, r)
        _ahead(out, r)
        normalise_row(v[r], mean, inv, gain[r], shift[r] if has_shift else zero, has_shift, v_hat[r], out[r], add)


@njit(inline="always", error_model="numpy")
def normalise_backward_columns(dy, gain, v_hat, inv, dv, sums):
    """dv (R, B) from dy (R, B), column by column. sums: (2, B) scratch."""
    rows, columns = dy.shape
    first, second = start_sums(sums, columns)  # sum_r d_hat, sum_r d_hat v_hat
    for r in range(rows):
        _ahead(dy, r)
        _ahead(v_hat, r)
        add_backward_row(dy[r], gain[r], v_hat[r], first, second)
    scale_sums(first, second, rows)
    backward_rows(dy, gain, v_hat, first, second, inv, dv)


@njit(inline="always", error_model="numpy")
def backward_rows(dy, gain, v_hat, first, second, inv, dv):
    """`backward_row` for every row, once the column means are known."""
    for r in range(dy.shape[0]):
        _ahead(dv, r)
        _ahead(dy, r)
        _ahead(v_hat, r)
        backward_row(dy[r], gain[r], v_hat[r], first, second, inv, dv[r])


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
