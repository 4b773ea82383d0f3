"""PyTorch's LSTM (gates i, f, g, o; sigmoid and tanh; no peepholes), compiled.

The same equations as `rnnkit.cells.lstm` (whose NumPy code is the reference), for one
direction of one layer, with the whole time loop in one compiled call:

    forward, t = 0 .. T-1:
        z_t = a_t + W_hh h_{t-1} + b_hh             a_t = W_ih x_t + b_ih, all t in one GEMM
        i, f, g, o = sigma(z_i), sigma(z_f), tanh(z_g), sigma(z_o)
        c_t = f * c_{t-1} + i * g     s_t = tanh(c_t)     h_t = o * s_t
    backward, t = T-1 .. 0 (dh_t = dL/dh_t from the output and from step t+1):
        dc   = dc_t + dh_t * o * (1 - s_t^2)
        dz_o = dh_t * s_t * o (1 - o)      dz_i = dc * g * i (1 - i)
        dz_f = dc * c_{t-1} * f (1 - f)    dz_g = dc * i * (1 - g^2)
        dc_{t-1} = dc * f                  dh_{t-1} = dy_{t-1} + W_hh^T dz

Feature-major: inside the loop every per-step array is (features, B), a column per sequence,
so the step's GEMMs are W_hh (4H, H) @ h_{t-1} (H, B) and W_hh^T (H, 4H) @ dz (4H, B). With
the batch as the GEMM's short *last* dimension, OpenBLAS ran them 1.3-2x faster than the
batch-major (B, H) @ (H, 4H) the NumPy code makes (185 -> 385 GFLOP/s at B = 32, H = 512 with
its AVX-512 kernels). The cache keeps act and c as (features, T*B) (`act_fm`, `c_fm`) and
offers the reference's (T, B, features) names as transposed views of them; h, which the next
layer reads, is kept batch-major (T+1, B, H) only. s_t = tanh(c_t) is not kept: the backward
computes it again from c_t, which saves one (H, T*B) array per layer (a training step's peak
memory) for one tanh per number. NumPy's backward and `internals()` read the cache unchanged
(its `s` is made from c on first use, `StandardCache`).
"""

from __future__ import annotations

from functools import cached_property
from types import SimpleNamespace

import numpy as np
from numba import njit

from . import _workspace
from ._loop_kernel import copy, copy_transposed, loop_kernel
from ._padding import any_held, carry_columns, clear_columns, held_steps, hold_columns
from ._prefetch import AHEAD, prefetch_rows
from ._recurrent_dropout import add_product, fed, mask_for_loop
from ._sequence import bias_or_zeros, loop_masks, output_gradients
from .activations import scalar, sigmoid, tanh
from .blas import find_blas, find_gemm, find_gemv, gemm, product, project

kernel = njit(cache=True, error_model="numpy")


@njit(inline="always", error_model="numpy")
def _activate_row(z, bias, c_prev, c, s, h, hidden):
    """One sequence's step, batch-major (the inference step): z (4H,) pre-activations without
    b_hh -> i, f, g, o in place; then c, s = tanh(c), h. One short loop per gate over its own
    contiguous view: LLVM vectorises these, and not one loop that reads and writes all four
    blocks (12x slower, measured)."""
    i, f, g, o = z[:hidden], z[hidden:2 * hidden], z[2 * hidden:3 * hidden], z[3 * hidden:]
    b_i, b_f, b_g, b_o = bias[:hidden], bias[hidden:2 * hidden], bias[2 * hidden:3 * hidden], bias[3 * hidden:]
    for j in range(hidden):
        i[j] = sigmoid(i[j] + b_i[j])
    for j in range(hidden):
        f[j] = sigmoid(f[j] + b_f[j])
    for j in range(hidden):
        g[j] = tanh(g[j] + b_g[j])
    for j in range(hidden):
        o[j] = sigmoid(o[j] + b_o[j])
    for j in range(hidden):
        c[j] = f[j] * c_prev[j] + i[j] * g[j]
        s[j] = tanh(c[j])
        h[j] = o[j] * s[j]


@njit(inline="always", error_model="numpy")
def _activate_unit(act, bias, c_all, h_now, j, hidden, t, batch):
    """Hidden unit j at step t, feature-major: its four gate rows over the batch, in place;
    h_now[j] becomes h_t's row j."""
    now, nxt = t * batch, (t + 1) * batch
    i, f = act[j, now:nxt], act[hidden + j, now:nxt]
    g, o = act[2 * hidden + j, now:nxt], act[3 * hidden + j, now:nxt]
    b_i, b_f, b_g, b_o = bias[j], bias[hidden + j], bias[2 * hidden + j], bias[3 * hidden + j]
    c_prev, c, h = c_all[j, now:nxt], c_all[j, nxt:nxt + batch], h_now[j]
    for b in range(batch):
        i[b] = sigmoid(i[b] + b_i)
    for b in range(batch):
        f[b] = sigmoid(f[b] + b_f)
    for b in range(batch):
        g[b] = tanh(g[b] + b_g)
    for b in range(batch):
        o[b] = sigmoid(o[b] + b_o)
    for b in range(batch):
        c[b] = f[b] * c_prev[b] + i[b] * g[b]
        h[b] = o[b] * tanh(c[b])


