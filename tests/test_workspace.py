"""The compiled kernels' pool of big arrays (rnnkit.kernels._workspace): aligned, and never
handed out twice while anything, the array or a view of it, still refers to it."""

from __future__ import annotations

import numpy as np

from rnnkit.kernels import _workspace


def test_arrays_start_on_a_cache_line_and_have_the_shape_asked_for():
    for shape, dtype in (((3, 5), np.float32), ((7,), np.float64), ((2, 3, 4), np.float32)):
        array = _workspace.empty(shape, dtype)
        assert array.shape == shape and array.dtype == dtype
        assert array.ctypes.data % _workspace.ALIGNMENT == 0
        assert array.flags.c_contiguous and array.flags.writeable


def test_an_array_in_use_is_not_handed_out_again():
    _workspace.clear()
    first = _workspace.empty((64, 32), np.float32)
    second = _workspace.empty((64, 32), np.float32)
    assert not np.shares_memory(first, second)


def test_a_view_keeps_its_array_from_being_reused():
    _workspace.clear()
    view = _workspace.empty((64, 32), np.float32).T[::2]  # only a view survives
    view[...] = 1.0
    other = _workspace.empty((64, 32), np.float32)
    assert not np.shares_memory(view, other)
    other[...] = 2.0
    assert np.all(view == 1.0)


def test_an_array_nothing_refers_to_is_reused():
    _workspace.clear()
    address = _workspace.empty((64, 32), np.float32).ctypes.data
    assert _workspace.empty((64, 32), np.float32).ctypes.data == address
