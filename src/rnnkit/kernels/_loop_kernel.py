"""The decorator of the compiled time loops: Numba without reference counting.

Numba counts references to every array a compiled function holds, views included (an atomic
increment and decrement per view), and its pass that removes the pairs it can prove redundant
gives up on branches. The per-unit code of `lstm_variants.py` makes a handful of row views per
hidden unit and step and chooses among them by the cell's structure at run time: in that code,
the counting that survived cost about as much as the arithmetic. Measured on the 2-core Intel
Xeon (one forward loop, B = 32, T = 64, H = 128, float32, medians): PyTorch's LSTM structure
run by the generic loop took 9.1 ms against 5.4 ms for `lstm.py`'s loop, and 5.6 ms once
compiled without reference counting; with peepholes 7.2 -> 4.0 ms.

Without it a compiled function cannot allocate: every array a loop needs is made by its Python
caller (in `_workspace` where it is big) and passed in, and array-to-array slice assignments
(which copy through a temporary) are written as loops. `_nrt` is Numba's own switch for this,
an option of its CPU target; a Numba without it compiles the same allocation-free loops with
counting, slower and as correct.
"""

from __future__ import annotations

from numba import njit
from numba.core.options import DefaultOptions

__all__ = ["loop_kernel", "copy", "copy_transposed", "add_into"]

_NO_REFERENCE_COUNTING = {"_nrt": False} if hasattr(DefaultOptions, "_nrt") else {}

loop_kernel = njit(cache=True, error_model="numpy", **_NO_REFERENCE_COUNTING)


@njit(inline="always")
def copy(source, target):
    """target[...] = source, both (R, C), as a loop (an array assignment copies through a temporary)."""
    for r in range(source.shape[0]):
        for k in range(source.shape[1]):
            target[r, k] = source[r, k]


@njit(inline="always")
def copy_transposed(source, target):
    """target (C, R) = source (R, C).T."""
    for k in range(target.shape[0]):
        for r in range(target.shape[1]):
            target[k, r] = source[r, k]


@njit(inline="always")
def add_into(target, source):
    """target += source, both (R, C) (an in-place array operation makes a temporary)."""
    for r in range(source.shape[0]):
        for k in range(source.shape[1]):
            target[r, k] += source[r, k]
