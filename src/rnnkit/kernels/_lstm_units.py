"""The per-unit equations of every LSTM structure, for the loops of `lstm_variants.py`.

One hidden unit j at one step, over the batch, feature-major (module docstring of
`lstm_variants.py` for the equations and `layout`). Each direction is two halves, because layer
normalisation of the cell state needs every unit's c_t before any unit's s_t, and every unit's
output-side gradient before any unit's cell-side one:

    forward:   `forward_cell`      i, f, g and c_t
               `forward_output`    s_t = phi_out(c_t, or LN(c_t)), o and h_t
    backward:  `backward_output`   dz_o and d_out = dh o phi_out'(s), the gradient reaching s's input
               `backward_cell`     dc = dc_t + d_out (or LN'(d_out)), dz_i, dz_f, dz_g and dc_{t-1}

Without layer norm nothing needs every unit at once, and `forward_unit` / `backward_unit` do
both halves of unit j in one pass: the same equations, but splitting them cost the variants'
training step about 20 % on the 2-core Xeon (c_t and s_t computed in one loop, no round trip of
d_out through memory), so the one-pass forms stay for the common case.
"""

from __future__ import annotations

import math

from numba import njit

from ._gate_recurrence import A_ROWS
from ._prefetch import prefetch_rows
from .activations import scalar, sigmoid, tanh

# The activations by number (`LSTMCell`'s COMPILED_ACTIVATIONS): compiled code has no strings.
CODES = {"sigmoid": 0, "tanh": 1, "relu": 2, "elu": 3, "identity": 4}
SIGMOID, TANH, RELU, ELU, IDENTITY = CODES.values()
LEARNED, NONE, COUPLED = 0, 1, 2  # the forget gate's kinds (LSTMStructure.forget_gate)
# Rows of the loops' (SCRATCH_ROWS, B) scratch array; SUMS and SUMS_HH are two rows each: the
# column sums of layer norm's cell-state and recurrent-product normalisations (`_layer_norm`).
ONES, COUPLED_F, DERIVATIVE, D_CELL, SUMS, SUMS_HH, SCRATCH_ROWS = 0, 1, 2, 3, 4, 6, 8


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
def _input_side(i, f, g, c_prev, bias, peep, layout, j, batch):
    """Unit j's i, f (or 1 - i) and g rows in place; i and f read c_{t-1} through peepholes."""
    has_peephole = layout[8] != 0
    if layout[0] >= 0:
        _gate(i, bias[layout[0] + j], peep[0, j], c_prev, has_peephole, layout[5])
    if layout[1] >= 0:
        _gate(f, bias[layout[1] + j], peep[1, j], c_prev, has_peephole, layout[5])
    elif layout[4] == COUPLED:
        one = scalar(i, 1.0)
        for b in range(batch):
            f[b] = one - i[b]
    _gate(g, bias[layout[2] + j], peep[0, j], c_prev, False, layout[6])


@njit(inline="always", error_model="numpy")
def _output_side(o, c, s, h, bias, peep, layout, j, batch):
    """Unit j's output gate in place (it reads the new cell state c_t) and h_t = o s_t."""
    if layout[3] >= 0 and layout[5] == SIGMOID:  # the common case in one loop
        b_o, p_o = bias[layout[3] + j], peep[2, j]  # p_o = 0 without peepholes: adds an exact 0
        for b in range(batch):
            o[b] = sigmoid(o[b] + b_o + p_o * c[b])
            h[b] = o[b] * s[b]
    else:
        if layout[3] >= 0:
            _gate(o, bias[layout[3] + j], peep[2, j], c, layout[8] != 0, layout[5])
        for b in range(batch):
            h[b] = o[b] * s[b]


