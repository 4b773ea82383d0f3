"""Every LSTM structure but FGR, compiled: one loop whose gates, peepholes and activations are
parameters (as `LSTMStructure` is of the NumPy cell), not one copy per variant.

The equations of `rnnkit.cells.lstm` (the NumPy reference), feature-major as in `lstm.py`
(whose standard-cell loop stays the fastest form of PyTorch's LSTM): per hidden unit j and
step t, over the batch,

    i = sigma(z_i + b_i + p_i c_{t-1})      or 1 (NIG)
    f = sigma(z_f + b_f + p_f c_{t-1})      or 1 (NFG), or 1 - i (CIFG)
    g = phi_in(z_g + b_g)                   c_t = f c_{t-1} + i g
    o = sigma(z_o + b_o + p_o c_t)          or 1 (NOG)
    s = phi_out(c_t)                        h_t = o s

with the peephole terms only in a peephole cell, sigma, phi_in and phi_out any of the
activations `CODES` names (identity for NIAF / NOAF). A removed gate reads a row of
ones and a coupled forget gate a row of 1 - i, so one set of formulas serves every variant,
and multiplying by an exact 1 changes nothing. Backward, as the reference's `step_backward`:

    dc    = dc_t + dh o phi_out'(s)        dz_o = dh s sigma'(o);  dc += dz_o p_o
    dc_{t-1} = dc f                        dz_i = dc (g - [CIFG] c_{t-1}) sigma'(i)
    dz_f = dc c_{t-1} sigma'(f)            dc_{t-1} += dz_i p_i + dz_f p_f
    dz_g = dc i phi_in'(g)                 dh_{t-1} = dy_{t-1} + W_hh^T dz

`layout` carries the structure into the compiled loops as integers: the row offset of each
block i, f, g, o in the G*H pre-activations (-1 for a block the cell does not have), the forget
gate's kind, the three activation codes, and whether there are peepholes. Peephole weight
gradients are summed after the loop, one row at a time over the contiguous feature-major arrays.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._padding import any_held, held_steps
from ._prefetch import AHEAD, prefetch_rows
from ._recurrent_dropout import fed, mask_for_loop
from ._sequence import loop_masks
from .activations import scalar, sigmoid, tanh
from .blas import find_blas, product
from .lstm import (
    _add_transposed,
    backward_buffers,
    finish_backward,
    forward_buffers,
    forward_result,
    hold_state,
    next_state_gradient,
)

kernel = njit(cache=True, error_model="numpy")
# The activations by number (`LSTMCell`'s COMPILED_ACTIVATIONS): compiled code has no strings.
CODES = {"sigmoid": 0, "tanh": 1, "relu": 2, "elu": 3, "identity": 4}
SIGMOID, TANH, RELU, ELU, IDENTITY = CODES.values()
LEARNED, NONE, COUPLED = 0, 1, 2  # the forget gate's kinds (LSTMStructure.forget_gate)
ONES, COUPLED_F, DERIVATIVE, D_CELL = 0, 1, 2, 3  # rows of the (4, B) scratch array


@njit(inline="always", error_model="numpy")
def _apply(code, row):
    """row = f(row) in place, one loop per activation (what LLVM vectorises); as `rnnkit.ops`."""
    zero = scalar(row, 0.0)
    if code == SIGMOID:
        for b in range(row.shape[0]):
            row[b] = sigmoid(row[b])
    elif code == TANH:
        for b in range(row.shape[0]):
            row[b] = tanh(row[b])
    elif code == RELU:
        for b in range(row.shape[0]):
            row[b] = max(row[b], zero)
    elif code == ELU:
        for b in range(row.shape[0]):
            row[b] = row[b] if row[b] > zero else math.expm1(row[b])


@njit(inline="always", error_model="numpy")
def _derivative(code, y, out):
    """out = f'(x) read from y = f(x)."""
    zero, one = scalar(y, 0.0), scalar(y, 1.0)
    if code == SIGMOID:
        for b in range(y.shape[0]):
            out[b] = y[b] * (one - y[b])
    elif code == TANH:
        for b in range(y.shape[0]):
            out[b] = one - y[b] * y[b]
    elif code == RELU:
        for b in range(y.shape[0]):
            out[b] = one if y[b] > zero else zero
    elif code == ELU:
        for b in range(y.shape[0]):
            out[b] = one if y[b] > zero else y[b] + one
    else:
        for b in range(y.shape[0]):
            out[b] = one


