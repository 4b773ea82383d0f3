"""Truncated backpropagation through time, BPTT(k1, k2) (Williams & Peng 1990).

Every k1 steps, the losses of those k1 steps are injected and their gradient is propagated k2
steps back (k2 >= k1); the state carries forward across windows, and the gradient stops at the
start of each backward window. Over a batch of T steps that continues a stream whose last P
steps are kept (`StreamHistory`; P = 0 for a batch that starts a sequence), window j ends at
e_j = min(j k1, T), in the batch's own step numbers (the kept steps are -P .. -1):

    injected steps    [e_{j-1}, e_j)                    (at most k1 new losses)
    backward window   [s_j, e_j),  s_j = max(-P, e_j - k2)
    loss_j            mean of the per-step losses over the injected steps
    gradient_j        d loss_j / d weights, through the window only, s_j's state held fixed

So a window reaches k2 steps back even at the start of a batch: with char-rnn's streams the
first window of a batch backpropagates into the previous batch's last k2 - k1 steps, as over one
continuous stream. A batch hands on the last `keep` steps of its inputs and the state where they
start; the trainer keeps k2 - min(k1, T), exactly what the next batch's first window reaches.

k1 = k2 is the chunked form of char-rnn (each window backpropagates only over itself, except a
short last window when k1 does not divide T: it still reaches k2 steps back from its end);
k1 = k2 = T is full BPTT. With k2 > k1 consecutive backward windows overlap: window j+1 starts
at s_{j+1} <= e_j, so window j's forward is split at s_{j+1} and the state there seeds window
j+1 (the detached-graph formulation). Which weights compute what, when every window ends in an
update W_j -> W_{j+1}:

    the state at s_j      computed by window j-1's forward, with W_{j-1}, and held fixed
    steps [s_j, e_j)      run forward again by window j with the current weights W_j, overlap
                          included (kept steps of the previous batch too), and backpropagated
                          with W_j: the gradient is exactly that of loss_j(W_j) on that graph

The model needs `forward(inputs, state) -> (outputs, state, cache)` and
`backward(d_outputs, cache, d_state) -> (d_inputs, d_state0)`; the loss function
`loss_fn(outputs, targets, mask) -> (loss, d_outputs)` with a mean over the counted positions,
as every loss in `rnnkit.losses` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["BPTTResult", "StreamHistory", "check_truncation", "history_length", "windows", "truncated_bptt"]


@dataclass(frozen=True)
class StreamHistory:
    """The end of a stream that the next batch's first windows reach back into.

    inputs: the last P steps' inputs, (P, B, ...), already trained on (their losses were
    injected by earlier windows), or None for P = 0; state: the recurrent state where they
    begin (None for zero), a value from an earlier forward pass that the gradient stops at."""

    state: Any = None
    inputs: np.ndarray | None = None

    def __len__(self) -> int:
        return 0 if self.inputs is None else len(self.inputs)


class BPTTResult(NamedTuple):
    state: Any  # the state after the batch's last step
    losses: list[tuple[float, int]]  # (window loss, counted positions) of each window that has a loss
    history: StreamHistory  # the batch's last `keep` inputs and the state where they begin


def check_truncation(k1: int, k2: int) -> None:
    for name, value in (("k1", k1), ("k2", k2)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"truncated BPTT needs a positive integer {name}, got {value!r}")
    if k2 < k1:
        raise ValueError(f"truncated BPTT needs k2 >= k1 (backpropagate at least as far as the "
                         f"k1 injected losses), got k1={k1}, k2={k2}")


def history_length(steps: int, k1: int, k2: int) -> int:
    """How many steps of a batch of `steps` the next batch of as many steps reaches back into:
    its first window ends at min(k1, steps) and starts k2 steps before that."""
    return k2 - min(k1, steps)


def windows(steps: int, k1: int, k2: int, past: int = 0) -> list[tuple[int, int, int]]:
    """(start, first injected step, end) of every window over `steps` time steps, which follow
    `past` kept steps of the same stream: a negative start reaches into those."""
    check_truncation(k1, k2)
    bounds, previous_end = [], 0
    while previous_end < steps:
        end = min(previous_end + k1, steps)
        bounds.append((max(-past, end - k2), previous_end, end))
        previous_end = end
    return bounds


def truncated_bptt(model, loss_fn: Callable, inputs: np.ndarray, targets: np.ndarray, state, k1: int, k2: int,
                   *, mask: np.ndarray | None = None,
                   after_window: Callable[[float, int], None] | None = None,
                   history: StreamHistory | None = None, keep: int = 0, every_window: bool = False) -> BPTTResult:
    """Run BPTT(k1, k2) over time-major `inputs` / `targets` (T, B, ...) from `state` (None for
    zero), or continuing the stream `history` (then `state` must be None). Each window's
    parameter gradients are *added* into `.grad`; `after_window(loss, index)` runs after each
    window's backward (an optimizer step and `zero_grad` go there; with no callback the
    gradients of all windows accumulate). `mask` (T, B) marks counted positions. `keep`: how
    many of the last steps to hand on in the result's `history` (0 <= keep < k2).

    A window in which no position counts is run forward (its state is needed) but has no loss,
    no backward and no callback. When one window covers the whole batch and nothing is kept
    (full BPTT), inputs and targets go to the model and the loss whole, so a many-to-one model's
    per-sequence targets work too. `every_window`: call `after_window(0.0, index)` for a window
    without a counted position too (data-parallel ranks must all join every window's exchange)."""
    check_truncation(k1, k2)
    if not isinstance(keep, (int, np.integer)) or isinstance(keep, bool) or not 0 <= keep < k2:
        raise ValueError(f"keep must be an integer in [0, k2) = [0, {k2}), got {keep!r}")
    if history is not None and state is not None:
        raise ValueError("give the starting state or the stream history to continue, not both")
    past = 0 if history is None else len(history)
    state = state if history is None else history.state
    steps = len(inputs)
    bounds = windows(steps, k1, k2, past)
    if past == 0 and keep == 0 and len(bounds) == 1:  # full BPTT: the targets taken as they are
        return _whole_sequence(model, loss_fn, inputs, targets, state, mask, after_window, every_window)
    if len(targets) != steps:
        raise ValueError(f"inputs cover {steps} steps but targets cover {len(targets)}")
    stream = _continue(history, inputs)  # stream[past + t] is the batch's step t
    # Where the window after each one starts: the next in this batch, or the next batch's first.
    next_starts = [start for start, _, _ in bounds[1:]] + [max(-past, steps - keep)]
    losses = []
    for index, ((start, injected, end), next_start) in enumerate(zip(bounds, next_starts)):
        parts, carried = [], None
        for part_start, part_end in ((start, next_start), (next_start, end)):
            if part_end > part_start:
                outputs, state, cache = model.forward(stream[past + part_start:past + part_end], state)
                parts.append((part_start, part_end, outputs, cache))
            if part_end == next_start:
                carried = state  # the state at the next window's start, held fixed there
        final, state = state, carried
        counted = np.ones((end - injected,) + tuple(np.shape(targets)[1:2]), dtype=bool)
        if mask is not None:
            counted &= np.asarray(mask[injected:end], dtype=bool)
        positions = int(counted.sum())
        if positions == 0:  # nothing to learn from here (e.g. a target only at the end)
            if every_window and after_window is not None:
                after_window(0.0, index)
            continue
        outputs = parts[0][2] if len(parts) == 1 else np.concatenate([p[2] for p in parts])
        loss, d_injected = loss_fn(outputs[injected - start:], targets[injected:end], counted)
        d_outputs = np.zeros_like(outputs)
        d_outputs[injected - start:] = d_injected  # the overlap's losses were injected before
        d_state = None
        for part_start, part_end, _, cache in reversed(parts):
            _, d_state = model.backward(d_outputs[part_start - start:part_end - start], cache, d_state)
        losses.append((float(loss), positions))
        if after_window is not None:
            after_window(float(loss), index)
    kept = stream[past + next_starts[-1]:] if next_starts[-1] < steps else None
    return BPTTResult(final, losses, StreamHistory(state, None if kept is None else np.array(kept)))


def _continue(history: StreamHistory | None, inputs):
    """The kept steps followed by the batch's, as one time-major array."""
    if history is None or len(history) == 0:
        return inputs
    if not isinstance(inputs, np.ndarray):
        raise ValueError(f"continuing a stream needs plain (T, B, ...) array inputs, got {type(inputs).__name__}")
    if history.inputs.shape[1:] != inputs.shape[1:]:
        raise ValueError(f"the kept stream steps have shape {history.inputs.shape[1:]} per step but this "
                         f"batch has {inputs.shape[1:]}; a stream keeps its batch size and input shape")
    return np.concatenate([history.inputs, inputs])


def _whole_sequence(model, loss_fn, inputs, targets, state, mask, after_window, every_window=False) -> BPTTResult:
    """Full BPTT over one batch. The targets need not be per step: a many-to-one model's outputs
    and targets are per sequence, and the loss function is the model's to pair them."""
    outputs, final, cache = model.forward(inputs, state)
    positions = int(np.sum(mask)) if mask is not None else int(np.prod(np.shape(targets)[:2]))
    if positions == 0:
        if every_window and after_window is not None:
            after_window(0.0, 0)
        return BPTTResult(final, [], StreamHistory(final))
    loss, d_outputs = loss_fn(outputs, targets, mask)
    model.backward(d_outputs, cache, None)
    if after_window is not None:
        after_window(float(loss), 0)
    return BPTTResult(final, [(float(loss), positions)], StreamHistory(final))
