"""Drawing tokens: `decoding.choose_token`'s rule, and `SequenceNetwork.sample`, compiled or not."""

import numpy as np
import pytest

from rnnkit import kernels
from rnnkit.decoding import choose_token
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.ops import softmax

needs_kernels = pytest.mark.skipif(not kernels.available(np.float32), reason="no compiled kernels with this NumPy")


def _network(cell="lstm", layers=2, hidden=24, dtype=np.float32, **options):
    config = NetworkConfig(input_size=11, output_size=11, cell=cell, hidden_size=hidden, num_layers=layers,
                           input_kind="embedding", embedding_size=7, **options)
    return SequenceNetwork(config, dtype=dtype, rng=3).eval()


def _step_by_step(network, first, uniforms, state=None, **settings):
    """The per-token loop that `sample` must match: `step`, then `choose_token`."""
    tokens, token = [], first
    for uniform in uniforms:
        logits, state = network.step(np.array([token]), state)
        token = choose_token(logits[0], uniform, **settings)
        tokens.append(token)
    return np.array(tokens), state


def test_choose_token_draws_from_the_tempered_softmax():
    logits = np.array([2.0, 1.0, 0.0, -1.0, 0.5])
    uniforms = np.random.default_rng(0).random(40_000)
    for temperature in (1.0, 0.5, 2.0):
        draws = [choose_token(logits, u, temperature=temperature) for u in uniforms]
        frequencies = np.bincount(draws, minlength=len(logits)) / len(draws)
        np.testing.assert_allclose(frequencies, softmax(logits / temperature), atol=0.01)


def test_choose_token_top_k_and_greedy():
    logits = np.array([0.1, 3.0, 2.0, -5.0, 2.5])
    uniforms = np.random.default_rng(1).random(5_000)
    draws = {choose_token(logits, u, top_k=2) for u in uniforms}
    assert draws == {1, 4}
    assert choose_token(logits, 0.999, greedy=True) == 1
    assert choose_token(logits, 0.0) == 0 and choose_token(logits, 0.9999999) == 4  # the two ends of the cdf


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("settings", [{}, {"temperature": 0.6}, {"top_k": 3}, {"greedy": True}],
                         ids=["plain", "temperature", "top-k", "greedy"])
def test_compiled_sampling_draws_what_the_steps_draw(monkeypatch, dtype, settings):
    network = _network(dtype=dtype)
    rng = np.random.default_rng(5)
    state = tuple(rng.standard_normal((2, 1, 24)).astype(dtype) for _ in range(2))
    uniforms = np.zeros(200) if settings.get("greedy") else np.random.default_rng(9).random(200)
    expected, expected_state = _step_by_step(network, 4, uniforms, state, **settings)

    def no_steps(*args, **kwargs):
        raise AssertionError("the compiled sampler went back to Python per token")
    monkeypatch.setattr(network, "step", no_steps)
    tokens, final = network.sample(4, 200, np.random.default_rng(9), state, **settings)
    np.testing.assert_array_equal(tokens, expected)
    tolerance = 1e-12 if dtype == np.float64 else 1e-6
    for got, want in zip(final, expected_state):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance)
    assert state[0].shape == (2, 1, 24)  # the caller's state is read, not written
    np.testing.assert_array_equal(state[0], np.random.default_rng(5).standard_normal((2, 1, 24)).astype(dtype))


@needs_kernels
@pytest.mark.parametrize("make", [lambda: _network(layers=1), lambda: _network(hidden=7, tie_weights=True),
                                  lambda: _network(layers=3, dropout=0.3)], ids=["one-layer", "tied", "dropout"])
def test_compiled_sampling_of_other_lstm_stacks(monkeypatch, make):
    """One layer; the head tied to the embedding (H = E); dropout between layers (eval mode)."""
    network = make()
    expected, expected_state = _step_by_step(network, 6, np.random.default_rng(4).random(100), top_k=4)
    monkeypatch.setattr(network, "step", None)  # the compiled path must not call it
    tokens, state = network.sample(6, 100, np.random.default_rng(4), top_k=4)
    np.testing.assert_array_equal(tokens, expected)
    np.testing.assert_allclose(state[1], expected_state[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("make", [lambda: _network(cell="gru"), lambda: _network(layers=1, variant="CIFG"),
                                  lambda: _network(cell="rnn", layers=1)], ids=["GRU", "CIFG", "RNN"])
def test_other_networks_sample_step_by_step(make):
    network = make()
    tokens, state = network.sample(2, 50, 7, temperature=0.8)
    expected, expected_state = _step_by_step(network, 2, np.random.default_rng(7).random(50), temperature=0.8)
    np.testing.assert_array_equal(tokens, expected)
    parts = lambda state: state if isinstance(state, tuple) else (state,)  # noqa: E731  (GRU and RNN: one array)
    for got, want in zip(parts(state), parts(expected_state)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@needs_kernels
def test_sampling_in_chunks_continues_the_same_run():
    """Two calls, the state and the generator carried, draw what one call draws."""
    network = _network()
    whole, state_whole = network.sample(1, 120, np.random.default_rng(2))
    rng = np.random.default_rng(2)
    first, state = network.sample(1, 70, rng)
    second, state = network.sample(int(first[-1]), 50, rng, state)
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)
    np.testing.assert_allclose(state[0], state_whole[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda net: net.sample(11, 5), "first token"),
    (lambda net: net.sample(-1, 5), "first token"),
    (lambda net: net.sample(0, -2), "count >= 0"),
    (lambda net: net.sample(0, 5, temperature=0.0), "temperature > 0"),
    (lambda net: net.sample(0, 5, top_k=0), "top_k > 0"),
    (lambda net: net.sample(2.5, 5), "first token"),
    (lambda net: net.sample(0, 5, top_k=2.5), "top_k > 0"),
], ids=["id-too-large", "negative-id", "negative-count", "zero-temperature", "zero-top-k", "float-id", "float-top-k"])
def test_sample_refuses_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(_network())


def test_sample_needs_token_inputs():
    config = NetworkConfig(input_size=4, output_size=4, cell="lstm", hidden_size=8)
    with pytest.raises(ValueError, match="token inputs"):
        SequenceNetwork(config, rng=0).eval().sample(0, 3)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "step-loop"])
def test_a_diverged_network_is_not_sampled(compiled):
    network = _network()
    network.head.bias.value[3] = np.nan
    if compiled and not kernels.available(np.float32):
        pytest.skip("no compiled kernels with this NumPy")
    with kernels.use_kernels(compiled), pytest.raises(ValueError, match="not finite"):
        network.sample(0, 10, 0)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "step-loop"])
def test_a_temperature_that_overflows_the_logits_is_refused(compiled):
    if compiled and not kernels.available(np.float32):
        pytest.skip("no compiled kernels with this NumPy")
    with kernels.use_kernels(compiled), pytest.raises(ValueError, match="temperature too small"):
        _network().sample(0, 10, 0, temperature=1e-320)
