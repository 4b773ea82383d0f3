"""PyTorch's GRU (reset_after=True), compiled.

The equations of `rnnkit.cells.gru` (the NumPy reference), for one direction of one layer:

    forward, t = 0 .. T-1 (a_t = x_t W_ih^T + b_ih, made by the loop; q_t is kept):
        p = h_{t-1} W_hh^T                                    one GEMM, (B, 3H)
        r = sigma(a_r + p_r + b_hr)     z = sigma(a_z + p_z + b_hz)
        q = p_n + b_hn                  n = tanh(a_n + r * q)
        h_t = n + z * (h_{t-1} - n)
    backward, t = T-1 .. 0 (dh_t from the output and from step t+1):
        dz_n = dh_t (1 - z)(1 - n^2)    d(recurrent n) = dz_n * r
        dz_r = dz_n q r (1 - r)         dz_z = dh_t (h_{t-1} - n) z (1 - z)
        dh_{t-1} = dy_{t-1} + dh_t z + [dz_r, dz_z, dz_n r] W_hh

The cache has the reference's layout (act = r, z, n; kept = q; h); `act` is the input-projection
buffer, overwritten in place.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from numba import njit

from .activations import scalar, sigmoid, tanh
from .blas import find_gemm, find_gemv, gemm, project

kernel = njit(cache=True, error_model="numpy")


@njit(inline="always", error_model="numpy")
def _activate_row(a, p, bias, h_prev, kept, h, hidden):
    """One sequence's step: a (3H,) input projection -> r, z, n in place."""
    for j in range(hidden):
        r = sigmoid(a[j] + p[j] + bias[j])
        z = sigmoid(a[hidden + j] + p[hidden + j] + bias[hidden + j])
        q = p[2 * hidden + j] + bias[2 * hidden + j]
        n = tanh(r * q + a[2 * hidden + j])
        a[j], a[hidden + j], a[2 * hidden + j] = r, z, n
        kept[j] = q
        h[j] = (h_prev[j] - n) * z + n


@kernel
def forward_loop(address, w_hh_t, b_hh, act, kept, h, recurrent):
    """act: (T, B, 3H) input projections in, r, z, n out; kept: (T, B, H) q out; h: (T+1, B, H)
    with h[0] the initial state; recurrent: (B, 3H) scratch; w_hh_t: W_hh^T, contiguous."""
    steps, batch, rows = act.shape
    hidden = rows // 3
    for t in range(steps):
        gemm(address, h[t], w_hh_t, recurrent, False, False, 0.0)
        for b in range(batch):
            _activate_row(act[t, b], recurrent[b], b_hh, h[t, b], kept[t, b], h[t + 1, b], hidden)


@kernel
def backward_loop(address, w_hh, act, kept, h, dy, dh, d_input, d_recurrent):
    """dy: (T, B, H) or (0, B, H) for none; dh: (B, H) dL/dh_T in, dL/dh_0 out; d_input and
    d_recurrent: (T, B, 3H), written."""
    steps, batch, rows = act.shape
    hidden = rows // 3
    one = scalar(act, 1.0)
    zero = scalar(act, 0.0)
    has_dy = dy.shape[0] > 0
    if has_dy:
        dh += dy[steps - 1]
    for t in range(steps - 1, -1, -1):
        add_dy = has_dy and t > 0
        for b in range(batch):
            gates, q, h_prev, dh_b = act[t, b], kept[t, b], h[t, b], dh[b]
            da, dr_ = d_input[t, b], d_recurrent[t, b]
            dy_prev = dy[t - 1, b] if add_dy else dh_b  # (unused unless add_dy)
            for j in range(hidden):
                r, z, n = gates[j], gates[hidden + j], gates[2 * hidden + j]
                d = dh_b[j]
                dz_n = d * (one - z) * (one - n * n)
                dz_r = dz_n * q[j] * r * (one - r)
                dz_z = d * (h_prev[j] - n) * z * (one - z)
                da[j], da[hidden + j], da[2 * hidden + j] = dz_r, dz_z, dz_n
                dr_[j], dr_[hidden + j], dr_[2 * hidden + j] = dz_r, dz_z, dz_n * r
                dh_b[j] = d * z + (dy_prev[j] if add_dy else zero)
        gemm(address, d_recurrent[t], w_hh, dh, False, False, 1.0)


@kernel
def inference_step(gemm_address, gemv_address, x, h, w_ih, w_hh, b_ih, b_hh, gates, recurrent, h_out, kept):
    """One step without a cache: x (B, I), h (B, H) -> h_out; the rest is scratch."""
    batch, rows = gates.shape
    for b in range(batch):
        gates[b] = b_ih
    project(gemm_address, gemv_address, x, w_ih, gates, 1.0)
    project(gemm_address, gemv_address, h, w_hh, recurrent, 0.0)
    for b in range(batch):
        _activate_row(gates[b], recurrent[b], b_hh, h[b], kept[b], h_out[b], rows // 3)


# ----------------------------------------------------------------------- Python entry points
def _bias(param, rows, dtype):
    return param.value if param is not None else np.zeros(rows, dtype)


def forward_sequence(cell, projection: np.ndarray, state0):
    steps, batch, rows = projection.shape
    dtype = projection.dtype
    h = np.empty((steps + 1, batch, cell.hidden_size), dtype)
    h[0] = state0[0]
    kept = np.empty((steps, batch, cell.hidden_size), dtype)
    w_hh_t = np.ascontiguousarray(cell.weight_hh.value.T)
    forward_loop(find_gemm(dtype), w_hh_t, _bias(cell.bias_hh, rows, dtype), projection, kept, h,
                 np.empty((batch, rows), dtype))
    return (h[-1],), SimpleNamespace(h=h, act=projection, kept=kept)


def backward_sequence(cell, d_outputs, d_state, cache):
    act = cache.act
    steps, batch, rows = act.shape
    d_input, d_recurrent = np.empty_like(act), np.empty_like(act)
    dh = np.array(d_state[0], dtype=act.dtype, order="C")
    dy = (np.zeros((0, batch, cell.hidden_size), act.dtype) if d_outputs is None
          else np.ascontiguousarray(d_outputs, dtype=act.dtype))
    backward_loop(find_gemm(act.dtype), cell.weight_hh.value, act, cache.kept, cache.h, dy, dh, d_input, d_recurrent)
    return d_input, d_recurrent, (dh,)


def step(cell, x: np.ndarray, state):
    h = np.ascontiguousarray(state[0])
    dtype = cell.dtype
    batch, rows = x.shape[0], cell.weight_hh.value.shape[0]
    h_out = np.empty_like(h)
    inference_step(find_gemm(dtype), find_gemv(dtype), np.ascontiguousarray(x, dtype), h, cell.weight_ih.value, cell.weight_hh.value,
                   _bias(cell.bias_ih, rows, dtype), _bias(cell.bias_hh, rows, dtype), np.empty((batch, rows), dtype),
                   np.empty((batch, rows), dtype), h_out, np.empty_like(h))
    return (h_out,)
