"""The compiled time loops flush denormal floats to zero (rnnkit.kernels._denormals), and only
while they run: the caller's floating-point mode comes back, and the NumPy reference keeps IEEE
denormals."""

import platform

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels

pytestmark = [
    pytest.mark.skipif(not kernels.available(np.float32), reason="compiled kernels unavailable"),
    pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="FTZ/DAZ are x86-64's"),
]


def _relu_layer():
    """A ReLU Elman layer without biases: a denormal input stays denormal through W_ih x + W_hh h."""
    layer = rnnkit.RNN(4, 8, 1, nonlinearity="relu", rng=0, dtype=np.float32)
    for name, parameter in layer.named_parameters():
        if "bias" in name:
            parameter.value[:] = 0.0
        else:
            np.abs(parameter.value, out=parameter.value)  # positive products: the ReLU passes them
    return layer


def _denormal_input():
    x = np.full((3, 2, 4), 1e-39, np.float32)
    assert 0 < x[0, 0, 0] < np.finfo(np.float32).tiny  # really denormal
    return x


def test_compiled_forward_flushes_denormals_and_restores_the_callers_mode():
    from rnnkit.kernels._denormals import DAZ, FTZ, read_mxcsr

    before = int(read_mxcsr()) & (FTZ | DAZ)
    outputs, _, cache = _relu_layer().forward(_denormal_input())
    assert np.all(outputs == 0.0)
    assert int(read_mxcsr()) & (FTZ | DAZ) == before


def test_flushing_can_be_turned_off_and_the_numpy_reference_keeps_denormals():
    x = _denormal_input()
    previous = kernels.set_flush_denormals(False)
    try:
        kept, _, _ = _relu_layer().forward(x)
    finally:
        kernels.set_flush_denormals(previous)
    with kernels.use_kernels(False):
        reference, _, _ = _relu_layer().forward(x)
    assert np.count_nonzero(kept) > 0
    np.testing.assert_array_equal(kept, reference)


def test_compiled_backward_flushes_denormal_gradients():
    layer = _relu_layer()
    x = np.ones((3, 2, 4), np.float32)
    outputs, _, cache = layer.forward(x)
    dy = np.full_like(outputs, 1e-39)
    layer.zero_grad()
    layer.backward(dy, cache)
    assert all(np.all(p.grad == 0.0) for name, p in layer.named_parameters() if "weight" in name)
    previous = kernels.set_flush_denormals(False)
    try:
        layer.zero_grad()
        layer.backward(dy, cache)
    finally:
        kernels.set_flush_denormals(previous)
    assert any(np.count_nonzero(p.grad) > 0 for name, p in layer.named_parameters() if "weight" in name)
