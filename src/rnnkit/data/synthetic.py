"""Synthetic long-lag problems (Hochreiter & Schmidhuber 1997), generated from an explicit
numpy Generator.

The adding problem: T numbers drawn from U(0, 1), two of them marked (one in the first ten steps,
one in the second half); at the last step the network must output the sum of the two marked
numbers. Predicting the mean sum, 1, gives an MSE of 1/6; a sequence counts as answered when
the error is below 0.04. (The paper's experiment 4 draws the numbers from [-1, 1], puts the
second mark in the first half and asks for 0.5 + (x1 + x2)/4 within 0.04, i.e. the sum within
0.16: ours is the stricter test.)

The temporal-order problem (the paper's experiment 6): a sequence of symbols from
`TEMPORAL_ORDER_SYMBOLS`, one-hot: it starts with E, ends with the trigger B, and is otherwise
noise from {a, b, c, d} except at two (6a) or three (6b) relevant positions, each X or Y, drawn
from the windows (for a nominal length N = 100, the paper's)

    6a:  t1 in [N/10, N/5] = [10, 20],  t2 in [N/2, N/2 + N/10] = [50, 60]
    6b:  t1 in [10, 20],  t2 in [N/3, N/3 + N/10] = [33, 43],  t3 in [2N/3, 2N/3 + N/10] = [66, 76]

At the last step the network must name the order: class sum_k [symbol k is Y] 2^(K-1-k), so
XX, XY, YX, YY are classes 0-3 (the paper's Q, R, S, U) and 6b has eight classes.
"""

from __future__ import annotations

import numpy as np

from ..init import as_generator

__all__ = ["adding_problem", "ADDING_TOLERANCE", "temporal_order", "temporal_order_windows",
           "TEMPORAL_ORDER_SYMBOLS"]

ADDING_TOLERANCE = 0.04
#: Noise a-d, the start symbol E, the trigger B, the relevant X and Y: the one-hot input order.
TEMPORAL_ORDER_SYMBOLS = "abcdEBXY"


def adding_problem(rng: np.random.Generator | int, n: int, steps: int):
    """Time-major inputs (steps, n, 2) = (value, marker) and targets (steps, n, 1), of which
    only the last step counts."""
    rng = as_generator(rng)
    values = rng.uniform(0, 1, (n, steps))
    first = rng.integers(0, min(10, steps // 2), n)
    second = rng.integers(steps // 2, steps, n) if steps >= 4 else np.full(n, steps - 1)
    second = np.where(second == first, (first + 1) % steps, second)
    markers = np.zeros((n, steps))
    markers[np.arange(n), first] = 1
    markers[np.arange(n), second] = 1
    inputs = np.stack([values, markers], axis=2).astype(np.float32).swapaxes(0, 1)
    targets = np.zeros((steps, n, 1), np.float32)
    targets[-1, :, 0] = values[np.arange(n), first] + values[np.arange(n), second]
    return inputs, targets


def temporal_order_windows(nominal: int, relevant: int = 2) -> list[tuple[int, int]]:
    """The inclusive step windows of the relevant symbols for a nominal length (module docstring)."""
    if relevant not in (2, 3):
        raise ValueError(f"the temporal-order problem has 2 (6a) or 3 (6b) relevant symbols, got {relevant}")
    if nominal < 10:
        raise ValueError(f"the temporal-order problem needs a nominal length of at least 10, got {nominal}")
    tenth = nominal // 10
    starts = (tenth, nominal // 2) if relevant == 2 else (tenth, nominal // 3, 2 * nominal // 3)
    return [(tenth, nominal // 5)] + [(start, start + tenth) for start in starts[1:]]


def temporal_order(rng: np.random.Generator | int, n: int, steps: int, relevant: int = 2, nominal: int | None = None):
    """Time-major one-hot inputs (steps, n, 8) and targets (steps, n) of class ids, of which only
    the last step counts. The relevant windows come from `nominal` (default `steps`), so
    sequences longer than the nominal length (the paper's 100-110) keep the paper's positions."""
    rng = as_generator(rng)
    windows = temporal_order_windows(steps if nominal is None else nominal, relevant)
    if steps < windows[-1][1] + 2:
        raise ValueError(f"a temporal-order sequence of {steps} steps cannot hold a relevant symbol at step "
                         f"{windows[-1][1]} and the trigger after it; use steps >= {windows[-1][1] + 2}")
    symbols = rng.integers(0, 4, (n, steps))
    symbols[:, 0] = TEMPORAL_ORDER_SYMBOLS.index("E")
    symbols[:, -1] = TEMPORAL_ORDER_SYMBOLS.index("B")
    which = rng.integers(0, 2, (n, relevant))  # 0: X, 1: Y
    rows = np.arange(n)
    for k, (low, high) in enumerate(windows):
        symbols[rows, rng.integers(low, high + 1, n)] = TEMPORAL_ORDER_SYMBOLS.index("X") + which[:, k]
    inputs = np.eye(len(TEMPORAL_ORDER_SYMBOLS), dtype=np.float32)[symbols].swapaxes(0, 1)
    targets = np.zeros((steps, n), np.int64)
    targets[-1] = which @ (2 ** np.arange(relevant - 1, -1, -1))
    return inputs, targets
