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
buffer, overwritten in place. The backward keeps dL/da = [dz_r, dz_z, dz_n] for all steps but
only the n block of the recurrent gradient [dz_r, dz_z, dz_n r] (its r and z blocks are dL/da's):
a (T, B, H) array instead of a second (T, B, 3H) one. A 2-layer GRU's training step (B = 64,
T = 128, H = 512) peaks at 16 arrays of (T, B, H) with it, 18 without (PyTorch's: about 20).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from numba import njit

from . import add_matmul
from ._loop_kernel import add_into, loop_kernel
from ._padding import any_held, clear_rows, held_steps, hold_rows, passes_through
from ._recurrent_dropout import add_product, fed, mask_for_loop
from ._sequence import bias_or_zeros, loop_masks, output_gradients
from .activations import scalar, sigmoid, tanh
from .blas import find_blas, find_gemm, find_gemv, product, project

kernel = njit(cache=True, error_model="numpy")


@njit(inline="always", error_model="numpy")
def _activate_row(a, p, bias, h_prev, kept, h, hidden):
    """One sequence's step: a (3H,) input projection -> r, z, n in place, one short loop per
    gate over its own contiguous view (what LLVM vectorises)."""
    r, z, n = a[:hidden], a[hidden:2 * hidden], a[2 * hidden:]
    p_r, p_z, p_n = p[:hidden], p[hidden:2 * hidden], p[2 * hidden:]
    b_r, b_z, b_n = bias[:hidden], bias[hidden:2 * hidden], bias[2 * hidden:]
    for j in range(hidden):
        r[j] = sigmoid(r[j] + p_r[j] + b_r[j])
    for j in range(hidden):
        z[j] = sigmoid(z[j] + p_z[j] + b_z[j])
    for j in range(hidden):
        kept[j] = p_n[j] + b_n[j]
        n[j] = tanh(r[j] * kept[j] + n[j])
        h[j] = (h_prev[j] - n[j]) * z[j] + n[j]


@njit(inline="always", error_model="numpy")
def _gradient_row(gates, q, h_prev, dh, dy_prev, d_in, d_rec, d_candidate, hidden, one):
    """One sequence's step backward; dh becomes dy_{t-1} + dh_t * z (the GEMM adds the rest).
    d_rec gets the whole recurrent gradient, d_candidate its n block again (kept for dW_hh)."""
    r, z, n = gates[:hidden], gates[hidden:2 * hidden], gates[2 * hidden:]
    da_r, da_z, da_n = d_in[:hidden], d_in[hidden:2 * hidden], d_in[2 * hidden:]
    dr_r, dr_z, dr_n = d_rec[:hidden], d_rec[hidden:2 * hidden], d_rec[2 * hidden:]
    for j in range(hidden):
        dz_n = dh[j] * (one - z[j]) * (one - n[j] * n[j])
        dz_r = dz_n * q[j] * r[j] * (one - r[j])
        dz_z = dh[j] * (h_prev[j] - n[j]) * z[j] * (one - z[j])
        da_r[j], da_z[j], da_n[j] = dz_r, dz_z, dz_n
        dr_r[j], dr_z[j], dr_n[j] = dz_r, dz_z, dz_n * r[j]
        d_candidate[j] = dr_n[j]
        dh[j] = dh[j] * z[j] + dy_prev[j]


@loop_kernel
def forward_loop(addresses, w_hh_t, b_hh, act, kept, h, recurrent, held, dropped, operand):
    """act: (T, B, 3H) input projections in, r, z, n out; kept: (T, B, H) q out; h: (T+1, B, H)
    with h[0] the initial state; recurrent: (B, 3H) scratch; w_hh_t: W_hh^T, contiguous; held:
    (T, B) padded steps, or (0, B) (`_padding`); dropped: the recurrent dropout mask (B, H), or
    (0, 0) (`_recurrent_dropout`); operand: (B, H) scratch."""
    steps, batch, rows = act.shape
    hidden = rows // 3
    for t in range(steps):
        product(addresses, fed(h[t], dropped, operand), w_hh_t, recurrent, 0.0)
        for b in range(batch):
            _activate_row(act[t, b], recurrent[b], b_hh, h[t, b], kept[t, b], h[t + 1, b], hidden)
        if any_held(held, t):
            hold_rows(held[t], h[t], h[t + 1])


@loop_kernel
def backward_loop(addresses, w_hh, act, kept, h, dy, dh, d_input, d_candidate, d_step, held, dropped, no_dy,
                  scratch):
    """dy: (T, B, H) or (0, B, H) for none; dh: (B, H) dL/dh_T in, dL/dh_0 out; d_input (T, B, 3H)
    and d_candidate (T, B, H), written: dL/da and the n block of dL/d(W_hh h) (its r and z blocks
    are d_input's); d_step: (B, 3H), one step's dL/d(W_hh h). A held (padded) sequence's dh
    passes through its step. no_dy: (B, H) zeros; scratch: (B, H)."""
    steps, batch, rows = act.shape
    hidden = rows // 3
    one = scalar(act, 1.0)
    has_dy = dy.shape[0] > 0
    if has_dy:
        add_into(dh, dy[steps - 1])
    for t in range(steps - 1, -1, -1):
        dy_prev = dy[t - 1] if has_dy and t > 0 else no_dy
        padded = any_held(held, t)
        for b in range(batch):
            if passes_through(held, padded, t, b, dh, dy_prev):
                continue
            _gradient_row(act[t, b], kept[t, b], h[t, b], dh[b], dy_prev[b], d_input[t, b], d_step[b],
                          d_candidate[t, b], hidden, one)
        if padded:
            clear_rows(held[t], d_input[t])
            clear_rows(held[t], d_candidate[t])
            clear_rows(held[t], d_step)
        add_product(addresses, d_step, w_hh, dh, dropped, scratch)


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
def forward_sequence(cell, x: np.ndarray, state0, mask=None, recurrent_mask=None):
    """x (T, B, I) -> (outputs (T, B, H), state, cache); mask (T, B): the real steps (None: all);
    recurrent_mask (B, H): recurrent dropout (None: none)."""
    projection = cell.input_projection(x)
    steps, batch, rows = projection.shape
    dtype = projection.dtype
    h = np.empty((steps + 1, batch, cell.hidden_size), dtype)
    h[0] = state0[0]
    kept = np.empty((steps, batch, cell.hidden_size), dtype)
    w_hh_t = np.ascontiguousarray(cell.weight_hh.value.T)
    forward_loop(find_blas(dtype), w_hh_t, bias_or_zeros(cell.bias_hh, rows, dtype), projection, kept, h,
                 np.empty((batch, rows), dtype), held_steps(mask, batch),
                 mask_for_loop(recurrent_mask, dtype, feature_major=False), np.empty_like(h[0]))
    return h[1:], (h[-1],), SimpleNamespace(h=h, act=projection, kept=kept, recurrent_mask=None)


def backward_sequence(cell, d_outputs, d_state, cache):
    act = cache.act
    steps, batch, rows = act.shape
    d_input, d_candidate = np.empty_like(act), np.empty_like(cache.kept)
    dh = np.array(d_state[0], dtype=act.dtype, order="C")
    dy = output_gradients(d_outputs, batch, cell.hidden_size, act.dtype)
    backward_loop(find_blas(act.dtype), cell.weight_hh.value, act, cache.kept, cache.h, dy, dh, d_input, d_candidate,
                  np.empty((batch, rows), act.dtype), *loop_masks(cache, batch, act.dtype, feature_major=False),
                  np.zeros_like(dh), np.empty_like(dh))
    return _finish_backward(cell, cache, d_input, d_candidate), (dh,)


def _finish_backward(cell, cache, d_input: np.ndarray, d_candidate: np.ndarray) -> np.ndarray:
    """`Cell.finish_backward` from the compact gradients: dL/d(W_hh h) is d_input's r and z
    blocks beside d_candidate, so it never takes a (T, B, 3H) array of its own (a GRU step's
    peak memory). Adds every weight gradient; returns dL/dx (T, B, I)."""
    x, hidden = cache.x, cell.hidden_size
    steps, batch, features = x.shape
    d_input_2d, d_candidate_2d = d_input.reshape(steps * batch, -1), d_candidate.reshape(steps * batch, hidden)
    h_fed = cell.fed_states(cache)
    add_matmul(cell.weight_ih.grad, d_input_2d.T, x.reshape(steps * batch, features))
    add_matmul(cell.weight_hh.grad[:2 * hidden], d_input_2d[:, :2 * hidden].T, h_fed)
    add_matmul(cell.weight_hh.grad[2 * hidden:], d_candidate_2d.T, h_fed)
    if cell.bias_ih is not None:
        d_bias = d_input_2d.sum(axis=0)
        cell.bias_ih.grad += d_bias
        cell.bias_hh.grad[:2 * hidden] += d_bias[:2 * hidden]
        cell.bias_hh.grad[2 * hidden:] += d_candidate_2d.sum(axis=0)
    return (d_input_2d @ cell.weight_ih.value).reshape(steps, batch, features)


def step(cell, x: np.ndarray, state):
    h = np.ascontiguousarray(state[0])
    dtype = cell.dtype
    batch, rows = x.shape[0], cell.weight_hh.value.shape[0]
    h_out = np.empty_like(h)
    inference_step(find_gemm(dtype), find_gemv(dtype), np.ascontiguousarray(x, dtype), h, cell.weight_ih.value,
                   cell.weight_hh.value, bias_or_zeros(cell.bias_ih, rows, dtype),
                   bias_or_zeros(cell.bias_hh, rows, dtype), np.empty((batch, rows), dtype),
                   np.empty((batch, rows), dtype), h_out, np.empty_like(h))
    return (h_out,)
