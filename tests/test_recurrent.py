"""Layer behaviour beyond the numbers: state dicts, shapes, errors, modes, determinism."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit


def test_default_dtype_is_float32_and_float64_on_request():
    assert rnnkit.LSTM(3, 4).weight_ih_l0.dtype == np.float32
    layer = rnnkit.GRU(3, 4, dtype=np.float64)
    y, h, _ = layer.forward(np.ones((2, 1, 3), dtype=np.float32))
    assert layer.weight_hh_l0.dtype == np.float64 and y.dtype == np.float64 and h.dtype == np.float64


def test_same_seed_same_weights_different_seed_different():
    a, b, c = (rnnkit.LSTM(3, 4, 2, rng=seed) for seed in (7, 7, 8))
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key])
    assert not np.array_equal(a.weight_hh_l1.value, c.weight_hh_l1.value)


def test_load_state_dict_rejects_bad_keys_and_leaves_model_unchanged():
    layer = rnnkit.LSTM(3, 4, 2)
    before = layer.state_dict()
    state = layer.state_dict()
    del state["bias_hh_l1"]
    with pytest.raises(ValueError, match="missing key.*bias_hh_l1"):
        layer.load_state_dict(state)
    state = {**before, "weight_xx_l0": np.zeros(3)}
    with pytest.raises(ValueError, match="unexpected key.*weight_xx_l0"):
        layer.load_state_dict(state)
    state = {k: v + 1 for k, v in before.items()}
    state["weight_hh_l1"] = np.zeros((16, 5))
    with pytest.raises(ValueError, match="weight_hh_l1 has shape"):
        layer.load_state_dict(state)
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_wrong_shapes_raise_clear_errors():
    layer = rnnkit.LSTM(3, 4, 2)
    with pytest.raises(ValueError, match="3 features"):
        layer.forward(np.zeros((5, 2, 4)))
    with pytest.raises(ValueError, match="3-D"):
        layer.forward(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least one time step"):
        layer.forward(np.zeros((0, 2, 3)))
    with pytest.raises(ValueError, match=r"part h has shape \(1, 2, 4\), expected \(2, 2, 4\)"):
        layer.forward(np.zeros((5, 2, 3)), (np.zeros((1, 2, 4)), np.zeros((2, 2, 4))))
    with pytest.raises(ValueError, match="2 parts"):
        layer.forward(np.zeros((5, 2, 3)), np.zeros((2, 2, 4)))
    _, _, cache = layer.forward(np.zeros((5, 2, 3)))
    with pytest.raises(ValueError, match="output gradient"):
        layer.backward(np.zeros((4, 2, 4)), cache)


@pytest.mark.parametrize("kwargs,message", [
    ({"hidden_size": 0}, "hidden_size must be a positive integer"),
    ({"num_layers": -1}, "num_layers must be a positive integer"),
    ({"dropout": 1.0}, "dropout must be in"),
    ({"variant": "XYZ"}, "unknown LSTM variant"),
    ({"variant": "NP", "peephole": True}, "NP means no peepholes"),
    ({"gate_activation": "softsign"}, "unknown activation"),
    ({"dtype": np.int32}, "float32 or float64"),
])
def test_bad_constructor_arguments(kwargs, message):
    arguments = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        rnnkit.LSTM(**arguments)


def test_bad_elman_nonlinearity():
    with pytest.raises(ValueError, match="unknown activation"):
        rnnkit.RNN(3, 4, nonlinearity="swish")
    with pytest.raises(ValueError, match="slope"):
        rnnkit.RNN(3, 4, nonlinearity="leaky_relu", negative_slope=2.0)


def test_split_sequence_with_carried_state_equals_one_pass():
    rng = np.random.default_rng(0)
    for layer in (rnnkit.LSTM(3, 5, 2, dtype=np.float64), rnnkit.GRU(3, 5, 2, dtype=np.float64),
                  rnnkit.LSTM(3, 5, variant="FGR", dtype=np.float64)):
        x = rng.standard_normal((9, 2, 3))
        whole, final, _ = layer.forward(x)
        first, middle, _ = layer.forward(x[:4])
        second, end, _ = layer.forward(x[4:], middle)
        np.testing.assert_allclose(np.concatenate([first, second]), whole, rtol=0, atol=1e-14)
        for a, b in zip(np.atleast_1d(end) if isinstance(end, np.ndarray) else end,
                        np.atleast_1d(final) if isinstance(final, np.ndarray) else final):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


def test_internals_are_the_gates_that_made_the_output():
    rng = np.random.default_rng(1)
    layer = rnnkit.LSTM(3, 4, bidirectional=True, peephole=True, dtype=np.float64)
    x = rng.standard_normal((6, 2, 3))
    y, (h, c), cache = layer.forward(x)
    inside = cache.internals()
    assert set(inside) == {"l0", "l0_reverse"}
    forward, reverse = inside["l0"], inside["l0_reverse"]
    assert set(forward) == {"h", "c", "i", "f", "g", "o"}
    np.testing.assert_allclose(forward["h"], forward["o"] * np.tanh(forward["c"]), atol=1e-15)
    np.testing.assert_allclose(forward["h"], y[..., :4], atol=0)
    np.testing.assert_allclose(reverse["h"], y[..., 4:], atol=0)  # in the input's time order
    np.testing.assert_allclose(reverse["c"][0], c[1], atol=0)  # the reverse pass ends at t = 0
    gru = rnnkit.GRU(3, 4, batch_first=True)
    inside = gru.forward(rng.standard_normal((2, 6, 3)))[2].internals()["l0"]
    assert set(inside) == {"h", "r", "z", "n"} and inside["z"].shape == (2, 6, 4)


def test_cifg_forget_gate_is_one_minus_input_gate():
    layer = rnnkit.LSTM(3, 4, variant="CIFG", dtype=np.float64)
    inside = layer.forward(np.random.default_rng(2).standard_normal((5, 2, 3)))[2].internals()["l0"]
    np.testing.assert_allclose(inside["f"], 1.0 - inside["i"], atol=1e-15)


def test_dropout_only_in_training_mode():
    rng = np.random.default_rng(3)
    layer = rnnkit.LSTM(3, 8, 2, dropout=0.5, rng=4)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    train_a = layer.forward(x)[0]
    train_b = layer.forward(x)[0]
    assert not np.allclose(train_a, train_b)  # a fresh mask each call
    layer.eval()
    eval_a, eval_b = layer.forward(x)[0], layer.forward(x)[0]
    np.testing.assert_array_equal(eval_a, eval_b)
    assert layer.forward(x)[2].dropout_masks == [None, None]


def test_backward_from_final_state_only():
    """An encoder's outputs may go unused: dy=None backpropagates from the final state alone."""
    rng = np.random.default_rng(5)
    layer = rnnkit.GRU(3, 4, 2, dtype=np.float64)
    x = rng.standard_normal((4, 2, 3))
    y, h, cache = layer.forward(x)
    dh = rng.standard_normal(h.shape)
    dx_none, dh0_none = layer.backward(None, cache, dh)
    grads_none = [p.grad.copy() for p in layer.parameters()]
    layer.zero_grad()
    dx_zero, dh0_zero = layer.backward(np.zeros_like(y), cache, dh)
    np.testing.assert_array_equal(dx_none, dx_zero)
    np.testing.assert_array_equal(dh0_none, dh0_zero)
    for a, p in zip(grads_none, layer.parameters()):
        np.testing.assert_array_equal(a, p.grad)


def test_gradients_accumulate_across_backward_calls():
    rng = np.random.default_rng(6)
    layer = rnnkit.RNN(3, 4, dtype=np.float64)
    x = rng.standard_normal((4, 2, 3))
    y, _, cache = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    layer.backward(dy, cache)
    once = layer.weight_hh_l0.grad.copy()
    layer.backward(dy, cache)
    np.testing.assert_allclose(layer.weight_hh_l0.grad, 2 * once)
    layer.zero_grad()
    assert not layer.weight_hh_l0.grad.any()
