"""Synthetic long-lag problems (Hochreiter & Schmidhuber 1997), generated from an explicit
numpy Generator.

The adding problem: T numbers drawn from U(0, 1), two of them marked (one in the first ten steps,
one in the second half); at the last step the network must output the sum of the two marked
numbers. Predicting the mean sum, 1, gives an MSE of 1/6; a sequence counts as answered when
the error is below 0.04.
"""

from __future__ import annotations

import numpy as np

from ..init import as_generator

__all__ = ["adding_problem", "ADDING_TOLERANCE"]

ADDING_TOLERANCE = 0.04


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
