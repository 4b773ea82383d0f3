"""The Elman RNN, compiled, for every nonlinearity `rnnkit.cells.elman` offers by name.

The equations of `rnnkit.cells.elman` (the NumPy reference), one direction of one layer:

    forward:   h_t = f(a_t + h_{t-1} W_hh^T + b_hh)      a_t = x_t W_ih^T + b_ih, from the loop
    backward:  dz_t = dh_t * f'(h_t)    (f' read from the output)
               dh_{t-1} = dy_{t-1} + dz_t W_hh
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from numba import njit

from ._loop_kernel import add_into, copy, loop_kernel
from ._padding import any_held, carry_rows, clear_rows, held_steps, hold_rows
from ._recurrent_dropout import add_product, fed, mask_for_loop
from ._sequence import bias_or_zeros, loop_masks, output_gradients
from .activations import ACTIVATION_CODES, activate, activation_grad
from .blas import find_blas, find_gemm, find_gemv, product, project

kernel = njit(cache=True, error_model="numpy")


@njit(inline="always", error_model="numpy")
def _activate_row(z, bias, h, code, slope):
    for j in range(h.shape[0]):
        h[j] = activate(code, z[j] + bias[j], slope)


@loop_kernel
def forward_loop(addresses, w_hh_t, b_hh, projection, h, held, dropped, code, slope, operand):
    """projection: (T, B, H) input projections, used as scratch; h: (T+1, B, H) with h[0] set;
    held: (T, B) padded steps, or (0, B) (`_padding`); dropped: the recurrent dropout mask
    (B, H), or (0, 0) (`_recurrent_dropout`); operand: (B, H) scratch."""
    steps, batch, _ = projection.shape
    for t in range(steps):
        product(addresses, fed(h[t], dropped, operand), w_hh_t, projection[t], 1.0)
        for b in range(batch):
            _activate_row(projection[t, b], b_hh, h[t + 1, b], code, slope)
        if any_held(held, t):
            hold_rows(held[t], h[t], h[t + 1])


@loop_kernel
def backward_loop(addresses, w_hh, h, dy, dh, dz, held, dropped, code, slope, scratch):
    """dy: (T, B, H) or (0, B, H); dh: (B, H) dL/dh_T in, dL/dh_0 out; dz: (T, B, H) written;
    a held (padded) sequence's dh passes through its step, with dz = 0; scratch: (B, H)."""
    steps, batch, hidden = dz.shape
    has_dy = dy.shape[0] > 0
    if has_dy:
        add_into(dh, dy[steps - 1])
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            out, grad, dh_b = h[t + 1, b], dz[t, b], dh[b]
            for j in range(hidden):
                grad[j] = dh_b[j] * activation_grad(code, out[j], slope)
        add_dy = has_dy and t > 0
        if any_held(held, t):
            clear_rows(held[t], dz[t])
            carry_rows(held[t], dh, dy, t - 1, add_dy)
        elif add_dy:
            copy(dy[t - 1], dh)
        elif dropped.shape[0] == 0:  # dh = dz_t W_hh, nothing to add it to
            product(addresses, dz[t], w_hh, dh, 0.0)
            continue
        else:
            dh[:] = 0.0
        add_product(addresses, dz[t], w_hh, dh, dropped, scratch)


@kernel
def inference_step(gemm_address, gemv_address, x, h, w_ih, w_hh, b_ih, b_hh, pre, h_out, code, slope):
    batch = pre.shape[0]
    for b in range(batch):
        pre[b] = b_ih
    project(gemm_address, gemv_address, x, w_ih, pre, 1.0)
    project(gemm_address, gemv_address, h, w_hh, pre, 1.0)
    for b in range(batch):
        _activate_row(pre[b], b_hh, h_out[b], code, slope)


# ----------------------------------------------------------------------- Python entry points
def _activation(cell, dtype):
    return ACTIVATION_CODES[cell.nonlinearity], np.dtype(dtype).type(cell.negative_slope)


def forward_sequence(cell, x: np.ndarray, state0, mask=None, recurrent_mask=None):
    """x (T, B, I) -> (outputs (T, B, H), state, cache); mask (T, B): the real steps (None: all);
    recurrent_mask (B, H): recurrent dropout (None: none)."""
    projection = cell.input_projection(x)
    steps, batch, rows = projection.shape
    dtype = projection.dtype
    h = np.empty((steps + 1, batch, cell.hidden_size), dtype)
    h[0] = state0[0]
    w_hh_t = np.ascontiguousarray(cell.weight_hh.value.T)
    forward_loop(find_blas(dtype), w_hh_t, bias_or_zeros(cell.bias_hh, rows, dtype), projection, h,
                 held_steps(mask, batch), mask_for_loop(recurrent_mask, dtype, feature_major=False),
                 *_activation(cell, dtype), np.empty_like(h[0]))
    return h[1:], (h[-1],), SimpleNamespace(h=h, recurrent_mask=None)


def backward_sequence(cell, d_outputs, d_state, cache):
    h = cache.h
    steps, batch, hidden = h.shape[0] - 1, h.shape[1], h.shape[2]
    dz = np.empty((steps, batch, hidden), h.dtype)
    dh = np.array(d_state[0], dtype=h.dtype, order="C")
    dy = output_gradients(d_outputs, batch, hidden, h.dtype)
    held, dropped = loop_masks(cache, batch, h.dtype, feature_major=False)
    backward_loop(find_blas(h.dtype), cell.weight_hh.value, h, dy, dh, dz, held, dropped, *_activation(cell, h.dtype),
                  np.empty_like(dh))
    return cell.finish_backward(cache, dz, dz), (dh,)


def step(cell, x: np.ndarray, state):
    h = np.ascontiguousarray(state[0])
    dtype = cell.dtype
    batch, rows = x.shape[0], cell.weight_hh.value.shape[0]
    h_out = np.empty_like(h)
    inference_step(find_gemm(dtype), find_gemv(dtype), np.ascontiguousarray(x, dtype), h, cell.weight_ih.value,
                   cell.weight_hh.value, bias_or_zeros(cell.bias_ih, rows, dtype),
                   bias_or_zeros(cell.bias_hh, rows, dtype), np.empty((batch, rows), dtype), h_out,
                   *_activation(cell, dtype))
    return (h_out,)
