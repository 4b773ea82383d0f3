"""ExampleBatches: per-step and per-sequence targets, said explicitly, never guessed from a shape."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.batches import STRATEGIES, Conditioned, ExampleBatches


def test_per_sequence_targets_as_long_as_the_sequences_are_not_transposed():  # issue 19, defect 7
    inputs = np.zeros((8, 4, 1), dtype=np.float32)  # 8 sequences of 4 steps
    targets = np.arange(32).reshape(8, 4)  # a 4-vector per sequence
    with pytest.raises(ValueError, match=r"could be one per step \(4 steps\) or one \(4,\) array per "
                                         r"sequence; pass per_step=True or per_step=False"):
        ExampleBatches(inputs, targets, strategy="full")
    per_sequence = ExampleBatches(inputs, targets, strategy="full", per_step=False).batch(0, 0)[1]
    assert per_sequence.shape == (8, 4) and per_sequence[0].tolist() == [0, 1, 2, 3]
    per_step = ExampleBatches(inputs, targets, strategy="full", per_step=True).batch(0, 0)[1]
    assert per_step.shape == (4, 8) and per_step[0].tolist() == [0, 4, 8, 12, 16, 20, 24, 28]


def test_unambiguous_targets_need_no_argument_and_contradictions_are_refused():
    inputs = np.zeros((6, 3, 2), dtype=np.float32)
    mask = np.ones((6, 3), dtype=bool)
    assert ExampleBatches(inputs, np.zeros((6, 3, 1)), mask=mask).per_step  # a loss mask is per step
    assert not ExampleBatches(inputs, np.zeros(6)).per_step
    assert not ExampleBatches(inputs, np.zeros((6, 5))).per_step  # 5 != 3 steps
    with pytest.raises(ValueError, match=r"one target per step needs targets \(examples, 3 steps, ...\), "
                                         r"got shape \(6, 5\)"):
        ExampleBatches(inputs, np.zeros((6, 5)), per_step=True)
    with pytest.raises(ValueError, match=r"a loss mask over steps needs one target per step.*per_step=False"):
        ExampleBatches(inputs, np.zeros((6, 3)), mask=mask, per_step=False)
    with pytest.raises(ValueError, match=r"a loss mask over steps needs one target per step"):
        ExampleBatches(inputs, np.zeros(6), mask=mask)


@st.composite
def example_sets(draw):
    """inputs whose values name their example, targets of a drawn layout whose sizes may
    coincide with the number of steps, and the arguments of a batch source."""
    examples, steps = draw(st.integers(1, 7)), draw(st.integers(1, 5))
    per_step = draw(st.booleans())
    sizes = st.sampled_from([steps, 1, 2, 3])  # a per-sequence size equal to T is the trap
    trailing = tuple(draw(st.lists(sizes, max_size=2)))
    target_shape = (examples,) + ((steps,) if per_step else ()) + trailing
    features = tuple(draw(st.lists(st.integers(1, 3), max_size=1)))
    inputs = np.broadcast_to(np.arange(examples, dtype=np.float32).reshape((examples,) + (1,) * (1 + len(features))),
                             (examples, steps) + features)
    targets = np.arange(np.prod(target_shape)).reshape(target_shape)
    mask = None
    if per_step and draw(st.booleans()):
        mask = np.arange(examples * steps).reshape(examples, steps) % 3 != 0
    options = dict(strategy=draw(st.sampled_from(STRATEGIES)), batch_size=draw(st.integers(1, 8)),
                   seed=draw(st.integers(0, 3)), mask=mask)
    if draw(st.booleans()):
        options["context"] = np.arange(examples) * 10
    return inputs, targets, per_step, options


def expected_batch(batch, inputs, targets, per_step, mask):
    """The (targets, mask) the batch must hold, given the examples its inputs come from."""
    batch_inputs = batch[0].inputs if isinstance(batch[0], Conditioned) else batch[0]
    assert batch_inputs.shape[0] == inputs.shape[1]  # time-major
    chosen = batch_inputs[0].reshape(batch_inputs.shape[1], -1)[:, 0].astype(int)
    if isinstance(batch[0], Conditioned):
        np.testing.assert_array_equal(batch[0].context, chosen * 10)
    if per_step:
        return targets[chosen].swapaxes(0, 1), None if mask is None else mask[chosen].T
    return targets[chosen], None


@settings(max_examples=50, deadline=None)
@given(case=example_sets(), epoch=st.integers(0, 3), data=st.data())
def test_batches_hold_the_targets_of_their_examples_in_the_said_layout(case, epoch, data):
    inputs, targets, per_step, options = case
    said = ExampleBatches(inputs, targets, per_step=per_step, **options)
    try:
        unsaid = ExampleBatches(inputs, targets, **options)
    except ValueError as error:  # ambiguous: it must say so, never guess
        assert "pass per_step=True or per_step=False" in str(error)
        unsaid = None
    position = data.draw(st.integers(0, len(said) - 1))
    batch = said.batch(epoch, position)
    want_targets, want_mask = expected_batch(batch, inputs, targets, per_step, options["mask"])
    np.testing.assert_array_equal(batch[1], want_targets)
    assert (batch[2] is None) == (want_mask is None)
    if want_mask is not None:
        np.testing.assert_array_equal(batch[2], want_mask)
    if unsaid is not None:
        again = unsaid.batch(epoch, position)
        np.testing.assert_array_equal(again[1], batch[1])
        assert again[1].shape == batch[1].shape
    for evaluation in said.in_order():
        np.testing.assert_array_equal(evaluation[1], expected_batch(evaluation, inputs, targets, per_step,
                                                                    options["mask"])[0])
