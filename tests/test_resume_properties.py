"""Resume equivalence, property-based: for random small models (cell, layers, dropout, variational
dropout), truncations k1 <= k2, data sources, schedules and validation with patience, a run
that is interrupted anywhere and resumed ends bit-identical to one that never was: weights,
optimizer, schedule, dropout generators, carried stream, history (but wall time), the best and
the last checkpoint, and the step it stops at. The interruption is Ctrl-C during any call of
the loss (inside a batch between two windows, or during a scheduled or end-of-run evaluation),
Ctrl-C inside an update (some parameters updated, the rest not), or a run that simply ends early
(`fit(steps=a)`, with its end-of-run evaluation) and is continued."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from training_checks import (
    assert_same_checkpoint,
    assert_same_training,
    interrupted_on_call,
)

from rnnkit.data import ExampleBatches, StreamBatches
from rnnkit.losses import softmax_cross_entropy
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam
from rnnkit.schedules import StepDecay
from rnnkit.train import Trainer

V = 5


class CountingLoss:
    def __init__(self):
        self.calls = 0

    def __call__(self, outputs, targets, mask):
        self.calls += 1
        return softmax_cross_entropy(outputs, targets, mask)


class InterruptedAdam(Adam):
    """Adam, but Ctrl-C arrives inside its n-th parameter update (n = 0: never); counts updates."""

    interrupt_at = 0

    def _update(self, value, grad, state):
        self.updates = getattr(self, "updates", 0) + 1
        if self.updates == self.interrupt_at:
            raise KeyboardInterrupt
        super()._update(value, grad, state)


@st.composite
def configurations(draw):
    k1 = draw(st.one_of(st.none(), st.integers(1, 4)))
    return {
        "cell": draw(st.sampled_from(["lstm", "gru", "rnn"])),
        "layers": draw(st.integers(1, 2)),
        "dropout": draw(st.sampled_from([0.0, 0.3])),
        "input_dropout": draw(st.sampled_from([0.0, 0.25])),
        "recurrent_dropout": draw(st.sampled_from([0.0, 0.25])),
        "k1": k1,
        "k2": None if k1 is None else k1 + draw(st.integers(0, 4)),
        "seq_len": draw(st.integers(2, 7)),
        "source": draw(st.sampled_from(["stream", "examples"])),
        "schedule": draw(st.sampled_from([None, "epoch", "step"])),
        "eval_every": draw(st.integers(1, 4)),
        "patience": draw(st.sampled_from([None, 1, 2])),
        "steps": draw(st.integers(3, 12)),
        "seed": draw(st.integers(0, 2**16)),
    }


def build(c, loss_fn, interrupt_update=0):
    config = NetworkConfig(input_size=V, output_size=V, cell=c["cell"], hidden_size=5, num_layers=c["layers"],
                           input_kind="embedding", embedding_size=3, dropout=c["dropout"],
                           input_dropout=c["input_dropout"], recurrent_dropout=c["recurrent_dropout"])
    model = SequenceNetwork(config, rng=c["seed"])
    optimizer = InterruptedAdam(model.parameters(), lr=0.02)
    optimizer.interrupt_at = interrupt_update
    schedule = None if c["schedule"] is None else StepDecay(optimizer, step_size=1, gamma=0.8)
    return Trainer(model, optimizer, loss_fn, k1=c["k1"], k2=c["k2"], clip_norm=1.0, schedule=schedule,
                   schedule_unit=c["schedule"] or "epoch")


def data(c):
    """Training batches (4 per epoch) and a validation set, of the configuration's kind."""
    rng = np.random.default_rng(c["seed"])
    T = c["seq_len"]
    if c["source"] == "stream":
        return (StreamBatches(rng.integers(V, size=3 * 4 * T + 1), 3, T),
                StreamBatches(rng.integers(V, size=2 * 2 * T + 1), 2, T))
    tokens = rng.integers(V, size=(12, T + 1))
    held_out = rng.integers(V, size=(4, T + 1))
    return (ExampleBatches(tokens[:, :-1], tokens[:, 1:], strategy="minibatch", batch_size=3, seed=c["seed"],
                          per_step=True),
            ExampleBatches(held_out[:, :-1], held_out[:, 1:], strategy="full", batch_size=4, per_step=True))


def fit(trainer, c, batches, validation, directory, steps=None):
    return trainer.fit(batches, steps=steps or c["steps"], validation=validation, eval_every=c["eval_every"],
                       patience=c["patience"], checkpoint_dir=directory)


@settings(max_examples=20, deadline=None)
@given(c=configurations(), draw=st.data())
def test_interrupt_anywhere_restore_and_continue_is_bit_identical(c, draw):
    batches, validation = data(c)
    with tempfile.TemporaryDirectory() as tmp:
        straight_dir, split_dir = Path(tmp, "straight"), Path(tmp, "split")
        counting = CountingLoss()
        straight = build(c, counting)
        fit(straight, c, batches, validation, straight_dir)

        how = draw.draw(st.sampled_from(["loss", "update", "stop"]), label="interruption")
        if how == "stop":
            first = build(c, softmax_cross_entropy)
            fit(first, c, batches, validation, split_dir, steps=draw.draw(st.integers(1, straight.state.step)))
        else:
            total = counting.calls if how == "loss" else straight.optimizer.updates
            n = draw.draw(st.integers(1, total), label="interrupted call")
            first = (build(c, interrupted_on_call(n)) if how == "loss"
                     else build(c, softmax_cross_entropy, interrupt_update=n))
            with pytest.raises(KeyboardInterrupt):
                fit(first, c, batches, validation, split_dir)

        resumed = build(c, softmax_cross_entropy)
        resumed.restore(split_dir / "last.safetensors")
        fit(resumed, c, batches, validation, split_dir)

        assert resumed.state.step == straight.state.step
        assert_same_training(straight, resumed)
        assert_same_checkpoint(straight_dir / "last.safetensors", split_dir / "last.safetensors")
        assert (straight_dir / "best.safetensors").exists() == (split_dir / "best.safetensors").exists()
        if (straight_dir / "best.safetensors").exists():
            assert_same_checkpoint(straight_dir / "best.safetensors", split_dir / "best.safetensors")
