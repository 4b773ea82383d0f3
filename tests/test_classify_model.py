"""The many-to-one models: padding a batch changes nothing in the outputs or the gradients (the
final state is each sequence's last real state, both directions), and the whole classifier's
backward on a masked batch agrees with finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient, relative_error

from rnnkit.apps.classify.model import ClassifierConfig, SequenceClassifier, SequenceRegressor
from rnnkit.data.batches import Padded
from rnnkit.network import NetworkConfig

LENGTHS = [5, 2, 6, 1]
VOCABULARY = 9


def classifier(cell: str, layers: int = 2, bidirectional: bool = True, pool: str = "last",
               **options) -> SequenceClassifier:
    config = NetworkConfig(input_size=VOCABULARY, output_size=3, cell=cell, hidden_size=4, num_layers=layers,
                           input_kind="embedding", embedding_size=3, bidirectional=bidirectional, **options)
    return SequenceClassifier(ClassifierConfig(config, pool=pool), dtype=np.float64, rng=7)


def padded_ids(rng, lengths, steps):
    """Ids (steps, B) with junk (any id, even <pad>'s 0 or out of range) after each length."""
    ids = rng.integers(2, VOCABULARY, (steps, len(lengths)))  # real tokens: not <pad> (0) or <unk> (1)
    mask = np.arange(steps)[:, None] < np.array(lengths)[None, :]
    ids[~mask] = rng.integers(-5, 50, int((~mask).sum()))
    return ids, mask


def gradients(model) -> dict[str, np.ndarray]:
    return {name: p.grad.copy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_padding_changes_nothing_in_outputs_or_gradients(cell):
    rng = np.random.default_rng(0)
    model = classifier(cell)
    targets = np.array([0, 2, 1, 1])
    ids, mask = padded_ids(rng, LENGTHS, max(LENGTHS))

    outputs, _, cache = model.forward(Padded(ids, mask))
    _, d_outputs = model.loss(outputs, targets)
    model.zero_grad()
    model.backward(d_outputs, cache)
    batch_grads = gradients(model)

    # The same batch with four more steps of padding (junk ids): the same numbers.
    more_ids, more_mask = padded_ids(rng, LENGTHS, max(LENGTHS) + 4)
    more_ids[: len(ids)][mask] = ids[mask]
    more_outputs, _, more_cache = model.forward(Padded(more_ids, more_mask))
    np.testing.assert_allclose(more_outputs, outputs, rtol=0, atol=1e-13)
    model.zero_grad()
    model.backward(model.loss(more_outputs, targets)[1], more_cache)
    for name, grad in gradients(model).items():
        np.testing.assert_allclose(grad, batch_grads[name], rtol=0, atol=1e-13, err_msg=name)

    # Each sequence alone, unpadded: the same output, and the gradients add up to the batch's.
    model.zero_grad()
    for b, length in enumerate(LENGTHS):
        alone, _, alone_cache = model.forward(ids[:length, b:b + 1])
        np.testing.assert_allclose(alone[0], outputs[b], rtol=0, atol=1e-12)
        model.backward(d_outputs[b:b + 1], alone_cache)
    for name, grad in gradients(model).items():
        np.testing.assert_allclose(grad, batch_grads[name], rtol=0, atol=1e-12, err_msg=name)
    assert not batch_grads["embedding.weight"][0].any()  # <pad> (id 0 on padded steps) learns nothing


@pytest.mark.parametrize("cell,layers,bidirectional,pool", [
    ("lstm", 2, True, "last"), ("gru", 1, True, "last"), ("rnn", 2, False, "last"),
    ("lstm", 2, True, "mean"), ("lstm", 1, True, "max"), ("gru", 1, True, "mean")])  # pooled: rnnkit.pooling
def test_masked_batch_gradients_match_finite_differences(cell, layers, bidirectional, pool):
    rng = np.random.default_rng(1)
    model = classifier(cell, layers, bidirectional, pool)
    for p in model.parameters():  # no zero biases: a wrong bias gradient must show
        p.value[...] = rng.uniform(-0.8, 0.8, p.shape)
    ids, mask = padded_ids(rng, [3, 1, 4], 5)
    targets = np.array([2, 0, 1])
    batch = Padded(ids, mask)

    def loss() -> float:
        return model.loss(model.forward(batch)[0], targets)[0]

    outputs, _, cache = model.forward(batch)
    model.zero_grad()
    model.backward(model.loss(outputs, targets)[1], cache)
    for name, p in model.named_parameters():
        assert relative_error(p.grad, numeric_gradient(loss, p.value)) < 1e-6, name


def test_regressor_on_features_matches_finite_differences_and_ignores_padding():
    rng = np.random.default_rng(2)
    network = NetworkConfig(input_size=3, output_size=1, cell="lstm", hidden_size=4, bidirectional=True)
    model = SequenceRegressor(ClassifierConfig(network, "regression", target_mean=1.5, target_scale=2.0),
                              dtype=np.float64, rng=3)
    x = rng.standard_normal((6, 3, 3))
    mask = np.arange(6)[:, None] < np.array([3, 6, 2])[None, :]
    x[~mask] = 1e6  # padding values never enter
    targets = rng.standard_normal(3)
    batch = Padded(x, mask)

    def loss() -> float:
        return model.loss(model.forward(batch)[0], targets)[0]

    outputs, _, cache = model.forward(batch)
    model.zero_grad()
    dx, _ = model.backward(model.loss(outputs, targets)[1], cache)
    assert dx.shape == x.shape and not dx[~mask].any()
    clean = np.where(mask[..., None], x, 0.0)
    batch = Padded(clean, mask)
    assert relative_error(dx, numeric_gradient(loss, clean)) < 1e-6
    for name, p in model.named_parameters():
        assert relative_error(p.grad, numeric_gradient(loss, p.value)) < 1e-6, name
    # predict undoes the standardisation: mu + sigma * y
    predicted = model.predict(np.swapaxes(clean, 0, 1), np.swapaxes(mask, 0, 1))
    np.testing.assert_allclose(predicted, 1.5 + 2.0 * outputs[:, 0], rtol=1e-12)


def test_predict_in_chunks_of_similar_length_keeps_the_order():
    rng = np.random.default_rng(3)
    model = classifier("gru")
    ids, mask = padded_ids(rng, [4, 1, 6, 2, 3], 6)
    rows_ids, rows_mask = ids.T, mask.T
    expected = np.stack([model.forward(ids[:n, b:b + 1])[0][0] for b, n in enumerate(mask.sum(0))])
    np.testing.assert_allclose(model.outputs(rows_ids, rows_mask, batch_size=2), expected, atol=1e-12)
    probabilities = model.predict_proba(rows_ids, rows_mask)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert (model.predict(rows_ids, rows_mask) == expected.argmax(axis=1)).all()


def test_configuration_round_trip_and_checks():
    network = NetworkConfig(input_size=5, output_size=1, hidden_size=3)
    config = ClassifierConfig(network, "regression", 0.5, 2.0)
    assert ClassifierConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="one output"):
        ClassifierConfig(NetworkConfig(input_size=5, output_size=2, hidden_size=3), "regression")
    with pytest.raises(ValueError, match="at least two classes"):
        ClassifierConfig(network)
    with pytest.raises(ValueError, match="unknown task"):
        ClassifierConfig(network, "ranking")
    with pytest.raises(ValueError, match="needs a classification"):
        SequenceClassifier(config)
    model = classifier("lstm")
    with pytest.raises(ValueError, match="at least one real step"):
        model.forward(Padded(np.zeros((3, 2), np.int64), np.array([[1, 0], [1, 0], [0, 0]], bool)))
