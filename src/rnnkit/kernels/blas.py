"""NumPy's own BLAS GEMM, callable from Numba-compiled code.

The compiled time loops make one small GEMM per time step. Going back to Python for each one
(`np.matmul`) costs a few microseconds per call, as much as the GEMM itself at H = 128, so the
loops call the GEMM of the OpenBLAS that NumPy's wheels bundle (`scipy_cblas_sgemm64_`, 64-bit
integers) directly. It is the same library, loaded once, so there is still one BLAS thread pool
in the process (a second BLAS, such as the one Numba's `np.dot` would use through SciPy, fights
NumPy's for the cores: ../../../shared/PERF.md).

The function's address is an argument of every compiled function rather than a global: a global
would be baked into Numba's on-disk cache, and the address changes from process to process.

    gemm(address, a, b, c, trans_a, trans_b, beta)     c = op(a) @ op(b) + beta * c
    gemv(address, a, x, y, beta)                       y = a @ x + beta * y   (one sequence)
    product((gemm, gemv), a, b, c, beta)               c = a @ b + beta * c, a GEMV for one sequence

with a, b, c 2-D row-major arrays whose rows may be strided (views of bigger arrays) but whose
elements are contiguous. `find_gemm(dtype)` returns the address, or None when this NumPy has no
such library (another build, another BLAS): rnnkit then runs its NumPy code.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["find_gemm", "find_gemv", "find_blas", "gemm", "gemv", "product", "project"]

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
# Symbol names by dtype, newest wheels first (NumPy >= 2: scipy-openblas; 1.22-1.26: openblas64_).
SYMBOLS = {("gemm", np.dtype(np.float32)): ("scipy_cblas_sgemm64_", "cblas_sgemm64_"),
           ("gemm", np.dtype(np.float64)): ("scipy_cblas_dgemm64_", "cblas_dgemm64_"),
           ("gemv", np.dtype(np.float32)): ("scipy_cblas_sgemv64_", "cblas_sgemv64_"),
           ("gemv", np.dtype(np.float64)): ("scipy_cblas_dgemv64_", "cblas_dgemv64_")}


def _numpy_blas_libraries() -> list[str]:
    """The shared libraries bundled with NumPy's wheel (Linux, macOS and Windows layouts)."""
    root = os.path.dirname(np.__file__)
    patterns = [os.path.join(root, "..", "numpy.libs", "*openblas*"), os.path.join(root, ".dylibs", "*openblas*")]
    return sorted(path for pattern in patterns for path in glob.glob(pattern))


_addresses: dict[tuple[str, np.dtype], int | None] = {}


def find_gemm(dtype) -> int | None:
    """The address of NumPy's bundled CBLAS GEMM for `dtype` (float32/float64), or None."""
    return _find("gemm", np.dtype(dtype))


def find_gemv(dtype) -> int | None:
    """The address of NumPy's bundled CBLAS GEMV for `dtype`, or None."""
    return _find("gemv", np.dtype(dtype))


def find_blas(dtype) -> tuple[int, int]:
    """(GEMM, GEMV) addresses for `product`; call only where `rnnkit.kernels.available` holds."""
    return find_gemm(dtype), find_gemv(dtype)


def _find(routine: str, dtype: np.dtype) -> int | None:
    key = (routine, dtype)
    if key not in _addresses:
        _addresses[key] = _lookup(key)
    return _addresses[key]


def _lookup(key) -> int | None:
    if key not in SYMBOLS:
        return None
    for path in _numpy_blas_libraries():
        try:
            library = ctypes.CDLL(path)  # already loaded by NumPy: the same copy, not a second one
        except OSError:
            continue
        for symbol in SYMBOLS[key]:
            function = getattr(library, symbol, None)
            if function is not None:
                return ctypes.cast(function, ctypes.c_void_p).value
    return None


