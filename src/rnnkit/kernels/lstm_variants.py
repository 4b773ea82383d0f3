"""Every LSTM structure, compiled: one loop whose gates, peepholes and activations are
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
gate's kind, the three activation codes, whether there are peepholes, and whether the cell is
layer-normalised. Peephole weight gradients are summed after the loop, one row at a time over
the contiguous feature-major arrays. The per-unit equations are in `_lstm_units.py`.

Layer normalisation (`layer_norm=True`; `_layer_norm.py`, and the NumPy cell for the equations):
the input projection W_ih x is normalised in place before the loop, all T*B columns at once
(b_ih then joins b_hh, added inside the loop); inside it, each step normalises W_hh h_{t-1} (made
in its own buffer, then added to the input's) and c_t (between the two halves of the forward,
`_lstm_units`), and backward takes both normalisations back (dz through LN_hh' becomes what
W_hh^T multiplies and dW_hh reads). After the loop LN_ih' turns dz into dL/d(W_ih x), again all
columns at once, and the weight gradients are the standard kernel's `finish_backward`.
"""

from __future__ import annotations

import numpy as np

from . import _workspace
from ._gate_recurrence import add_gate_product, keep_gates, previous_gate_gradient
from ._layer_norm import (
    add_backward_row,
    add_gain_gradients,
    add_row,
    add_unit_backward_rows,
    backward_row,
    backward_rows,
    column_statistics,
    finish_statistics,
    normalise_all,
    normalise_backward_all,
    normalise_row,
    normalise_unit_rows,
    scale_sums,
    start_sums,
)
from ._loop_kernel import copy, copy_transposed, loop_kernel
from ._lstm_units import (
    CODES,
    COUPLED,
    LEARNED,
    NONE,
    ONES,
    SCRATCH_ROWS,
    SUMS,
    SUMS_HH,
    backward_cell,
    backward_output,
    backward_unit,
    forward_cell,
    forward_output,
    forward_unit,
    prefetch_unit,
)
from ._padding import any_held, clear_columns, held_steps, hold_columns
from ._prefetch import AHEAD, prefetch_rows
from ._recurrent_dropout import fed, mask_for_loop
from ._sequence import loop_masks
from .activations import scalar
from .blas import find_blas, product
from .lstm import (
    _add_transposed,
    _steps_view,
    backward_buffers,
    finish_backward,
    forward_buffers,
    forward_result,
    hold_state,
    next_state_gradient,
)

NORMALISED = 9  # layout's entry: 1 for a layer-normalised cell


