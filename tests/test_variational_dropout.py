"""Variational dropout (Gal & Ghahramani 2016): one mask per sequence on every cell's input and on
the state fed to W_hh, the same at every time step; finite differences through fixed masks;
nothing in eval mode; and less overfitting than without."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from gradcheck import check_layer_gradients
from texts import markov_text

import rnnkit
from rnnkit import kernels
from rnnkit.data.batches import StreamBatches
from rnnkit.losses import softmax_cross_entropy
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam
from rnnkit.train import Trainer

TOLERANCE = 1e-6
DROPOUT = {"input_dropout": 0.3, "recurrent_dropout": 0.4}


def seeded_reset(layer):
    """A function that rewinds the layer's generator, so every forward draws the same masks."""
    saved = layer._rng.bit_generator.state

    def reset():
        layer._rng.bit_generator.state = saved
    return reset


# ------------------------------------------------------------- one mask per sequence
def test_a_dropped_input_is_dropped_at_every_step_and_per_sequence():
    """Perturb one input feature of one sequence at one step: the outputs move unless that
    sequence's mask drops the feature, and whether it does is the same at every step."""
    steps, batch, features = 5, 12, 4
    layer = rnnkit.RNN(features, 3, input_dropout=0.5, dtype=np.float64, rng=0)
    reset = seeded_reset(layer)
    x = np.random.default_rng(1).standard_normal((steps, batch, features))
    reset()
    y, _, _ = layer.forward(x)
    reaches = np.zeros((steps, batch, features), dtype=bool)
    for t, b, k in itertools.product(range(steps), range(batch), range(features)):
        moved = x.copy()
        moved[t, b, k] += 1.0
        reset()
        reaches[t, b, k] = not np.array_equal(layer.forward(moved)[0][:, b], y[:, b])
    assert (reaches == reaches[0]).all()  # constant over time
    kept = reaches[0]
    assert 0 < kept.sum() < kept.size  # some dropped, some kept
    assert len({row.tobytes() for row in kept}) > 1  # sequences differ


def test_the_recurrent_mask_is_one_mask_for_all_steps():
    """An Elman layer's outputs are the recurrence h_t = tanh(W x_t + b + U (m * h_{t-1}) + b')
    written out with ONE mask m per sequence; units m drops get no gradient through h_0."""
    rng = np.random.default_rng(2)
    layer = rnnkit.RNN(3, 6, recurrent_dropout=0.5, dtype=np.float64, rng=1)
    x, h0 = rng.standard_normal((6, 8, 3)), rng.standard_normal((1, 8, 6))
    y, _, cache = layer.forward(x, h0)
    m = cache.cells[0][0].recurrent_mask  # (B, H): 0 or 1/keep
    assert set(np.unique(m)) == {0.0, 2.0} and len({row.tobytes() for row in m}) > 1
    h = h0[0]
    for t in range(6):
        h = np.tanh(x[t] @ layer.weight_ih_l0.value.T + layer.bias_ih_l0.value
                    + (m * h) @ layer.weight_hh_l0.value.T + layer.bias_hh_l0.value)
        np.testing.assert_allclose(y[t], h, atol=1e-12)
    _, dh0 = layer.backward(np.ones_like(y), cache)
    assert not dh0[0][m == 0].any() and dh0[0][m > 0].all()


def test_each_forward_call_draws_new_masks():
    layer = rnnkit.GRU(3, 4, **DROPOUT, rng=0)
    x = np.ones((3, 2, 3), dtype=np.float32)
    first, second = layer.forward(x)[0], layer.forward(x)[0]
    assert not np.array_equal(first, second)


# ------------------------------------------------------------------------ gradients
LAYERS = [
    ("rnn", lambda **o: rnnkit.RNN(3, 4, 2, bidirectional=True, dtype=np.float64, rng=1, **o)),
    ("lstm", lambda **o: rnnkit.LSTM(3, 4, 2, bidirectional=True, dtype=np.float64, rng=2, **o)),
    ("lstm-peephole", lambda **o: rnnkit.LSTM(3, 4, peephole=True, dtype=np.float64, rng=3, **o)),
    ("lstm-cifg", lambda **o: rnnkit.LSTM(3, 4, variant="CIFG", dtype=np.float64, rng=4, **o)),
    ("lstm-fgr", lambda **o: rnnkit.LSTM(3, 4, variant="FGR", dtype=np.float64, rng=5, **o)),
    ("gru", lambda **o: rnnkit.GRU(3, 4, 2, bidirectional=True, dtype=np.float64, rng=6, **o)),
    ("gru-textbook", lambda **o: rnnkit.GRU(3, 4, 2, reset_after=False, dtype=np.float64, rng=7, **o)),
    ("lstm-layernorm", lambda **o: rnnkit.LSTM(3, 4, 2, layer_norm=True, dtype=np.float64, rng=8, **o)),
]