@njit(inline="always", error_model="numpy")
def _gate(row, bias, peephole, c_read, has_peephole, code):
    """A gate's row over the batch: f(z + b + p c) in place (no p c without peepholes); the
    sigmoid in the same loop (the common case), any other activation in a second one."""
    if code == SIGMOID and has_peephole:
        for b in range(row.shape[0]):
            row[b] = sigmoid(row[b] + bias + peephole * c_read[b])
    elif code == SIGMOID:
        for b in range(row.shape[0]):
            row[b] = sigmoid(row[b] + bias)
    elif code == TANH and not has_peephole:
        for b in range(row.shape[0]):
            row[b] = tanh(row[b] + bias)
    else:
        if has_peephole:
            for b in range(row.shape[0]):
                row[b] = row[b] + bias + peephole * c_read[b]
        else:
            for b in range(row.shape[0]):
                row[b] = row[b] + bias
        _apply(code, row)


@njit(inline="always", error_model="numpy")
def _gates_read(act, layout, scratch, j, now, nxt):
    """Unit j's rows i, f, g, o at one step; ones (and 1 - i) for the gates a variant lacks.
    The coupled forget gate's row is filled by the caller once i is known."""
    ones = scratch[ONES, :nxt - now]
    i = act[layout[0] + j, now:nxt] if layout[0] >= 0 else ones
    if layout[1] >= 0:
        f = act[layout[1] + j, now:nxt]
    elif layout[4] == COUPLED:
        f = scratch[COUPLED_F, :nxt - now]
    else:
        f = ones
    o = act[layout[3] + j, now:nxt] if layout[3] >= 0 else ones
    return i, f, act[layout[2] + j, now:nxt], o


@njit(inline="always", error_model="numpy")
def _forward_unit(act, bias, peep, layout, c_all, s_all, h_now, scratch, j, t, batch):
    """Hidden unit j at step t: its gate rows over the batch, in place; h_now[j] becomes h_t's row."""
    now, nxt = t * batch, (t + 1) * batch
    has_peephole = layout[8] != 0
    one = scalar(act, 1.0)
    c_prev, c, s, h = c_all[j, now:nxt], c_all[j, nxt:nxt + batch], s_all[j, now:nxt], h_now[j]
    i, f, g, o = _gates_read(act, layout, scratch, j, now, nxt)
    if layout[0] >= 0:
        _gate(i, bias[layout[0] + j], peep[0, j], c_prev, has_peephole, layout[5])
    if layout[1] >= 0:
        _gate(f, bias[layout[1] + j], peep[1, j], c_prev, has_peephole, layout[5])
    elif layout[4] == COUPLED:
        for b in range(batch):
            f[b] = one - i[b]
    _gate(g, bias[layout[2] + j], peep[0, j], c_prev, False, layout[6])
    if layout[7] == TANH:  # the common cases in one loop each (fewer passes)
        for b in range(batch):
            c[b] = f[b] * c_prev[b] + i[b] * g[b]
            s[b] = tanh(c[b])
    else:
        for b in range(batch):
            c[b] = f[b] * c_prev[b] + i[b] * g[b]
            s[b] = c[b]
        _apply(layout[7], s)
    if layout[3] >= 0 and layout[5] == SIGMOID:  # the output gate reads the new cell state
        b_o, p_o = bias[layout[3] + j], peep[2, j]  # p_o = 0 without peepholes: adds an exact 0
        for b in range(batch):
            o[b] = sigmoid(o[b] + b_o + p_o * c[b])
            h[b] = o[b] * s[b]
    else:
        if layout[3] >= 0:
            _gate(o, bias[layout[3] + j], peep[2, j], c, has_peephole, layout[5])
        for b in range(batch):
            h[b] = o[b] * s[b]


