"""Padded batches: the state holds still on padded steps, so padding changes nothing in the
outputs that count, the final states or the gradients; and the gradients of a masked batch
agree with finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient, relative_error

import rnnkit

LENGTHS = [5, 2, 6, 1]
LAYERS = [
    ("lstm", lambda: rnnkit.LSTM(3, 4, 2, bidirectional=True, dtype=np.float64, rng=1)),
    ("lstm-fgr", lambda: rnnkit.LSTM(3, 4, variant="FGR", bidirectional=True, dtype=np.float64, rng=2)),
    ("gru", lambda: rnnkit.GRU(3, 4, 2, bidirectional=True, dtype=np.float64, rng=3)),
    ("gru-textbook", lambda: rnnkit.GRU(3, 4, reset_after=False, dtype=np.float64, rng=4)),
    ("rnn", lambda: rnnkit.RNN(3, 4, 2, bidirectional=True, dtype=np.float64, rng=5)),
    ("lstm-layernorm", lambda: rnnkit.LSTM(3, 4, 2, bidirectional=True, peephole=True, layer_norm=True,
                                           dtype=np.float64, rng=6)),
    ("gru-layernorm", lambda: rnnkit.GRU(3, 4, bidirectional=True, layer_norm=True, dtype=np.float64, rng=7)),
]


def components(state):
    return [state] if isinstance(state, np.ndarray) else list(state)


def padded_batch(rng, lengths, features=3):
    steps = max(lengths)
    sequences = [rng.standard_normal((length, features)) for length in lengths]
    x = rng.standard_normal((steps, len(lengths), features)) * 100  # junk on the padded steps...
    x[steps - 1, :, 0] = np.nan  # ...even NaN
    mask = np.zeros((steps, len(lengths)), dtype=bool)
    for b, sequence in enumerate(sequences):
        x[: len(sequence), b] = sequence
        mask[: len(sequence), b] = True
    return sequences, x, mask


@pytest.mark.parametrize("name,make", LAYERS, ids=[n for n, _ in LAYERS])
def test_padding_changes_nothing(name, make):
    rng = np.random.default_rng(0)
    layer = make()
    sequences, x, mask = padded_batch(rng, LENGTHS)
    y, final, cache = layer.forward(x, mask=mask)
    dy = rng.standard_normal(y.shape) * mask[..., None]  # only real steps' outputs are used
    d_final = [rng.standard_normal(c.shape) for c in components(final)]
    layer.zero_grad()
    layer.backward(dy, cache, layer._pack(d_final))
    padded_grads = {n: p.grad.copy() for n, p in layer.named_parameters()}

    layer.zero_grad()
    for b, sequence in enumerate(sequences):
        alone, alone_final, alone_cache = layer.forward(sequence[:, None, :])
        np.testing.assert_allclose(y[: len(sequence), b], alone[:, 0], rtol=0, atol=1e-12)
        for padded_c, alone_c in zip(components(final), components(alone_final)):
            np.testing.assert_allclose(padded_c[:, b], alone_c[:, 0], rtol=0, atol=1e-12)
        layer.backward(dy[: len(sequence), b: b + 1], alone_cache,
                       layer._pack([d[:, b: b + 1] for d in d_final]))
    for n, p in layer.named_parameters():
        np.testing.assert_allclose(padded_grads[n], p.grad, rtol=0, atol=1e-10, err_msg=n)


@pytest.mark.parametrize("name,make", LAYERS, ids=[n for n, _ in LAYERS])
def test_masked_gradients_match_finite_differences(name, make):
    rng = np.random.default_rng(1)
    layer = make()
    _, x, mask = padded_batch(rng, [3, 1, 4])
    x = np.nan_to_num(x)
    y, final, cache = layer.forward(x, mask=mask)
    dy = rng.standard_normal(y.shape) * mask[..., None]
    d_final = [rng.standard_normal(c.shape) for c in components(final)]

    def loss() -> float:
        out, end, _ = layer.forward(x, mask=mask)
        return float(np.sum(dy * out) + sum(np.sum(d * c) for d, c in zip(d_final, components(end))))

    layer.zero_grad()
    dx, _ = layer.backward(dy, cache, layer._pack(d_final))
    assert relative_error(dx, numeric_gradient(loss, x)) < 1e-6
    assert not dx[~mask].any()  # padded inputs get no gradient
    for n, p in layer.named_parameters():
        assert relative_error(p.grad, numeric_gradient(loss, p.value)) < 1e-6, n


def test_mask_shape_is_checked():
    layer = rnnkit.GRU(3, 4)
    with pytest.raises(ValueError, match="mask must cover"):
        layer.forward(np.zeros((5, 2, 3)), mask=np.ones((2, 5), bool))
