"""Checks that two training runs agree bit for bit (resume tests), and Ctrl-C on cue."""

from __future__ import annotations

import numpy as np

from rnnkit.checkpoint import load_checkpoint
from rnnkit.losses import softmax_cross_entropy


def interrupted_on_call(n, loss_fn=softmax_cross_entropy):
    """`loss_fn`, but Ctrl-C (KeyboardInterrupt) arrives during its n-th call."""
    calls = 0

    def loss(outputs, targets, mask):
        nonlocal calls
        calls += 1
        if calls == n:
            raise KeyboardInterrupt
        return loss_fn(outputs, targets, mask)

    return loss


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def assert_same_training(expected, got):
    """Weights, optimizer state (buffers, step count, lr) and history (but wall time) agree bit for bit."""
    for (name, a), (_, b) in zip(expected.model.named_parameters(), got.model.named_parameters()):
        np.testing.assert_array_equal(a.value, b.value, err_msg=name)
    want, have = expected.optimizer.state_dict(), got.optimizer.state_dict()
    assert want["step_count"] == have["step_count"] and want["hyperparameters"] == have["hyperparameters"]
    for buffers_a, buffers_b in zip(want["state"], have["state"]):
        for name in buffers_a:
            np.testing.assert_array_equal(buffers_a[name], buffers_b[name], err_msg=name)
    assert without_seconds(expected.state.history) == without_seconds(got.state.history)


def assert_same_checkpoint(expected_path, got_path):
    (want, want_info), (have, have_info) = load_checkpoint(expected_path), load_checkpoint(got_path)
    assert sorted(want) == sorted(have)
    for name in want:
        np.testing.assert_array_equal(want[name], have[name], err_msg=name)
    for info in (want_info, have_info):
        info["trainer"]["history"] = without_seconds(info["trainer"]["history"])
    assert want_info == have_info