@njit(inline="always", error_model="numpy")
def _gradient_unit(act, c_all, dh, dc, dz, j, hidden, t, batch, one):
    """Hidden unit j at step t backward: dz's four rows; dc[j] becomes dc_{t-1}."""
    now, nxt = t * batch, (t + 1) * batch
    i, f = act[j, now:nxt], act[hidden + j, now:nxt]
    g, o = act[2 * hidden + j, now:nxt], act[3 * hidden + j, now:nxt]
    dz_i, dz_f = dz[j, now:nxt], dz[hidden + j, now:nxt]
    dz_g, dz_o = dz[2 * hidden + j, now:nxt], dz[3 * hidden + j, now:nxt]
    c_prev, c, dh_j, dc_j = c_all[j, now:nxt], c_all[j, nxt:nxt + batch], dh[j], dc[j]
    for b in range(batch):
        s = tanh(c[b])
        d_cell = dc_j[b] + dh_j[b] * o[b] * (one - s * s)
        dz_i[b] = d_cell * g[b] * i[b] * (one - i[b])
        dz_f[b] = d_cell * c_prev[b] * f[b] * (one - f[b])
        dz_g[b] = d_cell * i[b] * (one - g[b] * g[b])
        dz_o[b] = dh_j[b] * s * o[b] * (one - o[b])
        dc_j[b] = d_cell * f[b]


@loop_kernel
def forward_loop(addresses, w_hh, bias, act, h_now, c, h, held, dropped, operand):
    """act: (4H, T*B) input projections W_ih x_t (no bias) in, gate activations out; c:
    (H, (T+1)*B) with c_0 in the first B columns; h_now: (H, B), h_0 in, h_T out
    (the GEMM's operand); h: (T+1, B, H), every h_t batch-major (h[0] is not touched). bias:
    b_ih + b_hh; held: (T, B) padded steps, or (0, B) (`_padding`); dropped: the recurrent
    dropout mask (H, B), or (0, 0) (`_recurrent_dropout`); operand: (H, B) scratch."""
    steps, batch, hidden = h.shape[0] - 1, h.shape[1], h.shape[2]
    for t in range(steps):
        product(addresses, w_hh, fed(h_now, dropped, operand), act[:, t * batch:(t + 1) * batch], 1.0)
        for j in range(hidden):
            if j + AHEAD < hidden:  # unit j + AHEAD's rows of act, c_{t-1} and c_t
                prefetch_rows(act, j + AHEAD, hidden, 4, t * batch, batch)
                prefetch_rows(c, j + AHEAD, 0, 1, t * batch, 2 * batch)
            _activate_unit(act, bias, c, h_now, j, hidden, t, batch)
        hold_state(held, t, c, h, h_now)
        copy_transposed(h_now, h[t + 1])  # the layer's output, batch-major for whatever reads it next


@njit(inline="always")
def hold_state(held, t, c, h, h_now):
    """The padded sequences of step t keep c_{t-1} and h_{t-1} (feature-major loops)."""
    if any_held(held, t):
        batch = h_now.shape[1]
        hold_columns(held[t], c[:, t * batch:(t + 1) * batch], c[:, (t + 1) * batch:(t + 2) * batch])
        hold_columns(held[t], h[t].T, h_now)


@loop_kernel
def backward_loop(addresses, w_hh_t, act, c, dy, dh, dc, dz, held, dropped, unit_rows):
    """dy: (T, B, H) output gradients, or (0, B, H) for none; dh, dc: (H, B) gradients w.r.t.
    the final state in, the initial state out; dz: (4H, T*B) written. w_hh_t: W_hh^T (H, 4H);
    held, dropped: as forward's; unit_rows: (2, H, B) scratch."""
    hidden, batch = dh.shape
    steps = act.shape[1] // batch
    one = scalar(act, 1.0)
    has_dy = dy.shape[0] > 0
    dc_held, scratch = unit_rows[0], unit_rows[1]
    if has_dy:
        _add_transposed(dh, dy[steps - 1], one)
    for t in range(steps - 1, -1, -1):
        padded = any_held(held, t)
        if padded:
            copy(dc, dc_held)
        for j in range(hidden):
            if j + AHEAD < hidden:  # unit j + AHEAD's rows of act, dz, c_{t-1} and c_t
                prefetch_rows(act, j + AHEAD, hidden, 4, t * batch, batch)
                prefetch_rows(dz, j + AHEAD, hidden, 4, t * batch, batch)
                prefetch_rows(c, j + AHEAD, 0, 1, t * batch, 2 * batch)
            _gradient_unit(act, c, dh, dc, dz, j, hidden, t, batch, one)
        next_state_gradient(addresses, w_hh_t, dz[:, t * batch:(t + 1) * batch], dy, dh, dc, held, dc_held, t,
                            padded, has_dy, dropped, scratch)


