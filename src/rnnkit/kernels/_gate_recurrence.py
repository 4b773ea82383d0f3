"""FGR, full gate recurrence (Greff et al. 2015), in the compiled LSTM loop (`lstm_variants.py`).

Each learned gate also reads the previous step's gate activations a_{t-1} = [i; f; o]_{t-1}
(the gates present, in that order; the reference is `rnnkit.cells.lstm`):

    forward:   z_gates_t += W_gate a_{t-1}                  one (G'H x G'H) @ (G'H x B) GEMM per step
    backward:  dL/da_{t-1} = W_gate^T dz_gates_t            one more, after the step's dz;
               dz_q = (what the step gives + dL/da_t[q]) q'  for each gate q (`_lstm_units`)

a is part of the state, kept feature-major as (G'H, (T+1)*B) with a_0 in the first B columns
(the cache's `a` in the reference's (T+1, B, G'H) layout is a view of it), and a padded
sequence holds it like c. layout[A_ROWS + k] is the row of gate k of i, f, o in a (-1: none,
or no FGR). dW_gate = sum_t dz_gates_t a_{t-1}^T is the NumPy cell's, after the loop.
"""

from __future__ import annotations

from numba import njit

from .blas import product

A_ROWS = 10  # layout[10:13]: rows of i, f, o in a


@njit(inline="always")
def add_gate_product(addresses, w_gate, a_all, gate_product, act, layout, now, batch):
    """act's gate rows at the step that starts at column `now` += W_gate a_{t-1}."""
    product(addresses, w_gate, a_all[:, now:now + batch], gate_product, 0.0)
    _between_layouts(act, now, gate_product, 0, layout, batch, True)


@njit(inline="always")
def keep_gates(act, a_all, layout, now, batch):
    """a_t (a_all's columns now + B ...) = the step's gate activations (act's columns now ...)."""
    _between_layouts(act, now, a_all, now + batch, layout, batch, False)


@njit(inline="always")
def previous_gate_gradient(addresses, w_gate_t, dz, dz_gates, da, layout, now, batch):
    """da = dL/da_{t-1} = W_gate^T dz_gates_t, dz_gates gathered from dz's gate rows at `now`."""
    _between_layouts(dz, now, dz_gates, 0, layout, batch, False)
    product(addresses, w_gate_t, dz_gates, da, 0.0)


@njit(inline="always")
def _between_layouts(blocks, block_column, stacked, stacked_column, layout, batch, into_blocks):
    """One step's gate rows between act's layout (blocks i, f, g, o; `layout`'s offsets) and a's
    (the gates present, stacked): added into the blocks when `into_blocks`, else copied into the
    stack; B columns from each array's given first column."""
    gates = 0
    for k in range(3):
        if layout[A_ROWS + k] >= 0:
            gates += 1
    hidden = stacked.shape[0] // gates
    for k in range(3):
        row, block = layout[A_ROWS + k], layout[(0, 1, 3)[k]]
        if row < 0:
            continue
        for j in range(hidden):
            for b in range(batch):
                if into_blocks:
                    blocks[block + j, block_column + b] += stacked[row + j, stacked_column + b]
                else:
                    stacked[row + j, stacked_column + b] = blocks[block + j, block_column + b]