@loop_kernel
def forward_loop(addresses, w_hh, bias, peep, layout, act, h_now, c, s, h, held, dropped, scratch, operand,
                 recurrent, norm, gates):
    """As `lstm.forward_loop`, for any structure: act (G*H, T*B) input projections in, gate
    activations out; peep (3, H) peepholes of i, f, o (zeros where absent); scratch (SCRATCH_ROWS, B);
    operand (H, B) and, with layer norm, recurrent (G*H, B): the step's GEMM operand and product.
    norm: the normalisations' arrays, (gain_hh, gain_cell, shift_cell, hat_hh (G*H, T*B),
    inv_hh (T*B,), hat_cell (H, T*B), inv_cell (T*B,)), all empty without layer norm. gates:
    FGR's (W_gate, a (G'H, (T+1)*B) with a_0 set, (G'H, B) scratch) (`_gate_recurrence`),
    empty without."""
    steps, batch, hidden = h.shape[0] - 1, h.shape[1], h.shape[2]
    gain_hh, gain_cell, shift_cell, hat_hh, inv_hh, hat_cell, inv_cell = norm
    w_gate, a_all, gate_product = gates
    recurrent_gates = a_all.shape[0] > 0
    normalised = layout[NORMALISED] != 0
    has_shift, zero = shift_cell.shape[0] > 0, scalar(act, 0.0)
    scratch[ONES, :batch] = 1.0
    sums, sums_hh = scratch[SUMS:SUMS + 2], scratch[SUMS_HH:SUMS_HH + 2]
    hh_mean = sums_hh[0, :batch]
    for t in range(steps):
        now = t * batch
        if normalised:  # act += LN(W_hh h_{t-1}): its statistics here, its rows in the unit loop
            product(addresses, w_hh, fed(h_now, dropped, operand), recurrent, 0.0)
            hh_mean = column_statistics(recurrent, inv_hh[now:now + batch], sums_hh)
        else:
            product(addresses, w_hh, fed(h_now, dropped, operand), act[:, now:now + batch], 1.0)
        if recurrent_gates:
            add_gate_product(addresses, w_gate, a_all, gate_product, act, layout, now, batch)
        c_sum, c_variance = start_sums(sums, batch)  # LN(c_t)'s statistics, with layer norm
        for j in range(hidden):
            if j + AHEAD < hidden:
                prefetch_unit(act, layout, j + AHEAD, now, batch)
                prefetch_rows(c, j + AHEAD, 0, 1, now, 2 * batch)
                prefetch_rows(s, j + AHEAD, 0, 1, now, batch)
            if normalised:
                if j + AHEAD < hidden:
                    prefetch_unit(hat_hh, layout, j + AHEAD, now, batch)
                normalise_unit_rows(recurrent, gain_hh, hh_mean, inv_hh[now:now + batch], hat_hh, act, layout, j, now)
                forward_cell(act, bias, peep, layout, c, scratch, j, now, batch)
                add_row(c[j, now + batch:now + 2 * batch], c_sum)
            else:
                forward_unit(act, bias, peep, layout, c, s, h_now, scratch, j, t, batch)
        if normalised:  # s's input is LN(c_t), for every unit
            c_t, inv = c[:, now + batch:now + 2 * batch], inv_cell[now:now + batch]
            finish_statistics(c_t, c_sum, c_variance, inv)
            for j in range(hidden):
                if j + AHEAD < hidden:
                    prefetch_rows(hat_cell, j + AHEAD, 0, 1, now, batch)
                s_j = s[j, now:now + batch]
                normalise_row(c_t[j], c_sum, inv, gain_cell[j], shift_cell[j] if has_shift else zero, has_shift,
                              hat_cell[j, now:now + batch], s_j, False)
                forward_output(act, bias, peep, layout, c, s, h_now, scratch, j, now, batch, s_j)
        if recurrent_gates:
            keep_gates(act, a_all, layout, now, batch)
        hold_state(held, t, c, h, h_now)
        if recurrent_gates and any_held(held, t):
            hold_columns(held[t], a_all[:, now:now + batch], a_all[:, now + batch:now + 2 * batch])
        copy_transposed(h_now, h[t + 1])


