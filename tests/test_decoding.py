"""Greedy decoding and beam search: beam 1 is greedy; beam search finds a likelier sequence
than greedy on a decoder built by hand to mislead greedy."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.conditioned import BOS, EOS
from rnnkit.decoding import beam_search, greedy_decode
from rnnkit.network import NetworkConfig, SequenceNetwork

A, B = 3, 4


class HandBuiltDecoder:
    """Next-token probabilities depend only on the previous token:
    after <bos>: A 0.55, B 0.45;  after A: <eos> 0.4, A 0.3, B 0.3;  after B: <eos> 0.9, A 0.1.
    Greedy writes "A" (0.55 * 0.4 = 0.22); the best sequence is "B" (0.45 * 0.9 = 0.405)."""

    table = np.full((5, 5), 1e-12)
    table[BOS, [A, B]] = [0.55, 0.45]
    table[A, [EOS, A, B]] = [0.4, 0.3, 0.3]
    table[B, [EOS, A]] = [0.9, 0.1]

    def step(self, ids, state):
        return np.log(self.table[ids]), state


def test_beam_search_beats_greedy_on_a_misleading_decoder():
    decoder, state = HandBuiltDecoder(), np.zeros((1, 1, 1))
    assert greedy_decode(decoder, state, BOS, EOS, 10) == [A]
    assert beam_search(decoder, state, BOS, EOS, 10, beam=1) == [A]
    assert beam_search(decoder, state, BOS, EOS, 10, beam=2) == [B]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_beam_of_one_is_greedy_on_a_real_network(cell):
    config = NetworkConfig(input_size=7, output_size=7, cell=cell, hidden_size=5, num_layers=2,
                           input_kind="embedding", embedding_size=3)
    network = SequenceNetwork(config, dtype=np.float64, rng=4)
    network.eval()
    for seed in range(5):
        state = network.initial_state(1)
        state = tuple(np.random.default_rng(seed).standard_normal(s.shape) for s in state) \
            if isinstance(state, tuple) else np.random.default_rng(seed).standard_normal(state.shape)
        assert beam_search(network, state, BOS, EOS, 12, beam=1) == greedy_decode(network, state, BOS, EOS, 12)


def test_beam_width_must_be_positive():
    with pytest.raises(ValueError, match="beam width must be positive"):
        beam_search(HandBuiltDecoder(), np.zeros((1, 1, 1)), BOS, EOS, 5, beam=0)
