"""Housekeeping of the compiled kernels: their pool of big arrays (rnnkit.kernels._workspace),
aligned and never handed out twice while anything, the array or a view of it, still refers to it;
and their on-disk compiled code, dropped when a kernel source changes."""

from __future__ import annotations

from pathlib import Path

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


def test_compiled_files_go_when_a_kernel_source_changes(tmp_path, monkeypatch):
    """A stale compiled loop (Numba checks only the file of the function it compiled, not the
    helpers inlined into it) is deleted once any kernels/*.py differs from the stamped hash."""
    import shutil

    from rnnkit import kernels

    folder = tmp_path / "kernels"
    shutil.copytree(Path(kernels.__file__).parent, folder, ignore=shutil.ignore_patterns("__pycache__"))
    cache = folder / "__pycache__"
    cache.mkdir()
    monkeypatch.setattr(kernels, "__file__", str(folder / "__init__.py"))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)

    def refresh():
        monkeypatch.setattr(kernels, "_cache_checked", False)
        kernels._refresh_compiled_cache()

    refresh()  # first run: stamps the sources
    compiled = cache / "lstm_variants.forward_loop-1.py311.nbi"
    compiled.write_bytes(b"old")
    refresh()  # unchanged sources: the compiled file stays
    assert compiled.exists()
    helper = folder / "_lstm_units.py"
    helper.write_text(helper.read_text() + "\n# edited\n")
    refresh()  # a helper changed: the compiled file goes
    assert not compiled.exists()
