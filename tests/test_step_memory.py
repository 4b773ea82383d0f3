"""What a backward pass allocates and what it leaves behind (issue 16's memory goal).

Measured with tracemalloc, which NumPy reports every array to. The unit is one (T, B, H)
float32 array. A backward pass returns dL/dx (one unit) and must leave nothing else behind: a
gradient array kept in the cache stays alive as long as the caller holds the cache, which
raised a 2-layer GRU's training step to 21 units of peak memory where PyTorch needs about 20.
"""

import tracemalloc

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels

STEPS, BATCH, HIDDEN = 24, 8, 64
UNIT = STEPS * BATCH * HIDDEN * 4


def _backward_memory(layer) -> tuple[float, float]:
    """(peak allocated during backward, memory still held after it, the result included), in units."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((STEPS, BATCH, HIDDEN)).astype(np.float32)
    dy = rng.standard_normal((STEPS, BATCH, HIDDEN)).astype(np.float32)
    for _ in range(2):  # compile, and fill the kernels' workspace pool, before measuring
        _, _, cache = layer.forward(x)
        layer.backward(dy, cache)
    _, _, cache = layer.forward(x)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = layer.backward(dy, cache)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result[0].shape == x.shape
    return (peak - before) / UNIT, (held - before) / UNIT


@pytest.mark.parametrize("make, options, compiled", [
    (rnnkit.GRU, {}, True), (rnnkit.GRU, {}, False), (rnnkit.RNN, {}, True), (rnnkit.RNN, {}, False),
    (rnnkit.LSTM, {}, False), (rnnkit.LSTM, {"layer_norm": True}, False), (rnnkit.GRU, {"layer_norm": True}, False),
], ids=["GRU-compiled", "GRU-numpy", "RNN-compiled", "RNN-numpy", "LSTM-numpy", "LSTM-layer-norm-numpy",
        "GRU-layer-norm-numpy"])
def test_backward_keeps_only_its_result(make, options, compiled):
    """(The compiled LSTM takes its arrays from the kernels' workspace pool, filled before any
    measurement: its leftovers would not show here.)"""
    if compiled and not kernels.available(np.float32):
        pytest.skip("no compiled kernels with this NumPy")
    layer = make(HIDDEN, HIDDEN, 1, rng=0, **options)
    with kernels.use_kernels(compiled):
        _, held = _backward_memory(layer)
    assert held < 1.25, f"backward left {held:.2f} units allocated; only dL/dx (1 unit) should remain"


@pytest.mark.skipif(not kernels.available(np.float32), reason="no compiled kernels with this NumPy")
def test_compiled_gru_backward_has_no_full_recurrent_gradient():
    """dL/d(W_hh h) shares its r and z blocks with dL/da, so the compiled backward needs dL/da
    (3 units), the n block (1) and dL/dx (1), not a second (T, B, 3H) array (3 more)."""
    peak, _ = _backward_memory(rnnkit.GRU(HIDDEN, HIDDEN, 1, rng=0))
    assert peak < 5.5, f"the compiled GRU backward peaked at {peak:.2f} units (expected about 5)"


@pytest.mark.skipif(not kernels.available(np.float32), reason="no compiled kernels with this NumPy")
def test_compiled_lstm_forward_keeps_no_tanh_of_the_cell_state(monkeypatch):
    """The standard kernel's cache holds act (4 units), c and h (T+1 steps each), not
    s_t = tanh(c_t): its backward computes that again from c_t, and NumPy's code gets it from c."""
    from rnnkit.kernels import _workspace

    layer = rnnkit.LSTM(HIDDEN, HIDDEN, 1, rng=0)
    x = np.random.default_rng(0).standard_normal((STEPS, BATCH, HIDDEN)).astype(np.float32)
    layer.forward(x)  # compile first
    monkeypatch.setattr(_workspace, "_pool", {})  # every buffer made afresh, where tracemalloc sees it
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        _, _, cache = layer.forward(x)
        held = (tracemalloc.get_traced_memory()[0] - before) / UNIT
    finally:
        tracemalloc.stop()
    assert held < 6.5, f"the forward's cache holds {held:.2f} units (act 4, c and h about 1 each)"
    named = cache.internals()["l0"]  # the s NumPy's backward would read is the one h was made from
    np.testing.assert_allclose(named["h"], named["o"] * cache.cells[0][0].s, rtol=0, atol=1e-6)