@njit(inline="always", error_model="numpy")
def _backward_unit(act, peep, layout, c_all, s_all, dh, dc, dz, scratch, j, t, batch):
    """Hidden unit j at step t backward: dz's rows of the blocks present; dc[j] becomes dc_{t-1}."""
    now, nxt = t * batch, (t + 1) * batch
    has_peephole = layout[8] != 0
    one = scalar(act, 1.0)
    c_prev, s, dh_j, dc_j = c_all[j, now:nxt], s_all[j, now:nxt], dh[j], dc[j]
    derivative, d_cell = scratch[DERIVATIVE, :batch], scratch[D_CELL, :batch]
    i, f, g, o = _gates_read(act, layout, scratch, j, now, nxt)
    if layout[4] == COUPLED:
        for b in range(batch):
            f[b] = one - i[b]
    _derivative(layout[7], s, derivative)
    for b in range(batch):
        d_cell[b] = dc_j[b] + dh_j[b] * o[b] * derivative[b]
    if layout[3] >= 0:
        dz_o = dz[layout[3] + j, now:nxt]
        _derivative(layout[5], o, derivative)
        for b in range(batch):
            dz_o[b] = dh_j[b] * s[b] * derivative[b]
        if has_peephole:
            for b in range(batch):
                d_cell[b] += dz_o[b] * peep[2, j]
    for b in range(batch):
        dc_j[b] = d_cell[b] * f[b]
    if layout[0] >= 0:
        dz_i = dz[layout[0] + j, now:nxt]
        _derivative(layout[5], i, derivative)
        if layout[4] == COUPLED:  # f = 1 - i
            for b in range(batch):
                dz_i[b] = (d_cell[b] * g[b] - d_cell[b] * c_prev[b]) * derivative[b]
        else:
            for b in range(batch):
                dz_i[b] = d_cell[b] * g[b] * derivative[b]
        if has_peephole:
            for b in range(batch):
                dc_j[b] += dz_i[b] * peep[0, j]
    if layout[1] >= 0:
        dz_f = dz[layout[1] + j, now:nxt]
        _derivative(layout[5], f, derivative)
        for b in range(batch):
            dz_f[b] = d_cell[b] * c_prev[b] * derivative[b]
        if has_peephole:
            for b in range(batch):
                dc_j[b] += dz_f[b] * peep[1, j]
    dz_g = dz[layout[2] + j, now:nxt]
    _derivative(layout[6], g, derivative)
    for b in range(batch):
        dz_g[b] = d_cell[b] * i[b] * derivative[b]


@njit(inline="always")
def _prefetch_unit(array, layout, j, now, batch):
    """Prefetch unit j's rows of the blocks present (`_prefetch`)."""
    for block in range(4):
        if layout[block] >= 0:
            prefetch_rows(array, layout[block] + j, 0, 1, now, batch)


@kernel
def forward_loop(addresses, w_hh, bias, peep, layout, act, h_now, c, s, h, held, dropped, scratch):
    """As `lstm.forward_loop`, for any structure: act (G*H, T*B) input projections in, gate
    activations out; peep (3, H) peepholes of i, f, o (zeros where absent); scratch (4, B)."""
    steps, batch, hidden = h.shape[0] - 1, h.shape[1], h.shape[2]
    scratch[ONES, :batch] = 1.0
    operand = np.empty_like(h_now)
    for t in range(steps):
        product(addresses, w_hh, fed(h_now, dropped, operand), act[:, t * batch:(t + 1) * batch], 1.0)
        for j in range(hidden):
            if j + AHEAD < hidden:
                _prefetch_unit(act, layout, j + AHEAD, t * batch, batch)
                prefetch_rows(c, j + AHEAD, 0, 1, t * batch, 2 * batch)
                prefetch_rows(s, j + AHEAD, 0, 1, t * batch, batch)
            _forward_unit(act, bias, peep, layout, c, s, h_now, scratch, j, t, batch)
        hold_state(held, t, c, h, h_now)
        for b in range(batch):
            h[t + 1, b] = h_now[:, b]


@kernel
def backward_loop(addresses, w_hh_t, peep, layout, act, c, s, dy, dh, dc, dz, held, dropped, scratch):
    """As `lstm.backward_loop`, for any structure; dz (G*H, T*B) written."""
    hidden, batch = dh.shape
    steps = act.shape[1] // batch
    scratch[ONES, :batch] = 1.0
    has_dy = dy.shape[0] > 0
    dc_held, dh_scratch = np.empty_like(dc), np.empty_like(dh)
    if has_dy:
        _add_transposed(dh, dy[steps - 1], scalar(act, 1.0))
    for t in range(steps - 1, -1, -1):
        padded = any_held(held, t)
        if padded:
            dc_held[:] = dc
        for j in range(hidden):
            if j + AHEAD < hidden:
                _prefetch_unit(act, layout, j + AHEAD, t * batch, batch)
                _prefetch_unit(dz, layout, j + AHEAD, t * batch, batch)
                prefetch_rows(c, j + AHEAD, 0, 1, t * batch, batch)
                prefetch_rows(s, j + AHEAD, 0, 1, t * batch, batch)
            _backward_unit(act, peep, layout, c, s, dh, dc, dz, scratch, j, t, batch)
        next_state_gradient(addresses, w_hh_t, dz[:, t * batch:(t + 1) * batch], dy, dh, dc, held, dc_held, t,
                            padded, has_dy, dropped, dh_scratch)


