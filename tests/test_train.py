"""The trainer: strategies, learning, early stopping, divergence, checkpoints, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from training_checks import (
    assert_same_checkpoint,
    assert_same_training,
    interrupted_on_call,
)

from rnnkit.checkpoint import load_checkpoint
from rnnkit.data import ExampleBatches, StreamBatches
from rnnkit.losses import mse, softmax_cross_entropy
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import SGD, Adam
from rnnkit.schedules import StepDecay
from rnnkit.train import Trainer, TrainingDiverged


def adding_problem(n, steps, seed):
    """Hochreiter & Schmidhuber's adding problem, one target per step (the running answer is
    only asked for at the last step: the mask)."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, (n, steps))
    marks = np.zeros((n, steps))
    for row in marks:
        row[rng.choice(steps, 2, replace=False)] = 1
    inputs = np.stack([values, marks], axis=2).astype(np.float32)
    targets = np.zeros((n, steps, 1), dtype=np.float32)
    targets[:, -1, 0] = (values * marks).sum(axis=1)
    mask = np.zeros((n, steps), dtype=bool)
    mask[:, -1] = True
    return inputs, targets, mask


def lm_setup(dropout=0.0, seed=0, **options):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(6, size=2000)
    config = NetworkConfig(input_size=6, output_size=6, hidden_size=8, num_layers=2, input_kind="embedding",
                           embedding_size=4, dropout=dropout, **options)
    model = SequenceNetwork(config, rng=1)
    optimizer = Adam(model.parameters(), lr=0.01)
    schedule = StepDecay(optimizer, step_size=1, gamma=0.9)
    trainer = Trainer(model, optimizer, softmax_cross_entropy, k1=5, k2=8, clip_norm=1.0, schedule=schedule)
    return trainer, StreamBatches(tokens, batch_size=4, seq_len=10)


@pytest.mark.parametrize("strategy,expected", [("full", [12]), ("stochastic", [1] * 12), ("minibatch", [5, 5, 2])])
def test_gradient_descent_strategies(strategy, expected):
    inputs, targets, mask = adding_problem(12, 6, 0)
    batches = ExampleBatches(inputs, targets, mask=mask, strategy=strategy, batch_size=5, seed=3)
    sizes = [batches.batch(0, k)[0].shape[1] for k in range(len(batches))]
    assert sizes == expected
    if strategy != "stochastic":  # each example exactly once per epoch
        seen = np.concatenate([batches.batch(1, k)[0].swapaxes(0, 1) for k in range(len(batches))])
        assert sorted(map(bytes, seen)) == sorted(map(bytes, inputs))
    again = ExampleBatches(inputs, targets, mask=mask, strategy=strategy, batch_size=5, seed=3)
    np.testing.assert_array_equal(batches.batch(2, 0)[0], again.batch(2, 0)[0])
    with pytest.raises(ValueError, match="unknown strategy"):
        ExampleBatches(inputs, targets, strategy="sometimes")


def test_stream_batches_are_parallel_contiguous_streams():
    tokens = np.arange(103)
    batches = StreamBatches(tokens, batch_size=4, seq_len=5)
    first, first_targets, _ = batches.batch(0, 0)
    second = batches.batch(0, 1)[0]
    assert first.shape == (5, 4) and len(batches) == 5
    np.testing.assert_array_equal(first[:, 1], np.arange(25, 30))  # stream 1 starts a quarter in
    np.testing.assert_array_equal(second[:, 1], np.arange(30, 35))  # and continues next batch
    np.testing.assert_array_equal(first_targets, first + 1)
    with pytest.raises(ValueError, match="too few"):
        StreamBatches(np.arange(20), batch_size=4, seq_len=5)


def test_training_lowers_the_loss_on_the_adding_problem():
    inputs, targets, mask = adding_problem(256, 12, 1)
    config = NetworkConfig(input_size=2, output_size=1, hidden_size=16)
    model = SequenceNetwork(config, rng=0)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), mse, k1=4, k2=12)
    batches = ExampleBatches(inputs, targets, mask=mask, strategy="minibatch", batch_size=32, seed=0)
    before = trainer.evaluate(batches)
    history = trainer.fit(batches, epochs=25)
    after = trainer.evaluate(batches)
    assert before > 0.1 and after < 0.3 * before  # predicting the mean scores ~0.17
    assert history[-1]["epoch"] == 24 and len(history) == 25 * len(batches)