@njit(inline="always")
def next_state_gradient(addresses, w_hh_t, dz_t, dy, dh, dc, held, dc_held, t, padded, has_dy, dropped, scratch):
    """After step t's dz (and dc = dL/dc_{t-1}): dh becomes dy_{t-1} + W_hh^T dz_t (times the
    recurrent dropout mask); a padded sequence instead passes its dh and dc through unchanged,
    and its dz_t is cleared."""
    add_dy = has_dy and t > 0
    if padded:
        clear_columns(held[t], dz_t)
        hold_columns(held[t], dc_held, dc)
        carry_columns(held[t], dh, dy, t - 1, add_dy)
    elif add_dy:
        _add_transposed(dh, dy[t - 1], scalar(dh, 0.0))
    elif dropped.shape[0] == 0:  # dh = W_hh^T dz_t, nothing to add it to
        product(addresses, w_hh_t, dz_t, dh, 0.0)
        return
    else:
        dh[:] = 0.0
    add_product(addresses, w_hh_t, dz_t, dh, dropped, scratch)


@njit(inline="always", error_model="numpy")
def _add_transposed(target, source, keep):
    """target (H, B) = keep * target + source.T, source (B, H) batch-major."""
    for b in range(source.shape[0]):
        row = source[b]
        for j in range(row.shape[0]):
            target[j, b] = keep * target[j, b] + row[j]


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
def _steps_view(array: np.ndarray, batch: int) -> np.ndarray:
    """(features, T*B) -> the reference's (T, B, features), as a view."""
    return array.reshape(array.shape[0], -1, batch).transpose(1, 2, 0)


def forward_sequence(cell, x: np.ndarray, state0, mask=None, recurrent_mask=None):
    """The whole forward of one direction: x (T, B, I) -> (outputs (T, B, H), state, cache);
    mask (T, B): the real steps (None: all); recurrent_mask (B, H): recurrent dropout (None: none)."""
    act, bias, h_now, c, _, h = forward_buffers(cell, x, state0, 4 * cell.hidden_size, with_s=False)
    forward_loop(find_blas(x.dtype), cell.weight_hh.value, bias, act, h_now, c, h, held_steps(mask, x.shape[1]),
                 mask_for_loop(recurrent_mask, x.dtype, feature_major=True), np.empty_like(h_now))
    return forward_result(act, c, None, h)


def forward_buffers(cell, x: np.ndarray, state0, rows: int, with_s: bool = True):
    """What every compiled LSTM forward loop starts from: the input projections of all steps,
    W_ih x (rows, T*B), feature-major, from one GEMM; b_ih + b_hh; h_0 as (H, B) (a copy: the loop
    writes it); c (H, (T+1)*B) with c_0 in its first B columns; s (H, T*B), or None when not
    `with_s`; h (T+1, B, H)."""
    steps, batch, features = x.shape
    dtype, hidden = x.dtype, cell.hidden_size
    act = _workspace.empty((rows, steps * batch), dtype)
    gemm(find_gemm(dtype), cell.weight_ih.value, x.reshape(steps * batch, features), act, False, True, 0.0)
    bias = bias_or_zeros(cell.bias_ih, rows, dtype) + bias_or_zeros(cell.bias_hh, rows, dtype)
    c = _workspace.empty((hidden, (steps + 1) * batch), dtype)
    c[:, :batch] = state0[1].T
    h_now = np.array(state0[0].T, dtype, order="C")
    s = _workspace.empty((hidden, steps * batch), dtype) if with_s else None
    h = _workspace.empty((steps + 1, batch, hidden), dtype)
    h[0] = state0[0]
    return act, bias, h_now, c, s, h


