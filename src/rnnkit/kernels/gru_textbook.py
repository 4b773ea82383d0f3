"""The textbook GRU (reset_after=False: the reset gate before the product), compiled.

The equations of `rnnkit.cells.gru` (the NumPy reference), batch-major as `gru.py`, one
direction of one layer, with W_hh split by what it reads: W_g = (W_hr; W_hz) (2H, H), W_hn (H, H),
and u = m * h_{t-1} the state as fed (m the recurrent dropout mask, else 1):

    forward, t = 0 .. T-1 (a_t = x_t W_ih^T + b_ih, all t in one GEMM):
        p = u W_g^T                                   first GEMM, (B, 2H)
        r = sigma(a_r + p_r + b_hr)     z = sigma(a_z + p_z + b_hz)
        k = r * u                                     kept
        n = tanh(a_n + k W_hn^T + b_hn)               second GEMM, (B, H), after r
        h_t = n + z * (h_{t-1} - n)
    backward, t = T-1 .. 0 (dh_t from the output and from step t+1):
        dz_n = dh_t (1 - z)(1 - n^2)                 dz_z = dh_t (h_{t-1} - n) z (1 - z)
        e = dz_n W_hn                                 GEMM: the gradient w.r.t. k
        dz_r = e u r (1 - r)
        dh_{t-1} = dy_{t-1} + dh_t z + m * (e r + [dz_r, dz_z] W_g)     GEMM added in place

so a step makes two dependent GEMMs each way. The cache has the reference's layout (act = r, z,
n; kept = k; h), so NumPy's backward and `internals()` read it unchanged; dz (T, B, 3H) is the
gradient of both projections (the cell's `shares_preactivation`), from which the NumPy code
makes every weight gradient after the loop. Padding holds the state (`_padding`).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from numba import njit

from ._loop_kernel import add_into, loop_kernel
from ._padding import any_held, clear_rows, held_steps, hold_rows, passes_through
from ._recurrent_dropout import add_product, fed, mask_for_loop
from ._sequence import bias_or_zeros, loop_masks, output_gradients
from .activations import scalar, sigmoid, tanh
from .blas import find_blas, product


@njit(inline="always", error_model="numpy")
def _gates_row(a, p, bias, u, kept, hidden):
    """r and z of one sequence in place (a's first 2H entries), then kept = r * u."""
    r, z = a[:hidden], a[hidden:2 * hidden]
    p_r, p_z, b_r, b_z = p[:hidden], p[hidden:], bias[:hidden], bias[hidden:2 * hidden]
    for j in range(hidden):
        r[j] = sigmoid(r[j] + p_r[j] + b_r[j])
    for j in range(hidden):
        z[j] = sigmoid(z[j] + p_z[j] + b_z[j])
    for j in range(hidden):
        kept[j] = r[j] * u[j]


@njit(inline="always", error_model="numpy")
def _candidate_row(a, q, bias, h_prev, h, hidden):
    """n of one sequence in place (a's last H entries) from q = k W_hn^T, and h_t."""
    z, n, b_n = a[hidden:2 * hidden], a[2 * hidden:], bias[2 * hidden:]
    for j in range(hidden):
        n[j] = tanh(n[j] + q[j] + b_n[j])
        h[j] = (h_prev[j] - n[j]) * z[j] + n[j]


@loop_kernel
def forward_loop(addresses, w_gates_t, w_candidate_t, b_hh, act, kept, h, held, dropped, gates_product, work):
    """act: (T, B, 3H) input projections in, r, z, n out; kept: (T, B, H) written; h: (T+1, B, H)
    with h[0] the initial state; w_gates_t (H, 2H) and w_candidate_t (H, H): W_g^T and W_hn^T,
    contiguous; held, dropped: as in `gru.forward_loop`; gates_product (B, 2H) and work (2, B, H):
    scratch."""
    steps, batch, rows = act.shape
    hidden = rows // 3
    candidate_product, operand = work[0], work[1]
    for t in range(steps):
        u = fed(h[t], dropped, operand)
        product(addresses, u, w_gates_t, gates_product, 0.0)
        for b in range(batch):
            _gates_row(act[t, b], gates_product[b], b_hh, u[b], kept[t, b], hidden)
        product(addresses, kept[t], w_candidate_t, candidate_product, 0.0)
        for b in range(batch):
            _candidate_row(act[t, b], candidate_product[b], b_hh, h[t, b], h[t + 1, b], hidden)
        if any_held(held, t):
            hold_rows(held[t], h[t], h[t + 1])


@njit(inline="always", error_model="numpy")
def _update_row(gates, h_prev, dh, dy_prev, d_act, hidden, one):
    """dz_n and dz_z of one sequence; dh becomes dh_t z + dy_{t-1} (the rest is added later)."""
    z, n = gates[hidden:2 * hidden], gates[2 * hidden:]
    dz_z, dz_n = d_act[hidden:2 * hidden], d_act[2 * hidden:]
    for j in range(hidden):
        dz_n[j] = dh[j] * (one - z[j]) * (one - n[j] * n[j])
        dz_z[j] = dh[j] * (h_prev[j] - n[j]) * z[j] * (one - z[j])
        dh[j] = dh[j] * z[j] + dy_prev[j]


@njit(inline="always", error_model="numpy")
def _reset_row(gates, u, e, d_act, fed_grad, mask, hidden, one):
    """dz_r = e u r (1 - r) of one sequence; fed_grad = e r (times the dropout mask row, or 1)."""
    r, dz_r = gates[:hidden], d_act[:hidden]
    for j in range(hidden):
        dz_r[j] = e[j] * u[j] * r[j] * (one - r[j])
        fed_grad[j] = e[j] * r[j] * mask[j]


@loop_kernel
def backward_loop(addresses, w_gates, w_candidate, act, kept, h, dy, dh, d_act, held, dropped, no_dy, ones, work):
    """dy: (T, B, H) or (0, B, H) for none; dh: (B, H) dL/dh_T in, dL/dh_0 out; d_act: (T, B, 3H)
    dz_r, dz_z, dz_n written; w_gates (2H, H), w_candidate (H, H): W_g and W_hn. no_dy: (B, H)
    zeros; ones: (H,) ones; work: (3, B, H) scratch."""
    steps, batch, rows = act.shape
    hidden = rows // 3
    one = scalar(act, 1.0)
    e, fed_grad, operand = work[0], work[1], work[2]
    if dy.shape[0] > 0:
        add_into(dh, dy[steps - 1])
    for t in range(steps - 1, -1, -1):
        padded = any_held(held, t)
        dy_prev = dy[t - 1] if dy.shape[0] > 0 and t > 0 else no_dy  # dy_{t-1}, joining dh on the way
        for b in range(batch):  # dz_z, dz_n; dh_t z (a held sequence: dh_t, untouched)
            if not passes_through(held, padded, t, b, dh, dy_prev):
                _update_row(act[t, b], h[t, b], dh[b], dy_prev[b], d_act[t, b], hidden, one)
        if padded:
            clear_rows(held[t], d_act[t])
        product(addresses, d_act[t, :, 2 * hidden:], w_candidate, e, 0.0)
        u = fed(h[t], dropped, operand)
        for b in range(batch):
            _reset_row(act[t, b], u[b], e[b], d_act[t, b], fed_grad[b],
                       dropped[b] if dropped.shape[0] > 0 else ones, hidden, one)
        add_product(addresses, d_act[t, :, :2 * hidden], w_gates, fed_grad, dropped, operand)
        add_into(dh, fed_grad)


# ----------------------------------------------------------------------- Python entry points
def forward_sequence(cell, x: np.ndarray, state0, mask=None, recurrent_mask=None):
    """x (T, B, I) -> (outputs (T, B, H), state, cache); the masks as in `gru.forward_sequence`."""
    projection = cell.input_projection(x)
    steps, batch, rows = projection.shape
    dtype, hidden = projection.dtype, cell.hidden_size
    h = np.empty((steps + 1, batch, hidden), dtype)
    h[0] = state0[0]
    kept = np.empty((steps, batch, hidden), dtype)
    w = cell.weight_hh.value
    forward_loop(find_blas(dtype), np.ascontiguousarray(w[:2 * hidden].T), np.ascontiguousarray(w[2 * hidden:].T),
                 bias_or_zeros(cell.bias_hh, rows, dtype), projection, kept, h, held_steps(mask, batch),
                 mask_for_loop(recurrent_mask, dtype, feature_major=False), np.empty((batch, 2 * hidden), dtype),
                 np.empty((2, batch, hidden), dtype))
    return h[1:], (h[-1],), SimpleNamespace(h=h, act=projection, kept=kept, recurrent_mask=None)


def backward_sequence(cell, d_outputs, d_state, cache):
    act = cache.act
    steps, batch, rows = act.shape
    hidden = cell.hidden_size
    d_act = np.empty_like(act)
    dh = np.array(d_state[0], dtype=act.dtype, order="C")
    dy = output_gradients(d_outputs, batch, hidden, act.dtype)
    w = cell.weight_hh.value
    backward_loop(find_blas(act.dtype), w[:2 * hidden], w[2 * hidden:], act, cache.kept, cache.h, dy, dh, d_act,
                  *loop_masks(cache, batch, act.dtype, feature_major=False), np.zeros_like(dh),
                  np.ones(hidden, act.dtype), np.empty((3, batch, hidden), act.dtype))
    return cell.finish_backward(cache, d_act, d_act), (dh,)


def step(cell, x: np.ndarray, state):
    """One inference step: a one-step forward_sequence, nothing kept."""
    _, final, _ = forward_sequence(cell, np.ascontiguousarray(x, cell.dtype)[None], state)
    return (np.array(final[0]),)