def test_early_stopping_after_patience_evaluations():
    inputs, targets, mask = adding_problem(16, 5, 2)
    model = SequenceNetwork(NetworkConfig(input_size=2, output_size=1, hidden_size=4), rng=0)
    trainer = Trainer(model, SGD(model.parameters(), lr=1e-30), mse)  # the loss cannot improve
    batches = ExampleBatches(inputs, targets, mask=mask, strategy="full")
    history = trainer.fit(batches, steps=50, validation=batches, eval_every=2, patience=3)
    assert len(history) == 8 and history[-1].get("early_stop")
    assert all("val_loss" in r for r in history[1::2])


def test_a_run_that_stopped_early_stays_stopped_when_resumed(tmp_path):
    inputs, targets, mask = adding_problem(16, 5, 2)
    batches = ExampleBatches(inputs, targets, mask=mask, strategy="full")
    trainers = []
    for _ in range(2):
        model = SequenceNetwork(NetworkConfig(input_size=2, output_size=1, hidden_size=4), rng=0)
        trainers.append(Trainer(model, SGD(model.parameters(), lr=1e-30), mse))  # the loss cannot improve
    stopped, resumed = trainers
    stopped.fit(batches, steps=50, validation=batches, eval_every=2, patience=3, checkpoint_dir=tmp_path)
    resumed.restore(tmp_path / "last.safetensors")
    history = resumed.fit(batches, steps=50, validation=batches, eval_every=2, patience=3)
    assert len(history) == 8 and history[-1]["early_stop"]
    history = resumed.fit(batches, steps=50, validation=batches, eval_every=2, patience=4)  # more patience
    assert len(history) == 10 and history[-1]["early_stop"]


def test_a_run_shorter_than_eval_every_still_ends_with_an_evaluation_and_a_best_checkpoint(tmp_path):
    trainer, batches = lm_setup()
    history = trainer.fit(batches, steps=7, validation=batches, eval_every=5, checkpoint_dir=tmp_path)
    assert [r["step"] for r in history if "val_loss" in r] == [5, 7]
    assert history[-1]["val_loss"] == pytest.approx(trainer.evaluate(batches))
    assert (tmp_path / "best.safetensors").exists()
    history = trainer.fit(batches, steps=10, validation=batches, eval_every=5)  # ends on an evaluation step
    assert [r["step"] for r in history if "val_loss" in r] == [5, 10]  # training on withdrew step 7's


def test_a_run_without_a_scheduled_evaluation_gets_its_best_from_the_end_of_run_evaluation(tmp_path):
    trainer, batches = lm_setup()
    trainer.fit(batches, steps=3, validation=batches, eval_every=5, checkpoint_dir=tmp_path)
    assert trainer.state.best_loss == trainer.state.history[-1]["val_loss"]
    assert load_checkpoint(tmp_path / "best.safetensors")[1]["trainer"]["step"] == 3
    trainer.fit(batches, steps=3, validation=batches, eval_every=5)  # nothing to do: nothing changes
    assert trainer.state.end_evaluation == {"keys": ["val_loss"], "set_best": True}
    trainer.fit(batches, steps=4, validation=batches, eval_every=5, checkpoint_dir=tmp_path)
    assert "val_loss" not in trainer.state.history[2] and "val_loss" in trainer.state.history[3]
    assert load_checkpoint(tmp_path / "best.safetensors")[1]["trainer"]["step"] == 4


def test_callbacks_see_every_step_and_can_stop_training():
    trainer, batches = lm_setup()
    seen = []

    def callback(t, record):
        seen.append(record["step"])
        if record["step"] == 3:
            t.should_stop = True

    trainer.callbacks.append(callback)
    trainer.fit(batches, steps=10)
    assert seen == [1, 2, 3]


