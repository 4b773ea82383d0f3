"""Truncated backpropagation through time, BPTT(k1, k2) (Williams & Peng 1990).

Every k1 steps, the losses of those k1 steps are injected and their gradient is propagated k2
steps back (k2 >= k1); the state carries forward across windows, and the gradient stops at the
start of each backward window. Over a sequence of T steps, window j ends at e_j = min(j k1, T):

    injected steps    [e_{j-1}, e_j)                    (at most k1 new losses)
    backward window   [s_j, e_j),  s_j = max(0, e_j - k2)
    loss_j            mean of the per-step losses over the injected steps
    gradient_j        d loss_j / d weights, through the window only, s_j's state held fixed

k1 = k2 is the chunked form of char-rnn (each window backpropagates only over itself, except a
short last window when k1 does not divide T: it still reaches k2 steps back from its end);
k1 = k2 = T is full BPTT. With k2 > k1 consecutive backward windows overlap: window j+1 starts
at s_{j+1} <= e_j, so window j's forward is split at s_{j+1} and the state there seeds window
j+1 (the overlapping steps are run again in window j+1, as in the detached-graph formulation).

The model needs `forward(inputs, state) -> (outputs, state, cache)` and
`backward(d_outputs, cache, d_state) -> (d_inputs, d_state0)`; the loss function
`loss_fn(outputs, targets, mask) -> (loss, d_outputs)` with a mean over the counted positions,
as every loss in `rnnkit.losses` does.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["check_truncation", "windows", "truncated_bptt"]


def check_truncation(k1: int, k2: int) -> None:
    for name, value in (("k1", k1), ("k2", k2)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"truncated BPTT needs a positive integer {name}, got {value!r}")
    if k2 < k1:
        raise ValueError(f"truncated BPTT needs k2 >= k1 (backpropagate at least as far as the "
                         f"k1 injected losses), got k1={k1}, k2={k2}")


def windows(steps: int, k1: int, k2: int) -> list[tuple[int, int, int]]:
    """(start, first injected step, end) of every window over `steps` time steps."""
    check_truncation(k1, k2)
    bounds, previous_end = [], 0
    while previous_end < steps:
        end = min(previous_end + k1, steps)
        bounds.append((max(0, end - k2), previous_end, end))
        previous_end = end
    return bounds


def truncated_bptt(model, loss_fn: Callable, inputs: np.ndarray, targets: np.ndarray, state, k1: int, k2: int,
                   *, mask: np.ndarray | None = None,
                   after_window: Callable[[float, int], None] | None = None):
    """Run BPTT(k1, k2) over time-major `inputs` / `targets` (T, B, ...) from `state` (None for
    zero). Each window's parameter gradients are *added* into `.grad`; `after_window(loss,
    index)` runs after each window's backward (an optimizer step and `zero_grad` go there; with
    no callback the gradients of all windows accumulate). `mask` (T, B) marks counted positions.

    A window in which no position counts is run forward (its state is needed) but has no loss,
    no backward and no callback. When one window covers the whole batch (full BPTT), inputs and
    targets go to the model and the loss whole, so a many-to-one model's per-sequence targets
    work too.

    Returns (the state after the last step, [(window loss, counted positions), ...])."""
    steps = len(inputs)
    bounds = windows(steps, k1, k2)
    if len(bounds) == 1:  # one window over everything: full BPTT, the targets taken as they are
        return _whole_sequence(model, loss_fn, inputs, targets, state, mask, after_window)
    if len(targets) != steps:
        raise ValueError(f"inputs cover {steps} steps but targets cover {len(targets)}")
    losses = []
    for index, (start, injected, end) in enumerate(bounds):
        next_start = bounds[index + 1][0] if index + 1 < len(bounds) else end
        parts, carried = [], None
        for part_start, part_end in ((start, next_start), (next_start, end)):
            if part_end > part_start:
                outputs, state, cache = model.forward(inputs[part_start:part_end], state)
                parts.append((part_start, part_end, outputs, cache))
            if part_end == next_start:
                carried = state  # the state at the next window's start, held fixed there

        outputs = parts[0][2] if len(parts) == 1 else np.concatenate([p[2] for p in parts])
        counted = np.zeros((end - start,) + tuple(np.shape(targets)[1:2]), dtype=bool)
        counted[injected - start:] = True
        if mask is not None:
            counted &= np.asarray(mask[start:end], dtype=bool)
        state = carried
        positions = int(counted.sum())
        if positions == 0:  # nothing to learn from here (e.g. a target only at the end)
            continue
        loss, d_outputs = loss_fn(outputs, targets[start:end], counted)
        d_state = None
        for part_start, part_end, _, cache in reversed(parts):
            _, d_state = model.backward(d_outputs[part_start - start:part_end - start], cache, d_state)
        losses.append((float(loss), positions))
        if after_window is not None:
            after_window(float(loss), index)
    return state, losses


def _whole_sequence(model, loss_fn, inputs, targets, state, mask, after_window):
    """Full BPTT over one batch. The targets need not be per step: a many-to-one model's outputs
    and targets are per sequence, and the loss function is the model's to pair them."""
    outputs, final, cache = model.forward(inputs, state)
    positions = int(np.sum(mask)) if mask is not None else int(np.prod(np.shape(targets)[:2]))
    if positions == 0:
        return final, []
    loss, d_outputs = loss_fn(outputs, targets, mask)
    model.backward(d_outputs, cache, None)
    if after_window is not None:
        after_window(float(loss), 0)
    return final, [(float(loss), positions)]