@loop_kernel
def backward_loop(addresses, w_hh_t, peep, layout, act, c, s, dy, dh, dc, dz, held, dropped, scratch, unit_rows,
                  norm, grads, gates):
    """As `lstm.backward_loop`, for any structure; dz (G*H, T*B) written. unit_rows: (3, H, B)
    scratch. norm: the forward's; grads: (d_hh (G*H, T*B): dL/d(W_hh h_{t-1}), d_out (H, T*B):
    dL/d LN(c_t)), written, empty without layer norm. gates: FGR's (W_gate^T, da (G'H, B)
    dL/da_T in, dL/da_0 out, two (G'H, B) scratch arrays), empty without."""
    hidden, batch = dh.shape
    steps = act.shape[1] // batch
    gain_hh, gain_cell, _, hat_hh, inv_hh, hat_cell, inv_cell = norm
    d_hh, d_out_all = grads
    normalised = layout[NORMALISED] != 0
    scratch[ONES, :batch] = 1.0
    sums, sums_hh = scratch[SUMS:SUMS + 2], scratch[SUMS_HH:SUMS_HH + 2]
    has_dy = dy.shape[0] > 0
    dc_held, dh_scratch, d_cell_norm = unit_rows[0], unit_rows[1], unit_rows[2]
    w_gate_t, da, dz_gates, da_held = gates
    recurrent_gates = da.shape[0] > 0
    if has_dy:
        _add_transposed(dh, dy[steps - 1], scalar(act, 1.0))
    for t in range(steps - 1, -1, -1):
        now = t * batch
        d_out = d_out_all[:, now:now + batch]  # (0, 0) without layer norm
        padded = any_held(held, t)
        if padded:
            copy(dc, dc_held)
            if recurrent_gates:
                copy(da, da_held)
        first, second = start_sums(sums, batch)  # LN(c_t)'s backward sums, with layer norm
        for j in range(hidden):
            if j + AHEAD < hidden:
                prefetch_unit(act, layout, j + AHEAD, now, batch)
                prefetch_unit(dz, layout, j + AHEAD, now, batch)
                prefetch_rows(c, j + AHEAD, 0, 1, now, batch)
                prefetch_rows(s, j + AHEAD, 0, 1, now, batch)
            if normalised:
                backward_output(act, peep, layout, s, dh, dz, d_out, scratch, da, j, now, batch)
                add_backward_row(d_out[j], gain_cell[j], hat_cell[j, now:now + batch], first, second)
            else:
                backward_unit(act, peep, layout, c, s, dh, dc, dz, scratch, da, j, t, batch)
        dz_t = dz[:, now:now + batch]
        if normalised:  # a held sequence's gradients here are discarded (next_state_gradient) or cleared
            scale_sums(first, second, hidden)
            first_hh, second_hh = start_sums(sums_hh, batch)  # LN(W_hh h_{t-1})'s, unit by unit
            for j in range(hidden):
                if j + AHEAD < hidden:
                    prefetch_unit(hat_hh, layout, j + AHEAD, now, batch)
                backward_row(d_out[j], gain_cell[j], hat_cell[j, now:now + batch], first, second,
                             inv_cell[now:now + batch], d_cell_norm[j])
                backward_cell(act, peep, layout, c, dc, dz, d_cell_norm, scratch, da, j, now, batch)
                add_unit_backward_rows(dz, gain_hh, hat_hh, layout, j, now, batch, first_hh, second_hh)
            if padded:  # and it sends none into this step's normalisations' gains
                clear_columns(held[t], d_out)
                clear_columns(held[t], dz_t)
            scale_sums(first_hh, second_hh, dz_t.shape[0])
            backward_rows(dz_t, gain_hh, hat_hh[:, now:now + batch], first_hh, second_hh, inv_hh[now:now + batch],
                          d_hh[:, now:now + batch])
            dz_t = d_hh[:, now:now + batch]  # what W_hh^T multiplies
        next_state_gradient(addresses, w_hh_t, dz_t, dy, dh, dc, held, dc_held, t, padded, has_dy, dropped,
                            dh_scratch)
        if recurrent_gates:  # dz's held columns are clear now; a held sequence keeps its dL/da
            previous_gate_gradient(addresses, w_gate_t, dz, dz_gates, da, layout, now, batch)
            if padded:
                hold_columns(held[t], da_held, da)


