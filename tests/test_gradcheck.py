"""Every cell's hand-derived BPTT against central finite differences, in float64.

Covered: every Elman activation, the standard and peephole LSTM, each of Greff et al.'s variants
with and without peepholes, both GRU formulas; each for 1 and 2 layers, uni- and bidirectional;
random non-zero biases, random initial states, random upstream gradients."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from gradcheck import check_layer_gradients

import rnnkit
from rnnkit.cells.lstm import VARIANTS

TOLERANCE = 1e-6
SHAPES = [(1, False), (1, True), (2, False), (2, True)]  # (num_layers, bidirectional)


def assert_gradients_match(layer, rng, steps=3, batch=2, reset_rng=None):
    x = rng.standard_normal((steps, batch, layer.input_size))
    errors = check_layer_gradients(layer, x, rng, reset_rng)
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE, f"{worst}: relative error {errors[worst]:.2e}"
    return errors


def shape_id(shape):
    layers, bidirectional = shape
    return f"{layers}layer" + ("-bi" if bidirectional else "")


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "sigmoid", "leaky_relu", "elu"])
def test_elman(nonlinearity, shape):
    rng = np.random.default_rng(10)
    layer = rnnkit.RNN(3, 4, shape[0], nonlinearity=nonlinearity, bidirectional=shape[1],
                       dtype=np.float64, rng=1)
    assert_gradients_match(layer, rng)


LSTM_CONFIGS = [(None, False), (None, True)] + [
    (variant, peephole) for variant, peephole in itertools.product(VARIANTS, (True, False))
    if not (variant == "NP" and peephole)
]


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("variant,peephole", LSTM_CONFIGS,
                         ids=[f"{v or 'standard'}-{'peephole' if p else 'nopeep'}" for v, p in LSTM_CONFIGS])
def test_lstm(variant, peephole, shape):
    rng = np.random.default_rng(11)
    layer = rnnkit.LSTM(2, 3, shape[0], bidirectional=shape[1], peephole=peephole, variant=variant,
                        dtype=np.float64, rng=2)
    assert_gradients_match(layer, rng)


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("reset_after", [True, False], ids=["pytorch", "textbook"])
def test_gru(reset_after, shape):
    rng = np.random.default_rng(12)
    layer = rnnkit.GRU(3, 4, shape[0], bidirectional=shape[1], reset_after=reset_after,
                       dtype=np.float64, rng=3)
    assert_gradients_match(layer, rng)


@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
def test_without_bias_batch_first(cls):
    rng = np.random.default_rng(13)
    layer = cls(3, 4, 2, bias=False, batch_first=True, dtype=np.float64, rng=4)
    x = rng.standard_normal((2, 3, 3))  # (batch, time, features)
    errors = check_layer_gradients(layer, x, rng)
    assert max(errors.values()) < TOLERANCE


@pytest.mark.parametrize("gate_activation,cell_activation", [("sigmoid", "relu"), ("tanh", "elu")])
def test_lstm_other_activations(gate_activation, cell_activation):
    rng = np.random.default_rng(14)
    layer = rnnkit.LSTM(2, 3, peephole=True, gate_activation=gate_activation,
                        cell_activation=cell_activation, dtype=np.float64, rng=5)
    assert_gradients_match(layer, rng)


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU])
def test_with_dropout_between_layers(cls):
    """Inter-layer dropout, with the mask held fixed across the finite-difference evaluations."""
    rng = np.random.default_rng(15)
    layer = cls(3, 4, 3, dropout=0.4, bidirectional=True, dtype=np.float64, rng=6)

    def reset():
        layer._rng = np.random.default_rng(99)

    errors = assert_gradients_match(layer, rng, steps=4, reset_rng=reset)
    assert len(errors) > 3


def test_gradcheck_detects_a_wrong_gradient():
    """The check itself can fail: corrupt one backward result and it must be caught."""
    rng = np.random.default_rng(16)
    layer = rnnkit.LSTM(2, 3, dtype=np.float64, rng=7)
    original = layer._cells[0][0].accumulate_grads

    def corrupted(cache, x, d_input, d_recurrent):
        original(cache, x, d_input, d_recurrent)
        layer.bias_hh_l0.grad[0] += 1e-3

    layer._cells[0][0].accumulate_grads = corrupted
    x = rng.standard_normal((3, 2, 2))
    errors = check_layer_gradients(layer, x, rng)
    assert errors["bias_hh_l0"] > TOLERANCE