def forward_result(act: np.ndarray, c: np.ndarray, s: np.ndarray | None, h: np.ndarray):
    """(outputs (T, B, H), final (h, c), the cache in the reference's layout, as views); s None:
    the standard cell's s_t = tanh(c_t), not kept (`StandardCache`)."""
    batch = h.shape[1]
    cache = SimpleNamespace if s is not None else StandardCache
    cache = cache(act_fm=act, c_fm=c, act=_steps_view(act, batch), h=h, c=_steps_view(c, batch), recurrent_mask=None)
    if s is not None:
        cache.s_fm, cache.s = s, _steps_view(s, batch)
    return h[1:], (h[-1], np.ascontiguousarray(c[:, -batch:].T)), cache


class StandardCache(SimpleNamespace):
    """The standard kernel's cache, which does not keep s_t = tanh(c_t): NumPy's backward and
    `internals()` get it from c on first use, (T, B, H)."""

    @cached_property
    def s(self) -> np.ndarray:
        return np.tanh(self.c[1:])


def _feature_major(cache):
    """A NumPy forward's cache in this kernel's layout (for a backward after toggling kernels)."""
    if not hasattr(cache, "act_fm"):
        flat = lambda a: np.ascontiguousarray(a.transpose(2, 0, 1).reshape(a.shape[2], -1))  # noqa: E731
        cache.act_fm, cache.c_fm, cache.s_fm = flat(cache.act), flat(cache.c), flat(cache.s)
    return cache


def backward_sequence(cell, d_outputs, d_state, cache):
    """The whole backward of one direction: returns (dL/dx (T, B, I), dL/d state0); adds the
    parameter gradients."""
    cache, dz, dh, dc, dy, w_hh_t = backward_buffers(cell, d_outputs, d_state, cache)
    backward_loop(find_blas(cache.x.dtype), w_hh_t, cache.act_fm, cache.c_fm, dy, dh, dc, dz,
                  *loop_masks(cache, dh.shape[1], dh.dtype, feature_major=True), np.empty((2,) + dh.shape, dh.dtype))
    return finish_backward(cell, cache, dz, dh, dc)


def backward_buffers(cell, d_outputs, d_state, cache):
    """What every compiled LSTM backward loop starts from: the feature-major cache, the dz
    workspace (G*H, T*B), copies of dL/dh_T and dL/dc_T as (H, B) (the loop writes them), the
    output gradients, and W_hh^T (the faster GEMM layout, above)."""
    cache = _feature_major(cache)
    batch, dtype = cache.x.shape[1], cache.x.dtype
    dz = _workspace.empty(cache.act_fm.shape, dtype)
    dh = np.array(np.asarray(d_state[0]).T, dtype, order="C")
    dc = np.array(np.asarray(d_state[1]).T, dtype, order="C")
    dy = output_gradients(d_outputs, batch, cell.hidden_size, dtype)
    return cache, dz, dh, dc, dy, np.ascontiguousarray(cell.weight_hh.value.T)


def finish_backward(cell, cache, dz: np.ndarray, dh: np.ndarray, dc: np.ndarray, d_peephole=None, d_product=None):
    """After the loop: the cell's weight gradients (one GEMM each over all T*B columns of dz;
    `d_peephole` already summed by the caller), and (dL/dx (T, B, I), dL/d state0). d_product:
    dL/d(W_ih x) (G*H, T*B) when it is not dz (layer norm; then also in `cache.d_ih_product`)."""
    x = cache.x
    steps, batch, features = x.shape
    d_input = _steps_view(dz, batch)  # (T, B, G*H), a view
    if d_peephole is None:  # the cell contract's call; only a peephole cell takes the summed gradient
        cell.accumulate_grads(cache, x, d_input, d_input)
    else:
        cell.accumulate_grads(cache, x, d_input, d_input, d_peephole=d_peephole)
    d_product = dz if d_product is None else d_product
    dx = np.matmul(d_product.T, cell.weight_ih.value, out=_workspace.empty((steps * batch, features), x.dtype))
    return dx.reshape(steps, batch, features), (np.ascontiguousarray(dh.T), np.ascontiguousarray(dc.T))


def step(cell, x: np.ndarray, state):
    """One inference step: x (B, I), state (h, c) -> new (h, c); nothing kept for backward."""
    h, c = state[0], state[1]
    dtype = cell.dtype
    batch, rows = x.shape[0], cell.weight_hh.value.shape[0]
    h_out, c_out = np.empty_like(h), np.empty_like(c)
    inference_step(find_gemm(dtype), find_gemv(dtype), np.ascontiguousarray(x, dtype), np.ascontiguousarray(h),
                   np.ascontiguousarray(c), cell.weight_ih.value, cell.weight_hh.value,
                   bias_or_zeros(cell.bias_ih, rows, dtype), bias_or_zeros(cell.bias_hh, rows, dtype),
                   np.empty((batch, rows), dtype), h_out, c_out)
    return (h_out, c_out)
