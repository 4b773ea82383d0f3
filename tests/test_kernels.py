"""The compiled kernels (rnnkit.kernels) against the NumPy reference code they replace.

Every cell with a compiled form runs forward and backward twice, kernels on and off, on the same
weights, inputs, initial state and upstream gradients; outputs, final states and every gradient
must agree. The gradient checks and PyTorch-parity tests elsewhere run whichever path is the
default (the kernels, where Numba is installed), so both paths are held to the same oracle.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam, AdamW

pytestmark = pytest.mark.skipif(not kernels.available(np.float32), reason=kernels.describe())

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-12}
LAYERS = {
    "lstm": (rnnkit.LSTM, {}),
    "gru": (rnnkit.GRU, {}),
    "gru_textbook": (rnnkit.GRU, {"reset_after": False}),
    "rnn_tanh": (rnnkit.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (rnnkit.RNN, {"nonlinearity": "relu"}),
    "rnn_sigmoid": (rnnkit.RNN, {"nonlinearity": "sigmoid"}),
    "rnn_leaky_relu": (rnnkit.RNN, {"nonlinearity": "leaky_relu", "negative_slope": 0.2}),
    "rnn_elu": (rnnkit.RNN, {"nonlinearity": "elu"}),
}
# The LSTM structures of the one parameterised loop (kernels/lstm_variants.py), peepholes
# included: every Greff variant, and activations chosen by name.
LSTM_VARIANTS = {
    **{f"lstm_{name}": (rnnkit.LSTM, {"variant": name})
       for name in ("V", "NIG", "NFG", "NOG", "NIAF", "NOAF", "CIFG", "FGR")},
    "lstm_FGR_layer_norm": (rnnkit.LSTM, {"variant": "FGR", "layer_norm": True}),
    "lstm_peephole": (rnnkit.LSTM, {"peephole": True}),
    "lstm_NIG_no_peephole": (rnnkit.LSTM, {"variant": "NIG", "peephole": False}),
    "lstm_cell_relu": (rnnkit.LSTM, {"cell_activation": "relu"}),
    "lstm_NOG_elu_tanh": (rnnkit.LSTM, {"variant": "NOG", "cell_activation": "elu", "gate_activation": "tanh"}),
    "lstm_layer_norm": (rnnkit.LSTM, {"layer_norm": True}),
    "lstm_V_layer_norm": (rnnkit.LSTM, {"variant": "V", "layer_norm": True}),
    "lstm_CIFG_relu_layer_norm": (rnnkit.LSTM, {"variant": "CIFG", "cell_activation": "relu", "layer_norm": True}),
}
LAYERS.update(LSTM_VARIANTS)


def components(state):
    return list(state) if isinstance(state, tuple) else [state]


def run_layer(kind, dtype, use_kernels, *, layers=2, bidirectional=True, bias=True, with_dy=True,
              steps=5, batch=3, lengths=None, dropout=None):
    cls, options = LAYERS[kind]
    options = {**options, **(dropout or {})}
    layer = cls(4, 6, layers, bias=bias, bidirectional=bidirectional, dtype=dtype, rng=7, **options)
    rng = np.random.default_rng(11)
    for param in layer.parameters():  # non-zero biases everywhere (STYLE.md)
        param.value[...] = rng.uniform(-0.6, 0.6, param.value.shape)
    x = rng.standard_normal((steps, batch, 4)).astype(dtype)
    state0 = layer._pack([rng.standard_normal(c.shape).astype(dtype) for c in components(layer.initial_state(batch))])
    mask = None if lengths is None else np.arange(steps)[:, None] < np.asarray(lengths)[None, :]
    with kernels.use_kernels(use_kernels):
        y, final, cache = layer.forward(x, state0, mask=mask)
        dy = rng.standard_normal(y.shape).astype(dtype) if with_dy else None
        d_final = layer._pack([rng.standard_normal(c.shape).astype(dtype) for c in components(final)])
        layer.zero_grad()
        dx, d_state0 = layer.backward(dy, cache, d_final)
    arrays = {"y": y, "dx": dx}
    arrays.update({f"final {k}": v for k, v in enumerate(components(final))})
    arrays.update({f"d_state0 {k}": v for k, v in enumerate(components(d_state0))})
    arrays.update({f"grad {name}": p.grad.copy() for name, p in layer.named_parameters()})
    return arrays


def assert_agree(fused, reference, tolerance):
    assert fused.keys() == reference.keys()
    for name in reference:
        scale = max(1.0, float(np.abs(reference[name]).max()))
        error = float(np.abs(fused[name] - reference[name]).max()) / scale
        assert error < tolerance, f"{name}: kernels and NumPy differ by {error:.2e}"


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_numpy(kind, dtype):
    assert_agree(run_layer(kind, dtype, True), run_layer(kind, dtype, False), TOLERANCE[dtype])


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_textbook", "rnn_tanh", "lstm_V", "lstm_CIFG", "lstm_layer_norm",
                                  "lstm_FGR"])
@pytest.mark.parametrize("variation", [{"bias": False}, {"with_dy": False}, {"layers": 1, "bidirectional": False},
                                       {"steps": 1, "batch": 2}, {"batch": 1}, {"batch": 1, "with_dy": False},
                                       {"batch": 1, "dropout": {"recurrent_dropout": 0.5}}])
def test_kernels_match_numpy_variations(kind, variation):
    assert_agree(run_layer(kind, np.float32, True, **variation), run_layer(kind, np.float32, False, **variation),
                 TOLERANCE[np.float32])


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_numpy_on_padded_batches(kind, dtype):
    """The hold-the-state rule inside the compiled loops: sequences of 5, 2, 0 and 4 real steps
    (one all padding), both directions, with and without output gradients; one sequence of 3."""
    for with_dy, lengths in ((True, [5, 2, 0, 4]), (False, [5, 2, 0, 4]), (True, [3])):
        options = {"steps": 5, "batch": len(lengths), "lengths": lengths, "with_dy": with_dy}
        assert_agree(run_layer(kind, dtype, True, **options), run_layer(kind, dtype, False, **options),
                     TOLERANCE[dtype])


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_numpy_under_recurrent_dropout(kind, dtype):
    """Recurrent dropout (and input and between-layer dropout, which the time loop applies) in
    the compiled loops: the same masks from the same generator, alone and with padding."""
    dropout = {"recurrent_dropout": 0.4, "input_dropout": 0.2, "dropout": 0.3}
    for lengths in (None, [5, 2, 0, 4]):
        options = {"steps": 5, "batch": 4, "lengths": lengths, "dropout": dropout}
        assert_agree(run_layer(kind, dtype, True, **options), run_layer(kind, dtype, False, **options),
                     TOLERANCE[dtype])


@pytest.mark.parametrize("options", [{}, {"recurrent_dropout": 0.5}])
@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
def test_padding_and_dropout_take_the_compiled_loop(monkeypatch, cls, options):
    """A masked batch, with or without recurrent dropout, runs the kernel, not the NumPy steps
    (which would also agree)."""
    layer = cls(3, 4, rng=0, **options)
    cell = layer._cells[0][0]
    monkeypatch.setattr(type(cell), "step", lambda *args: pytest.fail("the NumPy step ran"))
    monkeypatch.setattr(type(cell), "step_backward", lambda *args: pytest.fail("the NumPy step ran"))
    x = np.random.default_rng(1).standard_normal((4, 2, 3)).astype(np.float32)
    y, _, cache = layer.forward(x, mask=np.array([[1, 1], [1, 1], [1, 0], [0, 0]], bool))
    layer.backward(np.ones_like(y), cache)


def test_kernel_choice_follows_the_cell():
    """Only the configurations the kernels implement take them; the rest run in NumPy."""
    assert rnnkit.LSTM(3, 4)._cells[0][0].fused() is kernels.load("lstm")
    assert rnnkit.LSTM(3, 4, variant="NP")._cells[0][0].fused() is kernels.load("lstm")
    for options in ({"peephole": True}, {"variant": "CIFG"}, {"cell_activation": "identity"}):
        assert rnnkit.LSTM(3, 4, **options)._cells[0][0].fused() is kernels.load("lstm_variants")
    assert rnnkit.LSTM(3, 4, variant="FGR")._cells[0][0].fused() is kernels.load("lstm_variants")
    for options in ({"layer_norm": True}, {"variant": "V", "layer_norm": True}):
        assert rnnkit.LSTM(3, 4, **options)._cells[0][0].fused() is kernels.load("lstm_variants")
    assert rnnkit.GRU(3, 4, layer_norm=True)._cells[0][0].fused() is None
    assert rnnkit.LSTM(3, 4, cell_activation="leaky_relu")._cells[0][0].fused() is None
    assert rnnkit.GRU(3, 4)._cells[0][0].fused() is not None
    assert rnnkit.GRU(3, 4, reset_after=False)._cells[0][0].fused() is kernels.load("gru_textbook")
    with kernels.use_kernels(False):
        assert rnnkit.LSTM(3, 4)._cells[0][0].fused() is None


@pytest.mark.parametrize("name", ["lstm", "lstm_variants", "gru", "gru_textbook", "elman"])
def test_time_loops_compile_without_reference_counting(name):
    """The loops' speed rests on Numba's `_nrt=False` (`kernels/_loop_kernel.py`): a Numba that
    dropped the option would run them, correct but slower, and this says so."""
    module = kernels.load(name)
    for loop in (module.forward_loop, module.backward_loop):
        assert loop.targetoptions.get("_nrt") is False, f"{name}.{loop.__name__} counts references"


@pytest.mark.parametrize("compiled_forward", [True, False], ids=["compiled-forward", "numpy-forward"])
def test_caches_are_interchangeable(compiled_forward):
    """A compiled forward's cache has the reference layout: NumPy's backward can follow it, and
    the compiled backward can follow NumPy's forward."""
    rng = np.random.default_rng(0)
    for cls, options in ((rnnkit.LSTM, {}), (rnnkit.GRU, {}), (rnnkit.RNN, {}), (rnnkit.LSTM, {"variant": "V"}),
                         (rnnkit.LSTM, {"variant": "CIFG"}), (rnnkit.GRU, {"reset_after": False}),
                         (rnnkit.LSTM, {"variant": "FGR"}), (rnnkit.LSTM, {"layer_norm": True}),
                         (rnnkit.LSTM, {"variant": "V", "layer_norm": True})):
        layer = cls(3, 5, dtype=np.float64, rng=1, **options)
        x = rng.standard_normal((4, 2, 3))
        with kernels.use_kernels(compiled_forward):
            y, _, cache = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        layer.zero_grad()
        with kernels.use_kernels(False):
            dx_numpy, _ = layer.backward(dy, cache)
        grads = [p.grad.copy() for p in layer.parameters()]
        layer.zero_grad()
        dx_fused, _ = layer.backward(dy, cache)
        np.testing.assert_allclose(dx_fused, dx_numpy, rtol=0, atol=1e-12)
        for a, b in zip(grads, (p.grad for p in layer.parameters())):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_inference_step_matches_forward(cell, bidirectional, batch):
    """SequenceNetwork.step (cache-free, compiled) gives forward's numbers, step after step."""
    config = NetworkConfig(input_size=11, output_size=11, cell=cell, hidden_size=8, num_layers=2,
                           input_kind="embedding", embedding_size=5, bidirectional=bidirectional)
    net = SequenceNetwork(config, rng=3).eval()
    ids = np.random.default_rng(4).integers(0, 11, size=(6, batch))
    state_step = state_forward = state_numpy = None
    for t in range(ids.shape[0]):
        out_step, state_step = net.step(ids[t], state_step)
        out_forward, state_forward, _ = net.forward(ids[t:t + 1], state_forward)
        with kernels.use_kernels(False):
            out_numpy, state_numpy = net.step(ids[t], state_numpy)
        np.testing.assert_allclose(out_step, out_forward[0], rtol=0, atol=1e-5)
        np.testing.assert_allclose(out_step, out_numpy, rtol=0, atol=1e-5)
    for a, b in zip(components(state_step), components(state_forward)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_step_in_training_mode_with_dropout_is_forward():
    config = NetworkConfig(input_size=7, output_size=7, cell="lstm", hidden_size=6, num_layers=2,
                           input_kind="one_hot", dropout=0.5)
    a, b = SequenceNetwork(config, rng=5), SequenceNetwork(config, rng=5)
    ids = np.array([1, 4])
    out_step, _ = a.step(ids)
    out_forward, _, _ = b.forward(ids[None])
    np.testing.assert_array_equal(out_step, out_forward[0])


@pytest.mark.parametrize("optimizer", [Adam, AdamW])
@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.1}, {"amsgrad": True}])
def test_fused_adam_matches_numpy(optimizer, options):
    rng = np.random.default_rng(6)
    runs = []
    for use in (True, False):
        params = [rnnkit.Parameter(rng.standard_normal(shape).astype(np.float32)) for shape in ((5, 3), (4,))]
        for p in params:
            p.value[...] = np.arange(p.value.size).reshape(p.value.shape) / 7.0
        opt = optimizer(params, lr=0.01, **options)
        with kernels.use_kernels(use):
            for k in range(4):
                for p in params:
                    p.grad[...] = np.sin(np.arange(p.value.size) * (k + 1)).reshape(p.value.shape)
                opt.step()
        runs.append([p.value.copy() for p in params] + [a.copy() for s in opt.state for a in s.values()])
    for fused, reference in zip(*runs):
        np.testing.assert_allclose(fused, reference, rtol=2e-6, atol=1e-7)


