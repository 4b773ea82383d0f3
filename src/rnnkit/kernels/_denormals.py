"""Denormal (subnormal) floats flushed to zero while a compiled kernel runs.

A float32 below 1.2e-38 in magnitude is denormal, and x86 CPUs compute with one through a
microcode assist that costs on the order of a hundred cycles. Training makes such numbers
whenever gates saturate: sigma'(z) = sigma(1 - sigma) underflows, dz fills with values like
1e-40, and every GEMM and elementwise pass that reads them slows down. Measured on the 2-core
Intel Xeon (AVX-512), 2026-12-02:

- a 512 x 512 by 512 x 1024 float32 GEMM, one OpenBLAS thread: 609 ms on denormal input,
  3.6 ms with flushing;
- the adding-problem trial `adding/V/2` of `examples/studies/odyssey.toml` (peephole LSTM,
  H = 188, 1,500 steps, one BLAS thread), whose gates saturate: 170 s, and 54 s with flushing,
  with the same validation score to all 16 printed digits (in the whole study, every one of the
  198 trials' scores stayed the same).

The CPU's MXCSR register has two switches for this: FTZ (results that would be denormal are 0)
and DAZ (denormal inputs are read as 0). `flushing()` sets both for the calling thread while the
time loop's compiled forward or backward runs (the NumPy around it in that call included) and
puts the caller's value back afterwards, as TensorFlow does in its CPU kernels. Only numbers
that IEEE arithmetic would keep below 1.2e-38 (float32) or 2.2e-308 (float64) change. The NumPy
reference (`use_kernels(False)`) keeps IEEE denormals. `rnnkit.kernels.set_flush_denormals(False)`
turns it off; on CPUs other than x86-64 it does nothing.

The switches belong to one thread. A GEMM that OpenBLAS splits over its own worker threads
still meets denormals in the workers' share (its threads are made when NumPy loads it): one
measured 2-thread GEMM on denormal input got only 2x faster, from its calling thread's half.
Inside the time loops, where most of the work is one-thread, and in anything run under
`rnnkit.threads.one_blas_thread` (the study's trials) it works in full.
"""

from __future__ import annotations

import contextlib
import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

FTZ, DAZ = 1 << 15, 1 << 6  # MXCSR bits: flush results to zero, read inputs as zero
X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def _mxcsr_intrinsic(name: str):
    """codegen calling LLVM's llvm.x86.sse.{stmxcsr,ldmxcsr}(i8* slot) on a 32-bit stack slot."""
    byte_ptr = ir.IntType(8).as_pointer()

    def call(builder, slot):
        function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr]),
                                                  f"llvm.x86.sse.{name}")
        builder.call(function, [builder.bitcast(slot, byte_ptr)])

    return call


_store, _load = _mxcsr_intrinsic("stmxcsr"), _mxcsr_intrinsic("ldmxcsr")


@intrinsic
def _read(typingctx):
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _store(builder, slot)
        return builder.load(slot)

    return types.uint32(), codegen


@intrinsic
def _write(typingctx, value):
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        builder.store(args[0], slot)
        _load(builder, slot)
        return context.get_dummy_value()

    return types.void(types.uint32), codegen


@njit(cache=True)
def read_mxcsr():
    """The calling thread's MXCSR (x86-64 only)."""
    return _read()


@njit(cache=True)
def write_mxcsr(value):
    """Set the calling thread's MXCSR (x86-64 only)."""
    _write(np.uint32(value))


@contextlib.contextmanager
def flushing():
    """FTZ and DAZ set for the calling thread inside the block, its own MXCSR restored after."""
    if not X86_64:
        yield
        return
    saved = int(read_mxcsr())
    write_mxcsr(saved | FTZ | DAZ)
    try:
        yield
    finally:
        write_mxcsr(saved)
