"""Pooling over time (`rnnkit.pooling`) and the classifier heads that read it: the backward agrees
with finite differences in float64, and padding (any values, any amount) changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient, relative_error

from rnnkit.apps.classify.model import ClassifierConfig, SequenceClassifier
from rnnkit.data.batches import Padded
from rnnkit.network import NetworkConfig
from rnnkit.pooling import pool_backward, pool_forward

LENGTHS = [5, 2, 6, 1]


def states(rng, lengths, steps, features=3):
    """Random states (steps, B, F) with huge junk after each length, and the mask of real steps."""
    y = rng.standard_normal((steps, len(lengths), features))
    mask = np.arange(steps)[:, None] < np.array(lengths)[None, :]
    y[~mask] = 1e6 * rng.choice([-1.0, 1.0], size=y[~mask].shape)
    return y, mask


@pytest.mark.parametrize("kind", ["mean", "max"])
def test_pool_gradient_matches_finite_differences_and_skips_padding(kind):
    rng = np.random.default_rng(0)
    y, mask = states(rng, LENGTHS, 7)
    d_pooled = rng.standard_normal((len(LENGTHS), 3))  # a random upstream gradient, not all ones

    def loss() -> float:
        return float(np.sum(d_pooled * pool_forward(kind, y, mask)[0]))

    pooled, cache = pool_forward(kind, y, mask)
    assert np.abs(pooled).max() < 1e3  # no junk from the padding reached the result
    dy = pool_backward(d_pooled, cache)
    assert not dy[~mask].any()
    assert relative_error(dy, numeric_gradient(loss, y)) < 1e-8


def test_pool_values_by_hand():
    y = np.array([[[1.0, -2.0]], [[3.0, 5.0]], [[-7.0, 9.0]]])  # (3, 1, 2)
    mask = np.array([[True], [True], [False]])
    np.testing.assert_allclose(pool_forward("mean", y, mask)[0], [[2.0, 1.5]])
    np.testing.assert_allclose(pool_forward("max", y, mask)[0], [[3.0, 5.0]])
    np.testing.assert_allclose(pool_forward("max", y)[0], [[3.0, 9.0]])


def test_pool_checks_its_input():
    y = np.zeros((2, 2, 3))
    with pytest.raises(ValueError, match="unknown pooling"):
        pool_forward("median", y)
    with pytest.raises(ValueError, match="at least one real step"):
        pool_forward("mean", y, np.array([[True, False], [True, False]]))
    with pytest.raises(ValueError, match="mask must cover"):
        pool_forward("max", y, np.ones((3, 2), dtype=bool))


def classifier(pool: str, cell: str = "lstm", layers: int = 1) -> SequenceClassifier:
    network = NetworkConfig(input_size=9, output_size=3, cell=cell, hidden_size=4, num_layers=layers,
                            input_kind="embedding", embedding_size=3, bidirectional=True)
    return SequenceClassifier(ClassifierConfig(network, pool=pool), dtype=np.float64, rng=7)


def padded_ids(rng, lengths, steps):
    ids = rng.integers(2, 9, (steps, len(lengths)))
    mask = np.arange(steps)[:, None] < np.array(lengths)[None, :]
    ids[~mask] = rng.integers(-5, 50, int((~mask).sum()))  # junk: padding ids may be anything
    return ids, mask


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_pooled_classifier_ignores_padding(pool):
    rng = np.random.default_rng(2)
    model = classifier(pool)
    ids, mask = padded_ids(rng, LENGTHS, max(LENGTHS))
    targets = np.array([0, 2, 1, 1])
    outputs, _, cache = model.forward(Padded(ids, mask))
    model.zero_grad()
    model.backward(model.loss(outputs, targets)[1], cache)
    grads = {name: p.grad.copy() for name, p in model.named_parameters()}

    # each sequence alone, unpadded: the same outputs, and their gradients add up to the batch's
    model.zero_grad()
    for b, length in enumerate(LENGTHS):
        alone, _, alone_cache = model.forward(ids[:length, b:b + 1])
        np.testing.assert_allclose(alone[0], outputs[b], rtol=0, atol=1e-12)
        model.backward(model.loss(alone, targets[b:b + 1])[1] / len(LENGTHS), alone_cache)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name], rtol=0, atol=1e-12, err_msg=name)


def test_pool_is_in_the_configuration_and_old_ones_read_as_last():
    network = NetworkConfig(input_size=9, output_size=2, input_kind="embedding", embedding_size=3)
    config = ClassifierConfig(network, pool="max")
    assert ClassifierConfig.from_dict(config.to_dict()) == config
    old = config.to_dict()
    del old["pool"]  # a checkpoint written before the option
    assert ClassifierConfig.from_dict(old).pool == "last"
    with pytest.raises(ValueError, match="unknown pooling 'median'"):
        ClassifierConfig(network, pool="median")


def test_exporters_refuse_a_pooled_head():
    from rnnkit.interop.torch import torch_modules

    with pytest.raises(ValueError, match="reads the mean of every step's output"):
        torch_modules(classifier("mean"))
    assert torch_modules(classifier("last"))  # the final-state read-out still exports
    pytest.importorskip("onnx")
    from rnnkit.interop.onnx import to_onnx

    with pytest.raises(ValueError, match="reads the max of every step's output"):
        to_onnx(classifier("max"))