def test_divergence_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    inputs, targets, mask = adding_problem(8, 5, 3)
    inputs[7, 2, 0] = np.nan  # example 7: in the second minibatch of epoch 0 with seed 0
    model = SequenceNetwork(NetworkConfig(input_size=2, output_size=1, hidden_size=4), rng=0)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), mse)
    batches = ExampleBatches(inputs, targets, mask=mask, strategy="minibatch", batch_size=4, seed=0)
    assert np.isnan(batches.batch(0, 1)[0]).any() and not np.isnan(batches.batch(0, 0)[0]).any()
    with pytest.raises(TrainingDiverged, match="step 2: the loss is nan"):
        trainer.fit(batches, steps=4, checkpoint_dir=tmp_path, save_every=1)
    for _, p in model.named_parameters():
        assert np.isfinite(p.value).all()
    tensors, info = load_checkpoint(tmp_path / "last.safetensors")
    assert info["trainer"]["step"] == 1  # the last good step's checkpoint, intact
    for name, p in model.named_parameters():  # and the model still holds exactly those weights
        np.testing.assert_array_equal(tensors[name], p.value)


@pytest.mark.parametrize("options", [{}, {"input_dropout": 0.2, "recurrent_dropout": 0.3}],
                         ids=["dropout", "variational-dropout"])
def test_resume_is_bit_exact(tmp_path, options):
    straight, batches = lm_setup(dropout=0.3, **options)
    straight.fit(batches, steps=12)

    first, _ = lm_setup(dropout=0.3, **options)
    first.fit(batches, steps=7, checkpoint_dir=tmp_path)
    resumed, _ = lm_setup(dropout=0.3, **options)
    resumed.restore(tmp_path / "last.safetensors")
    assert resumed.state.step == 7
    resumed.fit(batches, steps=12)
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        np.testing.assert_array_equal(a.value, b.value, err_msg=name)
    assert straight.optimizer.lr == resumed.optimizer.lr
    assert [r["loss"] for r in straight.state.history] == [r["loss"] for r in resumed.state.history]


def issue_19_setup(loss_fn=softmax_cross_entropy):
    """Issue 19's run: a 1 x 8 LSTM on 2,000 random tokens of 6 symbols, 4 streams read 20 steps
    at a time, Adam 1e-2, k1 = k2 = 5: four windows, four updates a step."""
    tokens = np.random.default_rng(0).integers(6, size=2000)
    config = NetworkConfig(input_size=6, output_size=6, hidden_size=8, input_kind="embedding", embedding_size=4)
    model = SequenceNetwork(config, rng=1)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), loss_fn, k1=5, k2=5)
    return trainer, StreamBatches(tokens, 4, 20)


def test_ctrl_c_between_windows_rolls_the_step_back_and_resumes_exactly(tmp_path):
    straight, batches = issue_19_setup()
    straight.fit(batches, steps=6)

    interrupted, _ = issue_19_setup(interrupted_on_call(3 * 4 + 3))  # the 3rd window of the 4th step
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(batches, steps=6, checkpoint_dir=tmp_path)
    resumed, _ = issue_19_setup()
    resumed.restore(tmp_path / "last.safetensors")
    resumed.fit(batches, steps=6)
    assert resumed.optimizer.step_count == straight.optimizer.step_count == 24
    assert_same_training(straight, resumed)
    # The trainer in memory was rolled back too: it says what the checkpoint holds.
    assert interrupted.state.step == 3 and interrupted.optimizer.step_count == 12


