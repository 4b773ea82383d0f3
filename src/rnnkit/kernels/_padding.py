"""Padded batches in the compiled loops: the hold-the-state rule of `rnnkit.timeloop`.

A padded step (mask m_t = 0) leaves its sequence's state as it was,

    forward:   state_t = state_{t-1}
    backward:  dL/dstate_{t-1} = dL/dstate_t (+ dy_{t-1} from the output),  dz_t = 0

so a padded sequence ends in the state of its last real step, and its padded steps give the
weights no gradient. The loops compute every column of a step as usual and then apply the rule
to the held columns only, so an unpadded step costs one scan of B flags.

`held` (T, B) uint8 is 1 where a step is padding; a (0, B) array means no padding. The LSTM
loops are feature-major (a column per sequence), GRU and Elman batch-major (a row per sequence).
"""

from __future__ import annotations

import numpy as np
from numba import njit


def held_steps(mask: np.ndarray | None, batch: int) -> np.ndarray:
    """The loops' `held` array from the time loop's mask (T, B) of real steps (None: none)."""
    if mask is None:
        return np.zeros((0, batch), np.uint8)
    return np.ascontiguousarray(~np.asarray(mask, bool), dtype=np.uint8)


@njit(inline="always")
def any_held(held, t):
    """Whether step t has a padded sequence."""
    if held.shape[0] == 0:
        return False
    for b in range(held.shape[1]):
        if held[t, b]:
            return True
    return False


@njit(inline="always")
def hold_columns(held_t, previous, current):
    """current[:, b] = previous[:, b] for the held sequences b (feature-major state), a row at
    a time: the rows of a step's slab lie T*B apart, so a column walk would fetch one cache line
    per row for every held sequence (and rows 2^k bytes apart share one L1 set)."""
    for j in range(current.shape[0]):
        for b in range(held_t.shape[0]):
            current[j, b] = previous[j, b] if held_t[b] else current[j, b]


@njit(inline="always")
def hold_rows(held_t, previous, current):
    """current[b] = previous[b] for the held sequences b (batch-major state)."""
    for b in range(held_t.shape[0]):
        if held_t[b]:
            for j in range(current.shape[1]):
                current[b, j] = previous[b, j]


@njit(inline="always")
def clear_columns(held_t, dz):
    """No pre-activation gradient for a held sequence: dz[:, b] = 0 (feature-major), a row at a
    time as in `hold_columns`."""
    zero = dz.dtype.type(0.0)
    for r in range(dz.shape[0]):
        for b in range(held_t.shape[0]):
            dz[r, b] = zero if held_t[b] else dz[r, b]


@njit(inline="always")
def clear_rows(held_t, dz):
    """clear_columns for a batch-major dz (B, G*H)."""
    zero = dz.dtype.type(0.0)
    for b in range(held_t.shape[0]):
        if held_t[b]:
            dz[b] = zero


@njit(inline="always")
def passes_through(held, padded, t, b, dh, dy_previous):
    """For a batch-major backward step: if sequence b is held at step t, dh[b] += dy_{t-1}[b]
    (its gradient passes through the step) and True; else False, and the step computes it."""
    if padded and held[t, b]:
        for j in range(dh.shape[1]):
            dh[b, j] += dy_previous[b, j]
        return True
    return False


@njit(inline="always")
def carry_columns(held_t, dh, dy, previous, add_dy):
    """Before the step's dh += W_hh^T dz (beta = 1): a real sequence's dh restarts from
    dy_{t-1}, a held one keeps its gradient and adds dy_{t-1}. dh (H, B); dy (T, B, H), read at
    step `previous` = t - 1 only when add_dy."""
    hidden, batch = dh.shape
    zero = dh.dtype.type(0.0)
    for b in range(batch):
        held = held_t[b] != 0
        for j in range(hidden):
            kept = dh[j, b] if held else zero
            dh[j, b] = kept + dy[previous, b, j] if add_dy else kept


@njit(inline="always")
def carry_rows(held_t, dh, dy, previous, add_dy):
    """carry_columns for a batch-major dh (B, H)."""
    zero = dh.dtype.type(0.0)
    for b in range(held_t.shape[0]):
        if not held_t[b]:
            dh[b] = zero
        if add_dy:
            for j in range(dh.shape[1]):
                dh[b, j] += dy[previous, b, j]
