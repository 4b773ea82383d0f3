"""Compiled kernels: whole time loops of the standard cells in Numba, calling NumPy's own BLAS.

The NumPy code in `rnnkit.cells` is the reference: it states each cell's equations plainly and
runs every variant. For the cells that most models use (PyTorch's LSTM, GRU and RNN), a cell
offers `fused()`, and the time loop (`rnnkit.timeloop`) hands it the whole sequence instead of
calling `step` T times. One compiled call per sequence removes what NumPy cannot: Python's cost
per step (a few microseconds for every one of ~20 NumPy calls), temporaries, and passes over
strided gate slices. The recurrent GEMM of each step is NumPy's own OpenBLAS, called from the
compiled loop (`blas.py`). The compiled code is cached on disk (`cache=True`): the first run
compiles for a few seconds, later runs load it.

The kernels run when Numba imports and NumPy's bundled BLAS is found; otherwise, or with the
environment variable RNNKIT_KERNELS=0, or inside `use_kernels(False)`, everything runs in NumPy.
The test suite runs both and checks that they agree (tests/test_kernels.py).

    lstm.py   PyTorch's LSTM: sequence forward/backward, one inference step
    gru.py    PyTorch's GRU (reset_after=True)
    elman.py  the Elman RNN, any of its nonlinearities
    adam.py   one pass of Adam / AdamW over a parameter
"""

from __future__ import annotations

import contextlib
import importlib
import os
from types import ModuleType

import numpy as np

__all__ = ["available", "use_kernels", "load", "gemm_address", "describe"]

_enabled = os.environ.get("RNNKIT_KERNELS", "1").strip().lower() not in ("0", "false", "no", "off")
_import_error: str | None = None
_modules: dict[str, ModuleType] = {}


def _blas() -> ModuleType | None:
    """kernels.blas, or None when Numba cannot be imported (recorded for `describe`)."""
    global _import_error
    if "blas" not in _modules and _import_error is None:
        try:
            _modules["blas"] = importlib.import_module(".blas", __name__)
        except ImportError as error:  # numba (or llvmlite) missing or broken
            _import_error = str(error)
    return _modules.get("blas")


def gemm_address(dtype) -> int | None:
    """Where NumPy's BLAS GEMM for `dtype` is (None: not found, or no Numba)."""
    blas = _blas()
    if blas is None or blas.find_gemv(dtype) is None:
        return None
    return blas.find_gemm(dtype)


def available(dtype) -> bool:
    """True when the compiled kernels run for arrays of `dtype`."""
    return _enabled and gemm_address(dtype) is not None


@contextlib.contextmanager
def use_kernels(enabled: bool):
    """Turn the compiled kernels on or off inside a `with` block (the tests compare the two)."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = previous


def load(name: str) -> ModuleType:
    """The kernel module `name` ("lstm", "gru", "elman", "adam"), imported on first use so that
    `import rnnkit` does not import Numba."""
    if name not in _modules:
        _modules[name] = importlib.import_module(f".{name}", __name__)
    return _modules[name]


def describe() -> str:
    """One line: which path runs, and why."""
    if not _enabled:
        return "off (RNNKIT_KERNELS=0 or use_kernels(False)): NumPy code"
    if _blas() is None:
        return f"off (Numba unavailable: {_import_error}): NumPy code"
    if gemm_address(np.float32) is None:
        return "off (NumPy's bundled OpenBLAS not found): NumPy code"
    import numba
    return f"on: Numba {numba.__version__} loops calling NumPy's OpenBLAS GEMM"
