"""The one time loop that every cell shares: forward over T steps, then backpropagation
through time (BPTT) back over them.

Forward, for one direction of one layer (x: (T, B, I), time-major):

    a = x W_ih^T + b_ih                     one GEMM for all T steps: (T*B, I) @ (I, G*H)
    for t = 0 .. T-1:  state_t = cell.step(a_t, state_{t-1})

Backward, with dy_t = dL/dh_t from whatever consumed the outputs and dstate_T = dL/dstate_T
(zero unless the final state was used):

    dstate = dstate_T
    for t = T-1 .. 0:
        dstate.h += dy_t                    the output's own gradient joins the carried one
        dstate = cell.step_backward(dstate) writes dL/da_t and dL/dr_t for step t
    dW_ih, dW_hh, biases                    one GEMM each over all T*B rows (cell.accumulate_grads)
    dx = dL/da W_ih                         one GEMM for all T steps

This is min-char-rnn's loop: backward carries `dhnext` (here the whole state gradient) from step
to step and adds each step's contribution into the weight gradients.

A reverse direction runs the same loop over the time-reversed input; `reverse=True` flips the
input on the way in and the outputs on the way out, so cells never know which way they run.

When a cell has a compiled kernel (`cell.fused()`, see `rnnkit.kernels`), each function hands
the whole direction to it: the same steps (projection, loop, weight gradients, dx), compiled,
in one call per sequence, padding (the rule below) and recurrent dropout included, with denormal
floats flushed to zero (`rnnkit.kernels._denormals`: saturated gates make them, and x86 CPUs
compute with them a hundred times slower).

Recording. `backward_sequence(..., record=f)` calls f(position, dL/dstate) for every state the
loop passes through, the whole state gradient as it stands (the output's own gradient
included): the gradient the loop carries, for the measurement of gradient flow
(`rnnkit.gradient_flow`). `position` counts boundaries between inputs in x's order: the forward
direction's state after reading x_0 .. x_{t-1} is at t (its initial state at 0), a reverse
direction's state after reading x_t .. x_{T-1} is at t (its initial state at T). Without f the
loop pays one `is None` test per step. With f the NumPy loop runs even where a compiled kernel
exists (it reports nothing per step); it reads the kernel's cache, whose layout is the same.

Padding. With a mask m (T, B) of real steps, a padded step leaves the state as it was,

    state_t = state_{t-1}            where m_t = 0

so a padded sequence ends in the state of its last real step, and backward passes the state
gradient straight through such a step, with no gradient for the weights. This needs the state a
cell's step returns to be the arrays its cache keeps (true of every cell here): the loop writes
the held rows into them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .cells.base import Cell, State
from .kernels import flushing_denormals

__all__ = ["forward_sequence", "backward_sequence"]


def forward_sequence(cell: Cell, x: np.ndarray, state0: State, reverse: bool = False,
                     mask: np.ndarray | None = None, *, input_mask: np.ndarray | None = None,
                     recurrent_mask: np.ndarray | None = None):
    """Run `cell` over x (T, B, I) from state0; `mask` (T, B) marks real steps (None: all);
    `input_mask` (B, I) / `recurrent_mask` (B, H): variational dropout masks (None: none).
    Returns (outputs (T, B, H) in x's time order, final state, cache)."""
    if mask is not None:
        mask = None if mask.all() else np.ascontiguousarray(mask[::-1] if reverse else mask)
    if reverse:
        x = x[::-1]
    x = np.ascontiguousarray(x if input_mask is None else x * input_mask)  # the same mask at every step
    fused = cell.fused()
    if fused is not None:  # the same loop, compiled, projection included (rnnkit.kernels)
        with flushing_denormals():
            outputs, state, cache = fused.forward_sequence(cell, x, state0, mask, recurrent_mask)
        cache.x, cache.mask, cache.input_mask, cache.recurrent_mask = x, mask, input_mask, recurrent_mask
        return (outputs[::-1] if reverse else outputs), state, cache

    steps, batch = x.shape[:2]
    cache = cell.new_cache(steps, batch, state0)
    cache.recurrent_mask = recurrent_mask
    projection = cell.input_projection(x, cache)
    state = state0
    for t in range(steps):
        new_state = cell.step(t, projection[t], state, cache)
        if mask is not None:
            _hold(new_state, state, ~mask[t])
        state = new_state
    cache.x, cache.mask, cache.input_mask = x, mask, input_mask
    outputs = cache.h[1:]
    return (outputs[::-1] if reverse else outputs), state, cache


def backward_sequence(cell: Cell, d_outputs: np.ndarray | None, d_state: State, cache, reverse: bool = False,
                      record: Callable[[int, State], None] | None = None):
    """BPTT through one `forward_sequence` call. d_outputs: (T, B, H) in x's time order (None
    for no gradient on the outputs); d_state: gradient w.r.t. the final state; record: called as
    record(position, dL/dstate) for each of the T + 1 states (module docstring; the arrays may be
    reused afterwards, so copy what you keep). Adds parameter gradients into the cell's
    Parameters; returns (dL/dx (T, B, I) in x's order, dL/dstate0)."""
    steps, batch = cache.x.shape[:2]
    rows = cell.weight_ih.value.shape[0]
    if d_outputs is not None and reverse:
        d_outputs = d_outputs[::-1]

    mask = getattr(cache, "mask", None)
    fused = cell.fused() if record is None else None
    if fused is not None:  # the same loop and weight gradients, compiled
        with flushing_denormals():
            dx, d_state = fused.backward_sequence(cell, d_outputs, d_state, cache)
        return _input_gradient(dx, cache, reverse), d_state

    d_input = np.empty((steps, batch, rows), dtype=cell.dtype)
    d_recurrent = d_input if cell.shares_preactivation else np.empty_like(d_input)
    for t in range(steps - 1, -1, -1):
        if d_outputs is not None:
            d_state = (d_state[0] + d_outputs[t],) + tuple(d_state[1:])
        if record is not None:
            record(steps - 1 - t if reverse else t + 1, d_state)
        if mask is not None and not mask[t].all():
            padded = ~mask[t]
            into_step = tuple(np.where(padded[:, None], 0.0, component) for component in d_state)
            d_previous = cell.step_backward(t, into_step, cache, d_input[t], d_recurrent[t])
            _hold(d_previous, d_state, padded)  # a held state passes its gradient through
        else:
            d_previous = cell.step_backward(t, d_state, cache, d_input[t], d_recurrent[t])
        d_state = d_previous
    if record is not None:
        record(steps if reverse else 0, d_state)

    return _input_gradient(cell.finish_backward(cache, d_input, d_recurrent), cache, reverse), d_state


def _input_gradient(dx: np.ndarray, cache, reverse: bool) -> np.ndarray:
    """dL/dx in x's time order, through the input dropout mask if there was one."""
    if cache.input_mask is not None:
        dx = dx * cache.input_mask
    return dx[::-1] if reverse else dx


def _hold(new: State, old: State, rows: np.ndarray) -> None:
    """Copy the `rows` of every component of `old` into `new`, in place."""
    if rows.any():
        for new_component, old_component in zip(new, old):
            new_component[rows] = old_component[rows]