# ----------------------------------------------------------------------- Python entry points
def _layout(cell) -> np.ndarray:
    """The structure as the loops read it (module docstring)."""
    hidden, blocks = cell.hidden_size, cell.block_names
    offsets = [blocks.index(name) * hidden if name in blocks else -1 for name in "ifgo"]
    forget = {"learned": LEARNED, "none": NONE, "coupled": COUPLED}[cell.structure.forget_gate]
    codes = [CODES[a.name] for a in (cell.gate_activation, cell.input_activation, cell.output_activation)]
    flags = [int(cell.weight_peephole is not None), int(cell.layer_norm)]
    recurrent = cell.weight_gate is not None
    a_rows = [cell.gate_names.index(name) * hidden if recurrent and name in cell.gate_names else -1 for name in "ifo"]
    return np.array(offsets + [forget] + codes + flags + a_rows, np.int64)


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
    steps, batch = x.shape[:2]
    rows = cell.num_blocks * cell.hidden_size
    act, bias, h_now, c, s, h = forward_buffers(cell, x, state0, rows)
    if cell.layer_norm:  # act = LN(W_ih x) for all steps at once (b_ih joins b_hh in the loop)
        input_norm = (_workspace.empty(act.shape, x.dtype), np.empty(act.shape[1], x.dtype))
        normalise_all(act, cell.norm_ih.weight.value, _shift(cell.norm_ih, x.dtype), *input_norm,
                      np.empty((2, act.shape[1]), x.dtype))
    norm = _normalisation_buffers(cell, steps * batch)
    gates = _empty_arrays(x.dtype, 3)
    if cell.weight_gate is not None:
        width = cell.weight_gate.value.shape[0]
        a_all = _workspace.empty((width, (steps + 1) * batch), x.dtype)
        a_all[:, :batch] = state0[2].T
        gates = (cell.weight_gate.value, a_all, np.empty((width, batch), x.dtype))
    forward_loop(find_blas(x.dtype), cell.weight_hh.value, bias, _peepholes(cell), _layout(cell), act, h_now, c, s,
                 h, held_steps(mask, batch), mask_for_loop(recurrent_mask, x.dtype, feature_major=True),
                 np.empty((SCRATCH_ROWS, batch), x.dtype), np.empty_like(h_now), np.empty((rows, batch), x.dtype), norm,
                 gates)
    outputs, final, cache = forward_result(act, c, s, h)
    if cell.weight_gate is not None:  # FGR's a: the cache's (T+1, B, G'H) view, and a_T
        cache.a = _steps_view(gates[1], batch)
        final = final + (np.ascontiguousarray(gates[1][:, -batch:].T),)
    if cell.layer_norm:  # the statistics in the reference's layout too (views), for NumPy's backward
        _, _, _, hat_hh, inv_hh, hat_cell, inv_cell = norm
        cache.norm_fm, cache.ln_ih_fm = norm, input_norm
        cache.ln_ih = (_steps_view(input_norm[0], batch), input_norm[1].reshape(steps, batch, 1))
        cache.ln_hh = (_steps_view(hat_hh, batch), inv_hh.reshape(steps, batch, 1))
        cache.ln_cell = (_steps_view(hat_cell, batch), inv_cell.reshape(steps, batch, 1))
        cache.d_hh_product = np.empty((steps, batch, rows), x.dtype)
    return outputs, final, cache


def _empty_arrays(dtype, count: int):
    """`count` empty 2-D arrays: a loop's `gates` tuple for a cell without FGR, or its `grads`
    pair for a cell without layer norm (one compiled signature with and without)."""
    return tuple(np.zeros((0, 0), dtype) for _ in range(count))


def _normalisation_buffers(cell, columns: int):
    """The forward loop's `norm` tuple: gains, shift and fresh statistics arrays; empty arrays
    for a cell without layer norm (one compiled signature for both)."""
    dtype = cell.dtype
    if not cell.layer_norm:
        empty, empty_2d = np.zeros(0, dtype), np.zeros((0, 0), dtype)
        return (empty, empty, empty, empty_2d, empty, empty_2d, empty)
    rows, hidden = cell.num_blocks * cell.hidden_size, cell.hidden_size
    return (cell.norm_hh.weight.value, cell.norm_cell.weight.value, _shift(cell.norm_cell, dtype),
            _workspace.empty((rows, columns), dtype), np.empty(columns, dtype),
            _workspace.empty((hidden, columns), dtype), np.empty(columns, dtype))


def _shift(norm, dtype, grad=False):
    """A LayerNorm's shift (or its gradient), or an empty array when it has none."""
    if norm.bias is None:
        return np.zeros(0, dtype)
    return norm.bias.grad if grad else norm.bias.value


