"""Big arrays kept for reuse across calls, handed out again once nothing refers to them.

A training step allocates tens of megabytes of (T, B, ...) arrays. glibc serves blocks that big
with fresh mmap()s and returns them with munmap(), so every step pays a page fault and a zeroed
page per 4 KiB it touches: about 15 % of an LSTM step at B = 32, T = 64, H = 512 (measured).
`empty` keeps each array it makes and hands it out again when its reference count shows that
nothing else holds it (no cache, no view of it, no caller), which NumPy can tell exactly. Only
the compiled kernels use it; a pool keeps a few arrays per shape, so memory between steps stays
what one step needs.
"""

from __future__ import annotations

import sys

import numpy as np

_MAX_PER_SHAPE = 4
_pool: dict[tuple, list[np.ndarray]] = {}


def _reference_counts(arrays: list[np.ndarray]) -> list[int]:
    return [sys.getrefcount(array) for array in arrays]


# The count of an array that only the pool holds, measured through the same code that checks
# (what a count includes differs between Python versions).
_UNREFERENCED = _reference_counts([np.empty(0)])[0]


def empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """np.empty(shape, dtype), reusing a pooled array that nothing else refers to."""
    key = (tuple(shape), np.dtype(dtype))
    arrays = _pool.setdefault(key, [])
    for array, count in zip(arrays, _reference_counts(arrays)):
        if count == _UNREFERENCED:
            return array
    array = np.empty(shape, dtype)
    if len(arrays) < _MAX_PER_SHAPE:
        arrays.append(array)
    return array


def clear() -> None:
    """Drop every pooled array."""
    _pool.clear()