@intrinsic
def _call_gemm(typingctx, address, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """cblas_?gemm64_(RowMajor, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc),
    called through the function pointer `address`; pointers are passed as integers."""
    sig = types.void(address, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        i32, i64, byte_ptr = ir.IntType(32), ir.IntType(64), ir.IntType(8).as_pointer()
        real = context.get_value_type(signature.args[6])
        function_type = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, real, byte_ptr, i64,
                                                        byte_ptr, i64, real, byte_ptr, i64])
        (address_, trans_a_, trans_b_, m_, n_, k_, alpha_, a_, lda_, b_, ldb_, beta_, c_, ldc_) = args
        function = builder.inttoptr(address_, function_type.as_pointer())
        as_i32 = lambda value: builder.trunc(value, i32)  # noqa: E731
        as_ptr = lambda value: builder.inttoptr(value, byte_ptr)  # noqa: E731
        builder.call(function, [ir.Constant(i32, ROW_MAJOR), as_i32(trans_a_), as_i32(trans_b_), m_, n_, k_,
                                alpha_, as_ptr(a_), lda_, as_ptr(b_), ldb_, beta_, as_ptr(c_), ldc_])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def _leading(x):
    """The row stride of a 2-D array in elements (a 1-row view may report any stride)."""
    return np.int64(max(x.strides[0] // x.itemsize, x.shape[1], 1))


@njit(cache=True)
def gemm(address, a, b, c, trans_a, trans_b, beta):
    """c = op(a) @ op(b) + beta * c, op(x) = x.T if trans_x else x, through NumPy's BLAS. The
    arrays share one dtype, their last axis is contiguous."""
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    one = c.dtype.type(1.0)
    _call_gemm(np.int64(address), np.int64(TRANS if trans_a else NO_TRANS), np.int64(TRANS if trans_b else NO_TRANS),
               np.int64(m), np.int64(n), np.int64(k), one, np.int64(a.ctypes.data), _leading(a),
               np.int64(b.ctypes.data), _leading(b), c.dtype.type(beta), np.int64(c.ctypes.data), _leading(c))


@intrinsic
def _call_gemv(typingctx, address, trans, m, n, alpha, a, lda, x, incx, beta, y, incy):
    """cblas_?gemv64_(RowMajor, trans, m, n, alpha, a, lda, x, incx, beta, y, incy)."""
    sig = types.void(address, trans, m, n, alpha, a, lda, x, incx, beta, y, incy)

    def codegen(context, builder, signature, args):
        i32, i64, byte_ptr = ir.IntType(32), ir.IntType(64), ir.IntType(8).as_pointer()
        real = context.get_value_type(signature.args[4])
        function_type = ir.FunctionType(ir.VoidType(), [i32, i32, i64, i64, real, byte_ptr, i64, byte_ptr, i64,
                                                        real, byte_ptr, i64])
        (address_, trans_, m_, n_, alpha_, a_, lda_, x_, incx_, beta_, y_, incy_) = args
        function = builder.inttoptr(address_, function_type.as_pointer())
        as_ptr = lambda value: builder.inttoptr(value, byte_ptr)  # noqa: E731
        builder.call(function, [ir.Constant(i32, ROW_MAJOR), builder.trunc(trans_, i32), m_, n_, alpha_, as_ptr(a_),
                                lda_, as_ptr(x_), incx_, beta_, as_ptr(y_), incy_])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def gemv(address, a, x, y, beta):
    """y = a @ x + beta * y for a 2-D a (rows contiguous) and contiguous 1-D x, y. For one
    sequence (B = 1) OpenBLAS's GEMV beats its GEMM, which packs the whole matrix first."""
    m, n = a.shape
    one = np.int64(1)
    _call_gemv(np.int64(address), np.int64(NO_TRANS), np.int64(m), np.int64(n), y.dtype.type(1.0),
               np.int64(a.ctypes.data), _leading(a), np.int64(x.ctypes.data), one, y.dtype.type(beta),
               np.int64(y.ctypes.data), one)


@njit(cache=True)
def product(addresses, a, b, c, beta):
    """c = a @ b + beta * c for a time step's product; addresses = (GEMM, GEMV). One sequence
    makes c one column (feature-major loops) or one row (batch-major ones): then it is a GEMV,
    reading the vector in place whatever its stride, as `gemv` explains; else a GEMM."""
    item = c.itemsize
    if c.shape[1] == 1 and c.shape[0] > 1:  # c[:, 0] = a @ b[:, 0]
        m, n = a.shape
        _call_gemv(np.int64(addresses[1]), np.int64(NO_TRANS), np.int64(m), np.int64(n), c.dtype.type(1.0),
                   np.int64(a.ctypes.data), _leading(a), np.int64(b.ctypes.data), np.int64(b.strides[0] // item),
                   c.dtype.type(beta), np.int64(c.ctypes.data), np.int64(c.strides[0] // item))
    elif c.shape[0] == 1:  # c[0] = b.T @ a[0]
        m, n = b.shape
        _call_gemv(np.int64(addresses[1]), np.int64(TRANS), np.int64(m), np.int64(n), c.dtype.type(1.0),
                   np.int64(b.ctypes.data), _leading(b), np.int64(a.ctypes.data), np.int64(a.strides[1] // item),
                   c.dtype.type(beta), np.int64(c.ctypes.data), np.int64(c.strides[1] // item))
    else:
        gemm(addresses[0], a, b, c, False, False, beta)


@njit(cache=True)
def project(gemm_address, gemv_address, x, w, out, beta):
    """out = x @ w.T + beta * out for x (B, I), w (R, I), out (B, R): GEMV when B = 1."""
    if x.shape[0] == 1:
        gemv(gemv_address, w, x[0], out[0], beta)
    else:
        gemm(gemm_address, x, w, out, False, True, beta)