def _feature_major_input_norm(cache):
    """(v_hat (G*H, T*B), 1/sigma (T*B,)) of the input's normalisation, from a NumPy forward's
    cache when it ran the forward."""
    if not hasattr(cache, "ln_ih_fm"):
        hat, inv = cache.ln_ih
        cache.ln_ih_fm = (np.ascontiguousarray(hat.transpose(2, 0, 1).reshape(hat.shape[2], -1)), inv.reshape(-1))
    return cache.ln_ih_fm


def _feature_major_normalisation(cell, cache):
    """The forward's `norm` tuple for the backward loop; rebuilt from the reference layout when
    the NumPy code ran the forward."""
    if not cell.layer_norm:
        return _normalisation_buffers(cell, 0)
    if not hasattr(cache, "norm_fm"):
        flat = lambda a: np.ascontiguousarray(a.transpose(2, 0, 1).reshape(a.shape[2], -1))  # noqa: E731
        cache.norm_fm = (cell.norm_hh.weight.value, cell.norm_cell.weight.value, _shift(cell.norm_cell, cell.dtype),
                         flat(cache.ln_hh[0]), cache.ln_hh[1].reshape(-1), flat(cache.ln_cell[0]),
                         cache.ln_cell[1].reshape(-1))
    return cache.norm_fm


def backward_sequence(cell, d_outputs, d_state, cache):
    """The whole backward of one direction: returns (dL/dx (T, B, I), dL/d state0); adds the
    parameter gradients (the buffers and the work after the loop are the standard kernel's)."""
    cache, dz, dh, dc, dy, w_hh_t = backward_buffers(cell, d_outputs, d_state, cache)
    dtype, batch = cache.x.dtype, cache.x.shape[1]
    norm = _feature_major_normalisation(cell, cache)
    grads = _empty_arrays(dtype, 2)
    if cell.layer_norm:
        grads = (_workspace.empty(dz.shape, dtype), _workspace.empty((cell.hidden_size, dz.shape[1]), dtype))
    gates = _empty_arrays(dtype, 4)
    if cell.weight_gate is not None:
        da = np.array(np.asarray(d_state[2]).T, dtype, order="C")
        gates = (np.ascontiguousarray(cell.weight_gate.value.T), da, np.empty_like(da), np.empty_like(da))
    backward_loop(find_blas(dtype), w_hh_t, _peepholes(cell), _layout(cell), cache.act_fm, cache.c_fm, cache.s_fm,
                  dy, dh, dc, dz, *loop_masks(cache, batch, dtype, feature_major=True),
                  np.empty((SCRATCH_ROWS, batch), dtype), np.empty((3,) + dh.shape, dtype), norm, grads, gates)
    d_gates = (np.ascontiguousarray(gates[1].T),) if cell.weight_gate is not None else ()
    d_product = dz
    if cell.layer_norm:  # dL/d(W_ih x) = LN_ih'(dz), all steps at once; the products' gradients in the cache
        d_product = _workspace.empty(dz.shape, dtype)
        hat_ih, inv_ih = _feature_major_input_norm(cache)
        normalise_backward_all(dz, cell.norm_ih.weight.value, hat_ih, inv_ih, d_product,
                               np.empty((2, dz.shape[1]), dtype))
        cache.d_ih_product, cache.d_hh_product = _steps_view(d_product, batch), _steps_view(grads[0], batch)
        for layer_norm, d_normalised, v_hat in ((cell.norm_ih, dz, hat_ih), (cell.norm_hh, dz, norm[3]),
                                                (cell.norm_cell, grads[1], norm[5])):
            add_gain_gradients(layer_norm, d_normalised, v_hat)
    dx, d_state0 = finish_backward(cell, cache, dz, dh, dc, d_peephole=_peephole_grads(cell, cache, dz),
                                   d_product=d_product)
    return dx, d_state0 + d_gates


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
    return (np.array(final[0]),) + tuple(final[1:])
