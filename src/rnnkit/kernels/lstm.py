"""PyTorch's LSTM (gates i, f, g, o; sigmoid and tanh; no peepholes), compiled.

The same equations as `rnnkit.cells.lstm` (whose NumPy code is the reference), for one
direction of one layer, with the whole time loop in one compiled call:

    forward, t = 0 .. T-1:
        z_t = a_t + h_{t-1} W_hh^T + b_hh           a_t = x_t W_ih^T + b_ih, made by the loop
        i, f, g, o = sigma(z_i), sigma(z_f), tanh(z_g), sigma(z_o)
        c_t = f * c_{t-1} + i * g     s_t = tanh(c_t)     h_t = o * s_t
    backward, t = T-1 .. 0 (dh_t = dL/dh_t from the output and from step t+1):
        dc   = dc_t + dh_t * o * (1 - s_t^2)
        dz_o = dh_t * s_t * o (1 - o)      dz_i = dc * g * i (1 - i)
        dz_f = dc * c_{t-1} * f (1 - f)    dz_g = dc * i * (1 - g^2)
        dc_{t-1} = dc * f                  dh_{t-1} = dy_{t-1} + dz W_hh

The cache has the reference's layout (act, c, s, h), so either backward can follow either forward;
`act` is the input-projection buffer itself, overwritten in place by the activations.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from numba import njit

from .activations import scalar, sigmoid, tanh
from .blas import find_gemm, find_gemv, gemm, project

kernel = njit(cache=True, error_model="numpy")


@njit(inline="always", error_model="numpy")
def _activate_row(z, bias, c_prev, c, s, h, hidden):
    """One sequence's step: z (4H,) pre-activations without b_hh -> activations, in place."""
    for j in range(hidden):
        i = sigmoid(z[j] + bias[j])
        f = sigmoid(z[hidden + j] + bias[hidden + j])
        g = tanh(z[2 * hidden + j] + bias[2 * hidden + j])
        o = sigmoid(z[3 * hidden + j] + bias[3 * hidden + j])
        z[j], z[hidden + j], z[2 * hidden + j], z[3 * hidden + j] = i, f, g, o
        c[j] = f * c_prev[j] + i * g
        s[j] = tanh(c[j])
        h[j] = o * s[j]


@kernel
def forward_loop(address, w_hh_t, b_hh, act, h, c, s):
    """act: (T, B, 4H) input projections on entry, gate activations on exit; h, c: (T+1, B, H)
    with the initial state in [0]; s: (T, B, H). w_hh_t: W_hh^T, contiguous (H, 4H)."""
    steps, batch, rows = act.shape
    hidden = rows // 4
    for t in range(steps):
        gemm(address, h[t], w_hh_t, act[t], False, False, 1.0)
        for b in range(batch):
            _activate_row(act[t, b], b_hh, c[t, b], c[t + 1, b], s[t, b], h[t + 1, b], hidden)


@kernel
def backward_loop(address, w_hh, act, c, s, dy, dh, dc, dz):
    """dy: (T, B, H) output gradients, or (0, B, H) for none; dh, dc: (B, H) gradients w.r.t.
    the final state on entry, the initial state on exit; dz: (T, B, 4H) is written."""
    steps, batch, rows = act.shape
    hidden = rows // 4
    one = scalar(act, 1.0)
    has_dy = dy.shape[0] > 0
    if has_dy:
        dh += dy[steps - 1]
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            gates, grads, c_prev, s_t, dh_b, dc_b = act[t, b], dz[t, b], c[t, b], s[t, b], dh[b], dc[b]
            for j in range(hidden):
                i, f = gates[j], gates[hidden + j]
                g, o = gates[2 * hidden + j], gates[3 * hidden + j]
                d_cell = dc_b[j] + dh_b[j] * o * (one - s_t[j] * s_t[j])
                grads[j] = d_cell * g * i * (one - i)
                grads[hidden + j] = d_cell * c_prev[j] * f * (one - f)
                grads[2 * hidden + j] = d_cell * i * (one - g * g)
                grads[3 * hidden + j] = dh_b[j] * s_t[j] * o * (one - o)
                dc_b[j] = d_cell * f
        if has_dy and t > 0:
            dh[:] = dy[t - 1]
            gemm(address, dz[t], w_hh, dh, False, False, 1.0)
        else:
            gemm(address, dz[t], w_hh, dh, False, False, 0.0)


@kernel
def inference_step(gemm_address, gemv_address, x, h, c, w_ih, w_hh, b_ih, b_hh, gates, h_out, c_out):
    """One step without a cache: x (B, I), h, c (B, H) -> h_out, c_out; gates (B, 4H) scratch."""
    batch, rows = gates.shape
    for b in range(batch):
        gates[b] = b_ih
    project(gemm_address, gemv_address, x, w_ih, gates, 1.0)
    project(gemm_address, gemv_address, h, w_hh, gates, 1.0)
    for b in range(batch):
        _activate_row(gates[b], b_hh, c[b], c_out[b], h_out[b], h_out[b], rows // 4)


# ----------------------------------------------------------------------- Python entry points
def _bias(param, rows, dtype):
    return param.value if param is not None else np.zeros(rows, dtype)


def forward_sequence(cell, projection: np.ndarray, state0):
    """The compiled `timeloop.forward_sequence` body: projection (T, B, 4H) -> (state, cache)."""
    steps, batch, rows = projection.shape
    dtype = projection.dtype
    h = np.empty((steps + 1, batch, cell.hidden_size), dtype)
    c = np.empty_like(h)
    h[0], c[0] = state0[0], state0[1]
    s = np.empty((steps, batch, cell.hidden_size), dtype)
    w_hh_t = np.ascontiguousarray(cell.weight_hh.value.T)  # the faster GEMM layout (PERF.md)
    forward_loop(find_gemm(dtype), w_hh_t, _bias(cell.bias_hh, rows, dtype), projection, h, c, s)
    return (h[-1], c[-1]), SimpleNamespace(h=h, c=c, s=s, act=projection)


def backward_sequence(cell, d_outputs, d_state, cache):
    """The compiled `timeloop.backward_sequence` loop: returns (d_input, d_recurrent, d_state0)."""
    act = cache.act
    steps, batch, rows = act.shape
    dz = np.empty_like(act)
    dh = np.array(d_state[0], dtype=act.dtype, order="C")
    dc = np.array(d_state[1], dtype=act.dtype, order="C")
    dy = (np.zeros((0, batch, cell.hidden_size), act.dtype) if d_outputs is None
          else np.ascontiguousarray(d_outputs, dtype=act.dtype))
    backward_loop(find_gemm(act.dtype), cell.weight_hh.value, act, cache.c, cache.s, dy, dh, dc, dz)
    return dz, dz, (dh, dc)


def step(cell, x: np.ndarray, state):
    """One inference step: x (B, I), state (h, c) -> new (h, c); nothing kept for backward."""
    h, c = state[0], state[1]
    dtype = cell.dtype
    batch, rows = x.shape[0], cell.weight_hh.value.shape[0]
    h_out, c_out = np.empty_like(h), np.empty_like(c)
    inference_step(find_gemm(dtype), find_gemv(dtype), np.ascontiguousarray(x, dtype), np.ascontiguousarray(h), np.ascontiguousarray(c),
                   cell.weight_ih.value, cell.weight_hh.value, _bias(cell.bias_ih, rows, dtype),
                   _bias(cell.bias_hh, rows, dtype), np.empty((batch, rows), dtype), h_out, c_out)
    return (h_out, c_out)