@njit(inline="always", error_model="numpy")
def _cell_side_gradients(dz, d_cell, dc_j, c_prev, i, f, g, peep, layout, derivative, da, j, now, batch):
    """From d_cell = dL/dc_t (all paths): dc_{t-1} into dc_j, and dz_i, dz_f, dz_g (with FGR,
    dL/da_t's rows of i and f join the gates' gradients)."""
    for b in range(batch):
        dc_j[b] = d_cell[b] * f[b]
    if layout[0] >= 0:
        dz_i = dz[layout[0] + j, now:now + batch]
        if layout[4] == COUPLED:  # f = 1 - i
            for b in range(batch):
                dz_i[b] = d_cell[b] * g[b] - d_cell[b] * c_prev[b]
        else:
            for b in range(batch):
                dz_i[b] = d_cell[b] * g[b]
        _finish_gate_gradient(dz_i, i, da, peep, dc_j, layout, 0, derivative, j)
    if layout[1] >= 0:
        dz_f = dz[layout[1] + j, now:now + batch]
        for b in range(batch):
            dz_f[b] = d_cell[b] * c_prev[b]
        _finish_gate_gradient(dz_f, f, da, peep, dc_j, layout, 1, derivative, j)
    dz_g = dz[layout[2] + j, now:now + batch]
    _derivative(layout[6], g, derivative)
    for b in range(batch):
        dz_g[b] = d_cell[b] * i[b] * derivative[b]


@njit(inline="always", error_model="numpy")
def _coupled_forget(i, f, layout, batch):
    """A coupled forget gate's row f = 1 - i (the scratch row `_gates_read` handed out)."""
    if layout[4] == COUPLED:
        one = scalar(i, 1.0)
        for b in range(batch):
            f[b] = one - i[b]


@njit(inline="always", error_model="numpy")
def forward_unit(act, bias, peep, layout, c_all, s_all, h_now, scratch, j, t, batch):
    """Both forward halves of unit j at step t in one pass (without layer norm): its gate rows
    over the batch, in place; h_now[j] becomes h_t's row."""
    now, nxt = t * batch, (t + 1) * batch
    c_prev, c, s, h = c_all[j, now:nxt], c_all[j, nxt:nxt + batch], s_all[j, now:nxt], h_now[j]
    i, f, g, o = _gates_read(act, layout, scratch, j, now, nxt)
    _input_side(i, f, g, c_prev, bias, peep, layout, j, batch)
    if layout[7] == TANH:  # c_t and s_t in one loop
        for b in range(batch):
            c[b] = f[b] * c_prev[b] + i[b] * g[b]
            s[b] = tanh(c[b])
    else:
        for b in range(batch):
            c[b] = f[b] * c_prev[b] + i[b] * g[b]
            s[b] = c[b]
        _apply(layout[7], s)
    _output_side(o, c, s, h, bias, peep, layout, j, batch)


@njit(inline="always", error_model="numpy")
def backward_unit(act, peep, layout, c_all, s_all, dh, dc, dz, scratch, da, j, t, batch):
    """Both backward halves of unit j at step t in one pass (without layer norm): dz's rows of
    the blocks present; dc[j] becomes dc_{t-1}."""
    now, nxt = t * batch, (t + 1) * batch
    c_prev, s, dh_j, dc_j = c_all[j, now:nxt], s_all[j, now:nxt], dh[j], dc[j]
    derivative, d_cell = scratch[DERIVATIVE, :batch], scratch[D_CELL, :batch]
    i, f, g, o = _gates_read(act, layout, scratch, j, now, nxt)
    _coupled_forget(i, f, layout, batch)
    _derivative(layout[7], s, derivative)
    for b in range(batch):  # dL/dc_t: the carried gradient and the one through s_t
        d_cell[b] = dc_j[b] + dh_j[b] * o[b] * derivative[b]
    if layout[3] >= 0:
        _output_gate_gradient(dz[layout[3] + j, now:nxt], dh_j, s, o, da, peep, d_cell, layout, derivative, j, batch)
    _cell_side_gradients(dz, d_cell, dc_j, c_prev, i, f, g, peep, layout, derivative, da, j, now, batch)


@njit(inline="always", error_model="numpy")
def forward_cell(act, bias, peep, layout, c_all, scratch, j, now, batch):
    """Unit j's gates i, f and candidate g in place, and c_t = f c_{t-1} + i g (c_all[j]'s
    columns now + B ...; c_{t-1} at now ...)."""
    c_prev, c = c_all[j, now:now + batch], c_all[j, now + batch:now + 2 * batch]
    i, f, g, _ = _gates_read(act, layout, scratch, j, now, now + batch)
    _input_side(i, f, g, c_prev, bias, peep, layout, j, batch)
    for b in range(batch):
        c[b] = f[b] * c_prev[b] + i[b] * g[b]


