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

    blas.py         NumPy's own OpenBLAS GEMM/GEMV, callable from compiled code
    activations.py  tanh (a vectorisable float32 approximation), sigmoid, Elman's by code
    lstm.py         PyTorch's LSTM: sequence forward/backward (feature-major), inference step
    lstm_variants.py  every other LSTM structure (peepholes, Greff's variants, FGR, activations,
                    layer norm); its per-unit equations in _lstm_units.py
    gru.py          PyTorch's GRU (reset_after=True)
    gru_textbook.py the textbook GRU (reset_after=False): two dependent GEMMs per step
    elman.py        the Elman RNN, any of its named nonlinearities
    adam.py         one pass of Adam / AdamW over a parameter
    _denormals.py   denormal floats flushed to zero while a compiled loop runs (3.1x on a
                    saturating study trial)
    _padding.py     padded batches: the time loop's hold-the-state rule inside the loops
    _layer_norm.py  the LSTM loop's per-step normalisations, column by column
    _gate_recurrence.py  FGR's gate-to-gate product and its gradient, in the LSTM loop
    _prefetch.py    software prefetch for the feature-major LSTM loops' scattered slabs
    _recurrent_dropout.py  the recurrent dropout mask on the state W_hh reads, and its gradient
    _sequence.py    projection and weight gradients around the loop (the NumPy code's)
    _workspace.py   big arrays reused across steps (no mmap/page-fault churn)
    _loop_kernel.py how the time loops are compiled: without reference counting, so without
                    allocations; the loops' array copies

Numba's on-disk cache is checked against the source file of the function it compiled, not the
files of the helpers inlined into it: a loop in `lstm_variants.py` would keep running an old
`_lstm_units.py` after an edit or a `git pull` that touched only the helper. So before the first
kernel loads, `_refresh_compiled_cache` hashes every kernels/*.py and, when the hash differs from
the one stamped in kernels/__pycache__, deletes the compiled files there (the next run compiles
afresh). With NUMBA_CACHE_DIR set, that folder is the user's to clear.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
from pathlib import Path
from types import ModuleType

import numpy as np

__all__ = ["available", "use_kernels", "load", "gemm_address", "add_matmul", "describe", "set_flush_denormals",
           "flushing_denormals"]

_enabled = os.environ.get("RNNKIT_KERNELS", "1").strip().lower() not in ("0", "false", "no", "off")
_flush_denormals = True  # `_denormals`: FTZ/DAZ while a compiled time loop runs
_import_error: str | None = None
_modules: dict[str, ModuleType] = {}
_cache_checked = False


def _refresh_compiled_cache() -> None:
    """Delete Numba's compiled files of these modules when any kernels/*.py changed since they
    were made (module docstring); a stamp file holds the sources' hash."""
    global _cache_checked
    if _cache_checked or os.environ.get("NUMBA_CACHE_DIR"):
        return
    _cache_checked = True
    folder = Path(__file__).parent
    cache, digest = folder / "__pycache__", hashlib.sha256()
    for source in sorted(folder.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    stamp = cache / "rnnkit-kernels.stamp"
    try:
        if stamp.read_text(encoding="ascii") == digest.hexdigest():
            return
    except OSError:
        pass
    try:
        for compiled in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            compiled.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest(), encoding="ascii")
    except OSError:  # a read-only install: Numba then compiles in memory anyway
        pass


def _blas() -> ModuleType | None:
    """kernels.blas, or None when Numba cannot be imported (recorded for `describe`)."""
    global _import_error
    if "blas" not in _modules and _import_error is None:
        _refresh_compiled_cache()
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


def set_flush_denormals(enabled: bool) -> bool:
    """Whether the compiled time loops run with denormal floats flushed to zero (default True;
    `_denormals` says why and what it changes). Returns the previous setting."""
    global _flush_denormals
    previous, _flush_denormals = _flush_denormals, bool(enabled)
    return previous


def flushing_denormals():
    """A context in which the calling thread flushes denormals (`_denormals.flushing`), or does
    nothing when `set_flush_denormals(False)`; the time loop runs each compiled call in one."""
    if not _flush_denormals:
        return contextlib.nullcontext()
    return load("_denormals").flushing()


def load(name: str) -> ModuleType:
    """The kernel module `name` ("lstm", "gru", "elman", "adam", ...), imported on first use so that
    `import rnnkit` does not import Numba."""
    if name not in _modules:
        _refresh_compiled_cache()
        _modules[name] = importlib.import_module(f".{name}", __name__)
    return _modules[name]


def add_matmul(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """out += a @ b, in place. With the kernels on, one BLAS call with beta = 1 and no
    temporary (a and b may be transposed views of row-major arrays); else NumPy."""
    if available(out.dtype) and out.flags.c_contiguous and a.dtype == b.dtype == out.dtype:
        (a_rows, trans_a), (b_rows, trans_b) = _row_major(a), _row_major(b)
        if a_rows is not None and b_rows is not None:
            _blas().gemm(gemm_address(out.dtype), a_rows, b_rows, out, trans_a, trans_b, 1.0)
            return
    out += a @ b


def _row_major(x: np.ndarray):
    """(x, False) when x's rows are contiguous, (x.T, True) when its columns are; else None."""
    def rows_contiguous(y):
        return y.strides[1] == y.itemsize and (y.shape[0] == 1 or y.strides[0] >= y.shape[1] * y.itemsize)
    if x.ndim == 2 and rows_contiguous(x):
        return x, False
    if x.ndim == 2 and rows_contiguous(x.T):
        return x.T, True
    return None, False


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