@pytest.mark.parametrize("split", [12, 13])
def test_the_end_of_run_evaluation_does_not_change_early_stopping_after_a_resume(tmp_path, split):
    validation = StreamBatches(np.random.default_rng(5).integers(6, size=400), 4, 20)
    options = {"validation": validation, "eval_every": 5, "patience": 2}
    straight, batches = issue_19_setup()
    straight.fit(batches, steps=40, checkpoint_dir=tmp_path / "straight", **options)

    first, _ = issue_19_setup()
    first.fit(batches, steps=split, checkpoint_dir=tmp_path / "split", **options)
    assert "val_loss" in first.state.history[-1]  # the end-of-run evaluation reports
    resumed, _ = issue_19_setup()
    resumed.restore(tmp_path / "split" / "last.safetensors")
    resumed.fit(batches, steps=40, checkpoint_dir=tmp_path / "split", **options)
    assert resumed.state.step == straight.state.step == 20
    assert_same_training(straight, resumed)
    for name in ("best.safetensors", "last.safetensors"):
        assert_same_checkpoint(tmp_path / "straight" / name, tmp_path / "split" / name)


def test_restore_refuses_a_different_model(tmp_path):
    trainer, batches = lm_setup()
    trainer.fit(batches, steps=1, checkpoint_dir=tmp_path)
    config = NetworkConfig(input_size=6, output_size=6, hidden_size=16, num_layers=2, input_kind="embedding",
                           embedding_size=4)
    other = SequenceNetwork(config)
    different = Trainer(other, Adam(other.parameters()), softmax_cross_entropy)
    with pytest.raises(ValueError, match="different model.*hidden_size"):
        different.restore(tmp_path / "last.safetensors")


def test_ctrl_c_saves_a_checkpoint(tmp_path):
    trainer, batches = lm_setup()

    def interrupt(t, record):
        if record["step"] == 2:
            raise KeyboardInterrupt

    trainer.callbacks.append(interrupt)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(batches, steps=10, checkpoint_dir=tmp_path)
    assert load_checkpoint(tmp_path / "last.safetensors")[1]["trainer"]["step"] == 2


def test_checkpoint_weights_load_into_torch(tmp_path):
    trainer, batches = lm_setup()
    trainer.fit(batches, steps=3, checkpoint_dir=tmp_path)
    tensors = load_file(str(tmp_path / "last.safetensors"))
    lstm = torch.nn.LSTM(4, 8, 2)
    lstm.load_state_dict({k[len("rnn."):]: v for k, v in tensors.items() if k.startswith("rnn.")})
    x = np.random.default_rng(0).standard_normal((7, 2, 4)).astype(np.float32)
    ours = trainer.model.rnn.forward(x)[0]
    theirs = lstm(torch.from_numpy(x))[0].detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_bad_trainer_options():
    trainer, _ = lm_setup()
    with pytest.raises(ValueError, match="k2 >= k1"):
        Trainer(trainer.model, trainer.optimizer, mse, k1=5, k2=3)
    with pytest.raises(ValueError, match="k2 needs k1"):
        Trainer(trainer.model, trainer.optimizer, mse, k2=3)
    with pytest.raises(ValueError, match="clip_norm must be positive"):
        Trainer(trainer.model, trainer.optimizer, mse, clip_norm=0)
    with pytest.raises(ValueError, match="needs a limit"):
        trainer.fit(StreamBatches(np.arange(100) % 6, 2, 5))


def test_a_validation_score_picks_the_best_weights_and_stops_training():
    trainer, batches = lm_setup()
    scores = iter([3.0, 2.0, 2.5, 2.6, 1.0])
    kept = {}

    def remember(t, record):
        if record.get("val_score") == 2.0:
            kept.update(t.model.state_dict())

    trainer.callbacks.append(remember)
    history = trainer.fit(batches, steps=50, eval_every=2, patience=2, score=lambda: next(scores))
    assert [r["val_score"] for r in history if "val_score" in r] == [3.0, 2.0, 2.5, 2.6]
    assert history[-1]["step"] == 8 and history[-1]["early_stop"]
    for name, value in trainer.best_weights.items():
        np.testing.assert_array_equal(value, kept[name])


def test_the_history_counts_updates_as_well_as_steps():
    """A step is one batch; truncated BPTT makes one update per window (issue 19: the history had
    no count of updates). Seq-len 20 with k1 = 5: four updates a step."""
    trainer, batches = issue_19_setup()
    history = trainer.fit(batches, steps=3)
    assert [record["updates"] for record in history] == [4, 8, 12]
    assert trainer.optimizer.state_dict()["step_count"] == 12
