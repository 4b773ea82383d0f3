"""The temporal-order problem of Hochreiter & Schmidhuber (1997), experiments 6a and 6b: its
symbols, positions, lengths and classes, read back from the one-hot inputs."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.data.synthetic import TEMPORAL_ORDER_SYMBOLS, temporal_order, temporal_order_windows


def read_back(inputs):
    """The symbols as a string per sequence, from the one-hot (steps, n, 8) inputs."""
    assert np.all(inputs.sum(axis=2) == 1)
    ids = inputs.argmax(axis=2).T
    return ["".join(TEMPORAL_ORDER_SYMBOLS[k] for k in row) for row in ids]


# The paper's windows for sequences of 100-110 steps.
PAPER = {2: [(10, 20), (50, 60)], 3: [(10, 20), (33, 43), (66, 76)]}


@pytest.mark.parametrize("relevant", [2, 3])
def test_sequences_are_e_noise_relevant_symbols_in_the_papers_windows_then_b(relevant):
    n, steps = 4_000, 107
    inputs, targets = temporal_order(np.random.default_rng(0), n, steps, relevant, nominal=100)
    assert inputs.shape == (steps, n, 8) and targets.shape == (steps, n)
    assert temporal_order_windows(100, relevant) == PAPER[relevant]
    positions = []
    for text, target in zip(read_back(inputs), targets[-1]):
        assert text[0] == "E" and text[-1] == "B" and set(text[1:-1]) <= set("abcdXY")
        where = [t for t, symbol in enumerate(text) if symbol in "XY"]
        positions.append(where)
        order = "".join(text[t] for t in where)
        assert int(order.replace("X", "0").replace("Y", "1"), 2) == target  # XX=0, XY=1, YX=2, YY=3 (6a)
    positions = np.array(positions)
    assert positions.shape == (n, relevant)
    for k, (low, high) in enumerate(PAPER[relevant]):
        assert positions[:, k].min() == low and positions[:, k].max() == high  # every step of the window
    counts = np.bincount(targets[-1], minlength=2 ** relevant)
    assert np.all(np.abs(counts / (n / 2 ** relevant) - 1) < 0.15)
    np.testing.assert_array_equal(targets[:-1], 0)


def test_windows_scale_with_the_nominal_length_and_short_sequences_are_refused():
    assert temporal_order_windows(20) == [(2, 4), (10, 12)]
    inputs, _ = temporal_order(1, 3, 21, nominal=20)
    assert inputs.shape == (21, 3, 8)
    with pytest.raises(ValueError, match="steps >= 62"):
        temporal_order(1, 3, 61, nominal=100)
    with pytest.raises(ValueError, match="2 \\(6a\\) or 3 \\(6b\\)"):
        temporal_order(1, 3, 100, relevant=4)
