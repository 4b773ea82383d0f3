"""Scalar activations for the compiled kernels, chosen by dtype when a kernel is compiled.

float32: tanh is a rational approximation (Eigen's `generic_fast_tanh_float`, a 13/6-degree
minimax fit on [-7.9, 7.9], clamped outside), accurate to a few float32 ULP. It is only
multiplications, additions, one division and a clamp, so LLVM vectorises the loops that call it;
`math.tanh` compiles to one scalar libm call per element, about 50x slower
(../../../shared/PERF.md).

float64 (what the gradient checks use): `math.tanh`, exact to the last bit, speed irrelevant.

sigmoid(x) = 0.5 tanh(x/2) + 0.5 on both, the same formula as `rnnkit.ops.sigmoid`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload

__all__ = ["tanh", "sigmoid", "activate", "activation_grad", "scalar", "ACTIVATION_CODES"]

_CLAMP = 7.90531110763549805
_ALPHA = (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
          -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16)  # odd powers 1 .. 13
_BETA = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)  # 0 .. 6
# Elman nonlinearities by number (compiled code has no strings to dispatch on cheaply).
ACTIVATION_CODES = {"tanh": 0, "relu": 1, "sigmoid": 2, "leaky_relu": 3, "elu": 4}


def _real(numba_type):
    """The NumPy scalar type matching a Numba float type; its constants keep float32 code in
    float32 (a Python float constant is a float64 and would promote everything it touches)."""
    return np.float32 if numba_type == types.float32 else np.float64


def _compiled_only(*args):
    raise NotImplementedError("only callable from Numba-compiled code")


def tanh(x):
    """tanh(x), specialised per dtype (see the module docstring)."""
    _compiled_only()


def sigmoid(x):
    """0.5 tanh(x / 2) + 0.5."""
    _compiled_only()


def activate(code, x, slope):
    """f(x) for an ACTIVATION_CODES entry; `slope` is leaky_relu's."""
    _compiled_only()


def activation_grad(code, y, slope):
    """f'(x) read from the output y = f(x), as in `rnnkit.ops`."""
    _compiled_only()


def scalar(array, value):
    """`value` as a scalar of the array's dtype."""
    _compiled_only()


@overload(scalar, inline="always")
def _scalar(array, value):
    real = _real(array.dtype)
    return lambda array, value: real(value)


@overload(tanh, inline="always")
def _tanh(x):
    if x != types.float32:
        return lambda x: math.tanh(x)
    real = np.float32
    clamp = real(_CLAMP)
    a1, a3, a5, a7, a9, a11, a13 = (real(v) for v in _ALPHA)
    b0, b2, b4, b6 = (real(v) for v in _BETA)

    def rational(x):
        x = min(max(x, -clamp), clamp)
        x2 = x * x
        p = x2 * a13 + a11
        p = x2 * p + a9
        p = x2 * p + a7
        p = x2 * p + a5
        p = x2 * p + a3
        p = x2 * p + a1
        q = x2 * b6 + b4
        q = x2 * q + b2
        q = x2 * q + b0
        return x * p / q
    return rational


@overload(sigmoid, inline="always")
def _sigmoid(x):
    half = _real(x)(0.5)
    return lambda x: tanh(x * half) * half + half


@overload(activate, inline="always")
def _activate(code, x, slope):
    zero = _real(x)(0.0)

    def implementation(code, x, slope):
        if code == 0:
            return tanh(x)
        if code == 1:
            return x if x > zero else zero
        if code == 2:
            return sigmoid(x)
        if code == 3:
            return x if x > zero else x * slope
        return x if x > zero else math.expm1(x)
    return implementation


@overload(activation_grad, inline="always")
def _activation_grad(code, y, slope):
    zero, one = _real(y)(0.0), _real(y)(1.0)

    def implementation(code, y, slope):
        if code == 0:
            return one - y * y
        if code == 1:
            return one if y > zero else zero
        if code == 2:
            return y * (one - y)
        if code == 3:
            return one if y > zero else slope
        return one if y > zero else y + one
    return implementation
