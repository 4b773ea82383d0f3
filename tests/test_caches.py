"""Backward with a missing or foreign cache says what to pass; a network's cache has internals()."""

import numpy as np
import pytest

from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.recurrent import GRU, LSTM, RNN


@pytest.mark.parametrize("layer_class", [RNN, LSTM, GRU])
def test_layer_backward_without_its_cache_says_what_to_pass(layer_class):  # issue 19, defect 8
    layer = layer_class(3, 4, num_layers=2, rng=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    y, _, cache = layer.forward(x)
    other_cache = layer_class(3, 4, num_layers=2, rng=1).forward(x)[2]
    for wrong, message in [(None, r"needs the cache that \w+\.forward returned \(y, state, cache = "
                                  r"layer\.forward\(x\)\), got None$"),
                           (other_cache, r"got the cache of another module's forward; pass the one this \w+'s")]:
        with pytest.raises(ValueError, match=message):
            layer.backward(np.ones_like(y), wrong)
    assert all(not p.grad.any() for p in layer.parameters())  # refused before adding anything
    layer.backward(np.ones_like(y), cache)
    assert any(p.grad.any() for p in layer.parameters())


def test_network_backward_without_its_cache_says_what_to_pass():
    network = SequenceNetwork(NetworkConfig(3, 2, hidden_size=4), rng=0)
    outputs, _, cache = network.forward(np.zeros((4, 2, 3), dtype=np.float32))
    other = SequenceNetwork(NetworkConfig(3, 2, hidden_size=4), rng=0).forward(np.zeros((4, 2, 3)))[2]
    for wrong, message in [(None, r"SequenceNetwork\.backward needs the cache that SequenceNetwork\.forward "
                                  r"returned \(outputs, state, cache = network\.forward\(inputs\)\), got None"),
                           (cache.rnn, r"needs the cache .* got SequenceCache"),
                           (other, r"got the cache of another module's forward")]:
        with pytest.raises(ValueError, match=message):
            network.backward(outputs, wrong)
    assert all(not p.grad.any() for p in network.parameters())


def test_a_network_cache_has_the_internals_of_its_recurrent_stack():  # issue 19, item 12
    network = SequenceNetwork(NetworkConfig(5, 5, cell="gru", hidden_size=4, num_layers=2, bidirectional=True,
                                            input_kind="embedding", embedding_size=3), rng=0)
    _, _, cache = network.forward(np.random.default_rng(0).integers(0, 5, (6, 2)))
    inside = cache.internals()
    assert sorted(inside) == ["l0", "l0_reverse", "l1", "l1_reverse"]
    assert sorted(inside["l1"]) == ["h", "n", "r", "z"] and inside["l1"]["h"].shape == (6, 2, 4)
    for layer, named in cache.rnn.internals().items():
        for name, values in named.items():
            np.testing.assert_array_equal(inside[layer][name], values)


def test_linear_embedding_and_dropout_backward_without_their_cache_say_what_to_pass():
    from rnnkit.layers import Dropout, Embedding, Linear

    for layer, forward_input in [(Linear(3, 2, rng=0), np.ones((4, 3))), (Embedding(5, 2, rng=0), np.array([1, 2])),
                                 (Dropout(0.5, rng=0), np.ones((4, 3)))]:
        output, _ = layer.forward(forward_input)
        name = type(layer).__name__
        with pytest.raises(ValueError, match=rf"^{name}\.backward needs the cache that {name}\.forward returned"):
            layer.backward(np.ones_like(output), None)
