"""rnnkit.gradient_flow: the state gradients the hand-derived BPTT carries, against a closed form
(the linear Elman RNN), against finite differences, and the LSTM's constant error carousel."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient, relative_error

import rnnkit
from rnnkit import kernels
from rnnkit.gradient_flow import gradient_flow
from rnnkit.init import orthogonal
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.ops import get_activation
from rnnkit.recurrent import RecurrentLayer

IDENTITY = get_activation("identity")  # the Elman cell refuses it by name, not as an Activation


def test_linear_elman_follows_the_powers_of_w_hh_transposed():
    """h_t = W_hh h_{t-1} + W_ih x_t + b, so dL_T/dh_t = (W_hh^T)^(T-t) dL_T/dh_T exactly."""
    steps, batch, hidden = 12, 2, 4
    rng = np.random.default_rng(0)
    layer = rnnkit.RNN(3, hidden, nonlinearity=IDENTITY, dtype=np.float64, rng=1)
    layer.weight_hh_l0.value[...] = rng.standard_normal((hidden, hidden)) * 0.6
    d_last = rng.standard_normal((batch, hidden))
    flow = gradient_flow(layer, rng.standard_normal((steps, batch, 3)), d_last)
    gradients = flow.gradients["l0"]["h"]
    assert gradients.shape == (steps + 1, batch, hidden) and flow.steps == steps
    w = layer.weight_hh_l0.value
    for t in range(steps + 1):
        expected = d_last @ np.linalg.matrix_power(w, steps - t)  # row vectors: g^T W^k
        np.testing.assert_allclose(gradients[t], expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(flow.by_lag()[3], np.linalg.norm(d_last @ np.linalg.matrix_power(w, 3)))


@pytest.mark.parametrize("radius", [0.8, 1.25])
def test_linear_elman_with_a_scaled_orthogonal_w_hh_decays_or_grows_geometrically(radius):
    """W_hh = r Q (Q orthogonal): every singular value is r, so ||dL_T/dh_{T-k}|| = r^k exactly."""
    steps, hidden = 40, 6
    layer = rnnkit.RNN(2, hidden, nonlinearity=IDENTITY, dtype=np.float64, rng=2)
    layer.weight_hh_l0.value[...] = radius * orthogonal(3, (hidden, hidden), np.float64)
    flow = gradient_flow(layer, np.random.default_rng(4).standard_normal((steps, 1, 2)), rng=5)
    np.testing.assert_allclose(flow.by_lag(), radius ** np.arange(steps + 1), rtol=1e-10)


@pytest.mark.parametrize("make", [
    lambda: rnnkit.RNN(2, 3, dtype=np.float64, rng=1),
    lambda: rnnkit.GRU(2, 3, dtype=np.float64, rng=2),
    lambda: rnnkit.LSTM(2, 3, forget_bias=1.0, dtype=np.float64, rng=3),
    lambda: rnnkit.LSTM(2, 3, variant="FGR", dtype=np.float64, rng=4),
    lambda: SequenceNetwork(NetworkConfig(input_size=2, output_size=2, cell="lstm", hidden_size=3),
                            dtype=np.float64, rng=5),
], ids=["rnn", "gru", "lstm", "lstm-fgr", "network"])
def test_reported_gradients_equal_finite_differences(make):
    model = make()
    layer = model if isinstance(model, RecurrentLayer) else model.rnn
    rng = np.random.default_rng(6)
    steps, batch = 5, 2
    inputs = rng.standard_normal((steps, batch, 2))
    width = layer.hidden_size if model is layer else model.config.output_size
    d_last = rng.standard_normal((batch, width))
    flow = gradient_flow(model, inputs, d_last)

    _, _, cache = model.forward(inputs)
    stored = {name: value for name, value in cache.internals()["l0"].items() if name in layer.state_names}
    if "a" in layer.state_names:  # FGR's previous gate activations: i, f, o side by side
        stored["a"] = np.concatenate([cache.internals()["l0"][g] for g in "ifo"], axis=2)
    for t in range(steps + 1):
        state = [np.zeros((1, batch, width_)) for width_ in layer._cells[0][0].state_widths()]
        if t:
            for component, name in zip(state, layer.state_names):
                component[0] = stored[name][t - 1]

        def loss(t=t, state=state):
            if t == steps:
                h = state[0][0]
                return float(np.sum(d_last * (h if model is layer else model.head.forward(h)[0])))
            out, _, _ = model.forward(inputs[t:], layer._pack(state))
            return float(np.sum(d_last * out[-1]))

        for component, name in zip(state, layer.state_names):
            numeric = numeric_gradient(loss, component)[0]
            analytic = flow.gradients["l0"][name][t]
            assert relative_error(analytic, numeric) < 1e-7, (t, name)


def test_stacked_bidirectional_positions_and_the_initial_state_gradient():
    layer = rnnkit.LSTM(2, 3, 2, bidirectional=True, dtype=np.float64, rng=7)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 2, 2))
    d_last = rng.standard_normal((2, 6))
    flow = gradient_flow(layer, x, d_last)
    assert set(flow.gradients) == {"l0", "l0_reverse", "l1", "l1_reverse"}
    y, _, cache = layer.forward(x)
    dy = np.zeros_like(y)
    dy[-1] = d_last
    _, (dh0, dc0) = layer.backward(dy, cache)
    for index, key in enumerate(flow.gradients):
        start = 6 if key.endswith("_reverse") else 0  # a reverse direction starts after x's end
        np.testing.assert_allclose(flow.gradients[key]["h"][start], dh0[index], rtol=1e-12)
        np.testing.assert_allclose(flow.gradients[key]["c"][start], dc0[index], rtol=1e-12)
    # The top reverse cell's state at position T - 1 read only x_{T-1}: the output gradient itself.
    np.testing.assert_allclose(flow.gradients["l1_reverse"]["h"][5], d_last[:, 3:], rtol=1e-12)


def test_the_measurement_leaves_the_model_as_it_was_and_kernels_agree():
    model = SequenceNetwork(NetworkConfig(input_size=2, output_size=1, cell="lstm", hidden_size=8, dropout=0.3),
                            dtype=np.float64, rng=9)
    for param in model.parameters():
        param.grad[...] = 0.5
    x = np.random.default_rng(10).standard_normal((7, 4, 2))  # batch > 1: the compiled kernel's case
    with kernels.use_kernels(True):
        compiled = gradient_flow(model, x, rng=1)
    with kernels.use_kernels(False):
        reference = gradient_flow(model, x, rng=1)
    assert model.training and all(np.all(p.grad == 0.5) for p in model.parameters())
    for name in ("h", "c"):
        np.testing.assert_allclose(compiled.gradients["l0"][name], reference.gradients["l0"][name], rtol=1e-10)


def test_a_saturated_lstm_carries_the_cell_gradient_unchanged():
    """Forget gate at 1, input gate at 0, output gate at 1: c_t = c_{t-1}, and
    dL/dc_{t-1} = f_t * dL/dc_t with no other path (every gate's sigma' is ~0, so nothing
    reaches h_{t-1}): the constant error carousel."""
    steps, hidden = 60, 4
    layer = rnnkit.LSTM(2, hidden, forget_bias=30.0, dtype=np.float64, rng=11)
    layer.bias_ih_l0.value[:hidden] -= 30.0  # input gate shut
    layer.bias_ih_l0.value[3 * hidden:] += 30.0  # output gate open
    rng = np.random.default_rng(12)
    state = (np.zeros((1, 1, hidden)), rng.standard_normal((1, 1, hidden)))
    flow = gradient_flow(layer, rng.standard_normal((steps, 1, 2)), state=state, rng=13)
    cell = flow.by_lag("c")  # lag 0: the loss reads h_T, and c_T as a state feeds nothing after T
    assert cell[0] == 0 and cell[1] > 0.1
    np.testing.assert_allclose(cell[1:], cell[1], rtol=1e-9)
    assert np.all(flow.by_lag("h")[1:] < 1e-9)
    # The same cell at PyTorch's initialisation forgets: the gradient fades geometrically.
    plain = gradient_flow(rnnkit.LSTM(2, hidden, dtype=np.float64, rng=11), rng.standard_normal((steps, 1, 2)), rng=13)
    assert plain.by_lag("c")[50] < 1e-6 * plain.by_lag("c")[1]


def test_bad_arguments_are_one_line_value_errors():
    layer = rnnkit.RNN(2, 3)
    with pytest.raises(ValueError, match="last output's shape"):
        gradient_flow(layer, np.zeros((4, 2, 2), np.float32), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="recurrent layer or a SequenceNetwork"):
        gradient_flow(object(), np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="no state 'c'"):
        gradient_flow(layer, np.zeros((4, 2, 2), np.float32)).norms("c")