@pytest.mark.parametrize("name,make", LAYERS, ids=[n for n, _ in LAYERS])
def test_gradients_through_fixed_masks(name, make):
    layer = make(dropout=0.2, **DROPOUT)  # with PyTorch's between-layer dropout too
    rng = np.random.default_rng(3)
    errors = check_layer_gradients(layer, rng.standard_normal((4, 3, 3)), rng, seeded_reset(layer))
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE, f"{worst}: relative error {errors[worst]:.2e}"


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
def test_input_dropout_keeps_the_compiled_loop_and_its_numbers(cls):
    """An input mask is applied outside the loop, so the compiled kernels still run it."""
    if not kernels.available(np.float32):
        pytest.skip("no compiled kernels here")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((5, 3, 4)).astype(np.float32)
    results = []
    for compiled in (True, False):
        layer = cls(3, 4, input_dropout=0.5, rng=9)
        with kernels.use_kernels(compiled):
            y, _, cache = layer.forward(x)
            dx, _ = layer.backward(dy, cache)
        results.append((y, dx, layer.weight_ih_l0.grad.copy()))
    for compiled, numpy in zip(*results):
        np.testing.assert_allclose(compiled, numpy, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------ eval mode
@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
def test_eval_mode_is_the_model_without_dropout(cls):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 3))
    with_dropout = cls(3, 4, 2, **DROPOUT, dtype=np.float64, rng=10).eval()
    without = cls(3, 4, 2, dtype=np.float64, rng=10)
    state = with_dropout._rng.bit_generator.state
    np.testing.assert_array_equal(with_dropout.forward(x)[0], without.forward(x)[0])
    assert with_dropout._rng.bit_generator.state == state  # no mask drawn
    out, _ = with_dropout.step(x[0])
    np.testing.assert_allclose(out, without.forward(x[:1])[0][0], atol=1e-12)


def test_options_are_checked_and_recorded():
    with pytest.raises(ValueError, match="recurrent_dropout must be in"):
        rnnkit.LSTM(3, 4, recurrent_dropout=1.0)
    with pytest.raises(ValueError, match="input_dropout must be in"):
        NetworkConfig(input_size=3, output_size=2, input_dropout=-0.1)
    config = NetworkConfig(input_size=3, output_size=2, cell="gru", **DROPOUT)
    network = SequenceNetwork(NetworkConfig.from_dict(config.to_dict()))
    assert (network.rnn.input_dropout, network.rnn.recurrent_dropout) == (0.3, 0.4)


# ------------------------------------------------------------------ what it is for
def generalisation_gap(**dropout) -> tuple[float, float]:
    """(validation loss - training loss, validation loss), both in eval mode, of a small LSTM
    trained long enough on a short text to memorise it."""
    text = markov_text(2400, 0)
    alphabet = sorted(set(text))
    ids = np.array([alphabet.index(ch) for ch in text])
    train, validation = StreamBatches(ids[:1200], 8, 20), StreamBatches(ids[1200:], 8, 20)
    config = NetworkConfig(input_size=len(alphabet), output_size=len(alphabet), hidden_size=64,
                           input_kind="embedding", embedding_size=8, **dropout)
    model = SequenceNetwork(config, rng=0)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), softmax_cross_entropy, clip_norm=5.0)
    trainer.fit(train, steps=300)
    validation_loss = trainer.evaluate(validation)
    return validation_loss - trainer.evaluate(train), validation_loss



def test_variational_dropout_overfits_less():
    """Measured: a gap of 2.91 nats (validation 3.16) without, 0.98 (validation 1.84) with."""
    gap_without, validation_without = generalisation_gap()
    gap_with, validation_with = generalisation_gap(input_dropout=0.25, recurrent_dropout=0.25)
    assert gap_with < 0.7 * gap_without, (gap_with, gap_without)
    assert validation_with < validation_without