def test_describe_names_the_path():
    assert kernels.describe().startswith("on")
    with kernels.use_kernels(False):
        assert kernels.describe().startswith("off")


def test_add_matmul_accumulates_for_every_layout():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal((4, 5)).astype(np.float32)
    wide = rng.standard_normal((4, 9)).astype(np.float32)
    for left, right in [(a, b), (np.ascontiguousarray(a.T).T, b), (a, np.ascontiguousarray(b.T).T),
                        (a, wide[:, 2:7]), (a[::2], b), (a, b[:, ::-1])]:
        out = np.ones((left.shape[0], right.shape[1]), np.float32)
        kernels.add_matmul(out, left, right)
        np.testing.assert_allclose(out, 1.0 + left @ right, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "lstm_V"])
def test_kernels_leave_their_inputs_alone(kind):
    """One sequence of one step, straight into the kernel: every (1, H) state is contiguous both
    ways, so a kernel that wrote into an `ascontiguousarray` of it would change the caller's
    array. And the numbers still agree."""
    cls, options = LAYERS[kind]
    cell = cls(3, 4, rng=1, **options)._cells[0][0]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 1, 3)).astype(np.float32)
    state0 = tuple(rng.standard_normal((1, 4)).astype(np.float32) for _ in cell.state_names)
    d_final = tuple(rng.standard_normal((1, 4)).astype(np.float32) for _ in cell.state_names)
    dy = rng.standard_normal((1, 1, 4)).astype(np.float32)
    kept = [a.copy() for a in state0 + d_final + (dy,)]
    fused = cell.fused()
    y, _, cache = fused.forward_sequence(cell, x, state0)
    cache.x = x
    fused.backward_sequence(cell, dy, d_final, cache)
    for before, after in zip(kept, state0 + d_final + (dy,)):
        np.testing.assert_array_equal(before, after)
    with kernels.use_kernels(False):
        from rnnkit.timeloop import forward_sequence
        y_numpy, _, _ = forward_sequence(cell, x, state0)
    np.testing.assert_allclose(y, y_numpy, rtol=0, atol=1e-6)


@pytest.mark.parametrize("options", [{"variant": "V"}, {"variant": "NOAF"},
                                     {"variant": "CIFG", "cell_activation": "relu"}])
@pytest.mark.parametrize("batch", [1, 3])
def test_variant_inference_step_matches_numpy(options, batch):
    """A variant's cache-free step (a one-step compiled forward) gives the NumPy step's numbers."""
    layer = rnnkit.LSTM(4, 6, 2, rng=3, **options)
    x = np.random.default_rng(5).standard_normal((3, batch, 4)).astype(np.float32)
    state, state_numpy = None, None
    for t in range(x.shape[0]):
        out, state = layer.step(x[t], state)
        with kernels.use_kernels(False):
            out_numpy, state_numpy = layer.step(x[t], state_numpy)
        np.testing.assert_allclose(out, out_numpy, rtol=0, atol=1e-5)
    for a, b in zip(state, state_numpy):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