@njit(inline="always", error_model="numpy")
def forward_output(act, bias, peep, layout, c_all, s_all, h_now, scratch, j, now, batch, source):
    """Unit j's s_t = phi_out(source) (source: LN(c_t), already in s), the output gate
    (reading c_t) and h_t = o s_t into h_now[j]."""
    c, s, h = c_all[j, now + batch:now + 2 * batch], s_all[j, now:now + batch], h_now[j]
    o = _gates_read(act, layout, scratch, j, now, now + batch)[3]
    for b in range(batch):
        s[b] = source[b]
    _apply(layout[7], s)
    _output_side(o, c, s, h, bias, peep, layout, j, batch)


@njit(inline="always", error_model="numpy")
def backward_output(act, peep, layout, s_all, dh, dz, d_out, scratch, da, j, now, batch):
    """Unit j's dz_o = dh s sigma'(o) and d_out[j] = dh o phi_out'(s)."""
    s, dh_j, d_out_j = s_all[j, now:now + batch], dh[j], d_out[j]
    derivative = scratch[DERIVATIVE, :batch]
    o = _gates_read(act, layout, scratch, j, now, now + batch)[3]
    _derivative(layout[7], s, derivative)
    for b in range(batch):
        d_out_j[b] = dh_j[b] * o[b] * derivative[b]
    if layout[3] >= 0:  # its peephole's term joins dc in `backward_cell`
        _output_gate_gradient(dz[layout[3] + j, now:now + batch], dh_j, s, o, da, peep, d_out_j[:0], layout,
                              derivative, j, batch)


@njit(inline="always", error_model="numpy")
def backward_cell(act, peep, layout, c_all, dc, dz, d_source, scratch, da, j, now, batch):
    """Unit j's dc = dc_t + d_source[j] (+ dz_o p_o), then dz_i, dz_f, dz_g; dc[j] becomes dc_{t-1}."""
    c_prev, dc_j, d_source_j = c_all[j, now:now + batch], dc[j], d_source[j]
    derivative, d_cell = scratch[DERIVATIVE, :batch], scratch[D_CELL, :batch]
    i, f, g, _ = _gates_read(act, layout, scratch, j, now, now + batch)
    _coupled_forget(i, f, layout, batch)
    for b in range(batch):
        d_cell[b] = dc_j[b] + d_source_j[b]
    if layout[3] >= 0 and layout[8] != 0:
        dz_o = dz[layout[3] + j, now:now + batch]
        for b in range(batch):
            d_cell[b] += dz_o[b] * peep[2, j]
    _cell_side_gradients(dz, d_cell, dc_j, c_prev, i, f, g, peep, layout, derivative, da, j, now, batch)


@njit(inline="always", error_model="numpy")
def _output_gate_gradient(dz_o, dh_j, s, o, da, peep, d_cell, layout, derivative, j, batch):
    """dz_o = (dh s (+ dL/da_t's row of o, FGR)) sigma'(o); d_cell += dz_o p_o."""
    for b in range(batch):
        dz_o[b] = dh_j[b] * s[b]
    _finish_gate_gradient(dz_o, o, da, peep, d_cell, layout, 2, derivative, j)


@njit(inline="always", error_model="numpy")
def _finish_gate_gradient(dz_q, q, da, peep, d_cell, layout, k, derivative, j):
    """dz_q = (dz_q + dL/da_t's row of gate k, with FGR) sigma'(q), for gate k of i, f, o (0, 1,
    2) of unit j; dz_q comes in holding what the step itself gives (`_gate_recurrence`). With
    peepholes, d_cell (the cell-state gradient the gate's peephole reads into; empty: none)
    += dz_q p_q."""
    _derivative(layout[5], q, derivative)
    row = layout[A_ROWS + k]
    if row >= 0:
        for b in range(dz_q.shape[0]):
            dz_q[b] += da[row + j, b]
    for b in range(dz_q.shape[0]):
        dz_q[b] *= derivative[b]
    if layout[8] != 0 and d_cell.shape[0] > 0:
        for b in range(dz_q.shape[0]):
            d_cell[b] += dz_q[b] * peep[k, j]


@njit(inline="always")
def prefetch_unit(array, layout, j, now, batch):
    """Prefetch unit j's rows of the blocks present (`_prefetch`)."""
    for block in range(4):
        if layout[block] >= 0:
            prefetch_rows(array, layout[block] + j, 0, 1, now, batch)