# ----------------------------------------------------------------------- Python entry points
def _layout(cell) -> np.ndarray:
    """The structure as the loops read it (module docstring)."""
    hidden, blocks = cell.hidden_size, cell.block_names
    offsets = [blocks.index(name) * hidden if name in blocks else -1 for name in "ifgo"]
    forget = {"learned": LEARNED, "none": NONE, "coupled": COUPLED}[cell.structure.forget_gate]
    codes = [CODES[a.name] for a in (cell.gate_activation, cell.input_activation, cell.output_activation)]
    return np.array(offsets + [forget] + codes + [int(cell.weight_peephole is not None)], np.int64)


def _peepholes(cell) -> np.ndarray:
    """(3, H): the peephole weights of i, f, o, zeros for a gate the cell lacks (or no peepholes)."""
    peep = np.zeros((3, cell.hidden_size), cell.dtype)
    if cell.weight_peephole is not None:
        for k, name in enumerate(cell.gate_names):
            peep["ifo".index(name)] = cell.weight_peephole.value[k]
    return peep


def forward_sequence(cell, x: np.ndarray, state0, mask=None, recurrent_mask=None):
    """The whole forward of one direction: x (T, B, I) -> (outputs (T, B, H), state, cache); the
    buffers, the cache and the masks are the standard kernel's (`lstm.forward_sequence`)."""
    act, bias, h_now, c, s, h = forward_buffers(cell, x, state0, cell.num_blocks * cell.hidden_size)
    forward_loop(find_blas(x.dtype), cell.weight_hh.value, bias, _peepholes(cell), _layout(cell), act, h_now, c, s,
                 h, held_steps(mask, x.shape[1]), mask_for_loop(recurrent_mask, x.dtype, feature_major=True),
                 np.empty((4, x.shape[1]), x.dtype))
    return forward_result(act, c, s, h)


def backward_sequence(cell, d_outputs, d_state, cache):
    """The whole backward of one direction: returns (dL/dx (T, B, I), dL/d state0); adds the
    parameter gradients (the buffers and the work after the loop are the standard kernel's)."""
    cache, dz, dh, dc, dy, w_hh_t = backward_buffers(cell, d_outputs, d_state, cache)
    dtype, batch = cache.x.dtype, cache.x.shape[1]
    backward_loop(find_blas(dtype), w_hh_t, _peepholes(cell), _layout(cell), cache.act_fm, cache.c_fm, cache.s_fm,
                  dy, dh, dc, dz, *loop_masks(cache, batch, dtype, feature_major=True), np.empty((4, batch), dtype))
    return finish_backward(cell, cache, dz, dh, dc, d_peephole=_peephole_grads(cell, cache, dz))


def _peephole_grads(cell, cache, dz: np.ndarray):
    """dL/dp (gates, H): each gate's dz rows times the cell state it read (c_{t-1} for i and f,
    c_t for o), summed over all T*B columns; None without peepholes."""
    if cell.weight_peephole is None:
        return None
    hidden, columns = cell.hidden_size, dz.shape[1]
    batch = cache.c_fm.shape[1] - columns
    grads = np.empty_like(cell.weight_peephole.value)
    for k, name in enumerate(cell.gate_names):
        block = cell.block_names.index(name) * hidden
        c_read = cache.c_fm[:, batch:] if name == "o" else cache.c_fm[:, :columns]
        grads[k] = np.einsum("jn,jn->j", dz[block:block + hidden], c_read)
    return grads


def step(cell, x: np.ndarray, state):
    """One inference step: a one-step forward_sequence, nothing kept."""
    _, final, _ = forward_sequence(cell, np.ascontiguousarray(x, cell.dtype)[None], state)
    return (np.array(final[0]), final[1])
