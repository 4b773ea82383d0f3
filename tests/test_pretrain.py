"""Language-model pretraining of a classifier's encoder (`rnnkit.pretrain`, Dai & Le 2015): the
two-way language model's backward agrees with finite differences, neither direction reads the
word it predicts, padding changes nothing, and end to end on a tiny generated text the language
model's loss falls, the classifier starts from the pretrained weights, and fine-tuning lowers
the classification loss."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient, relative_error

from rnnkit.apps.classify.model import ClassifierConfig, SequenceClassifier
from rnnkit.apps.classify.training import Examples, encoder_parameters, plan_training, pretrain_language_model
from rnnkit.data.batches import Padded
from rnnkit.layers import Embedding
from rnnkit.network import NetworkConfig
from rnnkit.pretrain import EncoderLanguageModel, SentenceBatches, pretrain_encoder
from rnnkit.recurrent import GRU, LSTM

VOCABULARY = 8


def language_model(bidirectional=True, cell=LSTM, layers=1, dropout=0.0):
    embedding = Embedding(VOCABULARY, 3, dtype=np.float64, rng=1)
    rnn = cell(3, 4, layers, bidirectional=bidirectional, dtype=np.float64, rng=2)
    return EncoderLanguageModel(embedding, rnn, dropout=dropout, rng=3)


def padded(rng, lengths, steps):
    ids = rng.integers(2, VOCABULARY, (steps, len(lengths)))
    mask = np.arange(steps)[:, None] < np.array(lengths)[None, :]
    ids[~mask] = rng.integers(-5, 50, int((~mask).sum()))  # junk: padding ids may be anything
    return ids, mask


@pytest.mark.parametrize("bidirectional,cell", [(True, LSTM), (False, GRU)])
def test_language_model_gradients_match_finite_differences(bidirectional, cell):
    rng = np.random.default_rng(0)
    model = language_model(bidirectional, cell)
    for p in model.parameters():  # no zero biases: a wrong bias gradient must show
        p.value[...] = rng.uniform(-0.8, 0.8, p.shape)
    ids, mask = padded(rng, [4, 2, 5], 6)
    batch = Padded(ids, mask)

    def loss() -> float:
        return model.loss(model.forward(batch)[0], ids, mask)[0]

    logits, _, cache = model.forward(batch)
    assert logits.shape == (6, 3, 2 if bidirectional else 1, VOCABULARY)
    model.zero_grad()
    model.backward(model.loss(logits, ids, mask)[1], cache)
    for name, p in model.named_parameters():
        assert relative_error(p.grad, numeric_gradient(loss, p.value)) < 1e-6, name


def test_each_direction_predicts_a_word_it_has_not_read():
    rng = np.random.default_rng(1)
    model = language_model()
    ids, mask = padded(rng, [5], 5)
    logits = model.forward(Padded(ids, mask))[0]
    changed = ids.copy()
    changed[2] = (changed[2] - 1) % (VOCABULARY - 2) + 2  # another real word at step 2
    other = model.forward(Padded(changed, mask))[0]
    # forward direction: steps 0, 1 (which predict words 1 and 2) have not read word 2
    np.testing.assert_array_equal(other[:2, :, 0], logits[:2, :, 0])
    assert not np.allclose(other[2:, :, 0], logits[2:, :, 0])
    # reverse direction: steps 3, 4 (which predict words 2 and 3) have not read word 2
    np.testing.assert_array_equal(other[3:, :, 1], logits[3:, :, 1])
    assert not np.allclose(other[:3, :, 1], logits[:3, :, 1])
    # and the loss counts 4 predictions per direction of a 5-word sentence: a change of the
    # first word's logit in the forward direction (which predicts word 1) moves it
    d_logits = model.loss(logits, ids, mask)[1]
    assert np.count_nonzero(np.abs(d_logits).sum(axis=-1)) == 8


def test_padding_changes_nothing():
    rng = np.random.default_rng(2)
    model = language_model()
    lengths = [4, 1, 6, 2]
    ids, mask = padded(rng, lengths, 6)
    logits, _, cache = model.forward(Padded(ids, mask))
    loss, d_logits = model.loss(logits, ids, mask)
    model.zero_grad()
    model.backward(d_logits, cache)
    grads = {name: p.grad.copy() for name, p in model.named_parameters()}
    # each sentence alone, weighted by its share of the batch's predictions
    predictions = sum(max(n - 1, 0) for n in lengths)
    model.zero_grad()
    total = 0.0
    for b, n in enumerate(lengths):
        alone = ids[:n, b:b + 1]
        alone_logits, _, alone_cache = model.forward(Padded(alone, np.ones_like(alone, dtype=bool)))
        np.testing.assert_allclose(alone_logits[:, 0], logits[:n, b], rtol=0, atol=1e-12)
        if n > 1:
            part, d_part = model.loss(alone_logits, alone, np.ones_like(alone, dtype=bool))
            total += part * (n - 1) / predictions
            model.backward(d_part * (n - 1) / predictions, alone_cache)
    assert total == pytest.approx(loss, abs=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name], rtol=0, atol=1e-12, err_msg=name)


def test_refuses_what_would_leak_and_bad_input():
    with pytest.raises(ValueError, match="bidirectional stack of more than one layer"):
        language_model(layers=2)
    model = language_model()
    ids = np.array([[2, 3, 0]])
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        pretrain_encoder(model.embedding, model.rnn, ids, ids > 0, epochs=0)
    with pytest.raises(ValueError, match="two words or more"):
        pretrain_encoder(model.embedding, model.rnn, np.array([[2, 0]]), np.array([[True, False]]), epochs=1)


def test_sentence_batches_give_ids_as_their_own_targets():
    ids = np.array([[2, 3, 4], [5, 6, 0], [7, 0, 0]])
    batches = SentenceBatches(ids, ids > 0, batch_size=3)
    inputs, targets, mask = batches.batch(0, 0)
    np.testing.assert_array_equal(inputs.inputs, targets)
    np.testing.assert_array_equal(inputs.mask, mask)
    assert sorted(map(tuple, targets.T.tolist())) == sorted(map(tuple, ids.tolist()))


def cyclic_sentences(rng, count: int):
    """Sentences of a tiny language: each word follows the previous one round a cycle of 6 words
    (ids 2..7); the class is whether the sentence starts in the first half of the cycle."""
    ids = np.zeros((count, 8), dtype=np.int64)
    mask = np.zeros((count, 8), dtype=bool)
    labels = np.zeros(count, dtype=np.int64)
    for i in range(count):
        n, start = int(rng.integers(3, 9)), int(rng.integers(0, 6))
        ids[i, :n] = 2 + (start + np.arange(n)) % 6
        mask[i, :n] = True
        labels[i] = int(start < 3)
    return ids, mask, labels


def small_classifier() -> SequenceClassifier:
    """A bidirectional LSTM classifier with a mean-pooled head, always from the same weights."""
    network = NetworkConfig(input_size=VOCABULARY, output_size=2, hidden_size=8, input_kind="embedding",
                            embedding_size=6, bidirectional=True)
    return SequenceClassifier(ClassifierConfig(network, pool="mean"), rng=0)


def test_pretraining_then_fine_tuning_end_to_end():
    rng = np.random.default_rng(3)
    ids, mask, labels = cyclic_sentences(rng, 160)
    model = small_classifier()
    fresh = {name: p.value.copy() for name, p in model.named_parameters()}

    losses = pretrain_language_model(model, ids, mask, epochs=4, lr=0.02, batch=16, clip=5.0, seed=0)
    assert len(losses) == 4 and losses[-1] < 0.5 * losses[0]  # the language is learnable: the loss falls

    # the classifier's encoder holds the pretrained weights: its embedding and recurrent layer
    # moved (the head did not), to exactly what a language model trained apart from it, from the
    # same initial weights and seed, ends with
    after = {name: p.value.copy() for name, p in model.named_parameters()}
    for name in fresh:
        assert np.array_equal(after[name], fresh[name]) == name.startswith("head"), name
    twin = small_classifier()
    twin_losses = pretrain_encoder(twin.embedding, twin.rnn, ids, mask, epochs=4, batch_size=16, lr=0.02,
                                   dropout=twin.config.network.dropout, clip=5.0, seed=0)
    assert twin_losses == losses
    for name, p in twin.named_parameters():
        np.testing.assert_array_equal(after[name], p.value, err_msg=name)

    # fine-tuning the whole classifier lowers the classification loss
    plan = plan_training(model, Examples(ids, mask, labels), None, batch=16, lr=0.01, weight_decay=0.0, clip=5.0,
                         patience=None, seed=0)
    history = plan.run(epochs=6).state.history
    per_epoch = [np.mean([r["loss"] for r in history[k:k + plan.updates_per_epoch]])
                 for k in range(0, len(history), plan.updates_per_epoch)]
    assert per_epoch[-1] < 0.5 * per_epoch[0]
    assert (model.predict(ids, mask) == labels).mean() > 0.9
    assert any(not np.array_equal(p.value, after[name]) for name, p in model.named_parameters()
               if name.startswith("rnn"))  # the pretrained layer is fine-tuned, not frozen


def test_a_frozen_encoder_waits_its_epochs_then_trains_at_its_scaled_rate():
    rng = np.random.default_rng(4)
    ids, mask, labels = cyclic_sentences(rng, 64)
    model = small_classifier()
    fresh = {name: p.value.copy() for name, p in model.named_parameters()}
    plan = plan_training(model, Examples(ids, mask, labels), None, batch=16, lr=0.01, weight_decay=0.0, clip=5.0,
                         patience=None, seed=0, freeze_encoder_epochs=2, encoder_lr_scale=0.1)
    encoder = {id(p) for p in encoder_parameters(model)}
    assert len(encoder) == len(list(model.embedding.parameters())) + len(list(model.rnn.parameters()))
    seen = {}

    def snapshot(trainer, record) -> None:
        if record["step"] % plan.updates_per_epoch == 0:
            seen[record["step"] // plan.updates_per_epoch] = (
                {name: p.value.copy() for name, p in model.named_parameters()}, list(trainer.optimizer.lr_scales))

    plan.run(epochs=3, callbacks=(snapshot,))
    for epoch in (1, 2):  # frozen: the embedding and recurrent layer as initialised, the head trained
        values, _ = seen[epoch]
        for name in fresh:
            assert np.array_equal(values[name], fresh[name]) == (not name.startswith("head")), (epoch, name)
    scales = dict(zip((id(p) for p in plan.trainer.optimizer.params), seen[3][1]))
    assert {scales[i] for i in encoder} == {0.1} and set(scales.values()) == {0.1, 1.0}
    for name in fresh:  # the third epoch trains the encoder too
        assert not np.array_equal(seen[3][0][name], seen[2][0][name]), name
    with pytest.raises(ValueError, match="encoder_lr_scale"):
        plan_training(model, Examples(ids, mask, labels), None, batch=16, lr=0.01, weight_decay=0.0, clip=5.0,
                      patience=None, seed=0, encoder_lr_scale=0.0)


def test_the_loss_scores_the_next_word_forward_and_the_previous_word_in_reverse():
    ids = np.array([[2], [5], [3], [7]])  # one sentence of four words, (T, B)
    mask = np.ones_like(ids, dtype=bool)
    logits = np.zeros((4, 1, 2, VOCABULARY))
    for t in range(3):
        logits[t, 0, 0, ids[t + 1, 0]] = 50.0  # forward: step t names word t+1
        logits[t + 1, 0, 1, ids[t, 0]] = 50.0  # reverse: step t+1 names word t
    assert EncoderLanguageModel.loss(logits, ids, mask)[0] < 1e-12
    swapped = logits[:, :, ::-1]  # each direction naming the other's word
    assert EncoderLanguageModel.loss(swapped, ids, mask)[0] > 10


def test_a_smaller_output_vocabulary_predicts_the_rest_as_unknown():
    ids = np.array([[2, 6, 3, 7], [5, 4, 0, 0]])
    mask = ids > 0
    batches = SentenceBatches(ids, mask, words=np.where(ids < 4, ids, 1), batch_size=2)
    inputs, words, _ = batches.batch(0, 0)
    np.testing.assert_array_equal(np.where(inputs.inputs < 4, inputs.inputs, 1), words)
    model = language_model()
    losses = pretrain_encoder(model.embedding, model.rnn, ids, mask, epochs=2, output_size=4, unknown_id=1)
    assert len(losses) == 2 and all(np.isfinite(losses))
    small = EncoderLanguageModel(model.embedding, model.rnn, output_size=4)
    assert small.forward(Padded(ids.T, mask.T))[0].shape == (4, 2, 2, 4)
    with pytest.raises(ValueError, match="output_size must be between 2"):
        EncoderLanguageModel(model.embedding, model.rnn, output_size=VOCABULARY + 1)
    with pytest.raises(ValueError, match="unknown_id must be an id below output_size 4"):
        pretrain_encoder(model.embedding, model.rnn, ids, mask, epochs=1, output_size=4, unknown_id=4)


def test_keeping_only_the_pretrained_word_vectors():
    rng = np.random.default_rng(4)
    ids, mask, _ = cyclic_sentences(rng, 40)
    network = NetworkConfig(input_size=VOCABULARY, output_size=2, hidden_size=8, input_kind="embedding",
                            embedding_size=6, bidirectional=True)
    model = SequenceClassifier(ClassifierConfig(network), rng=0)
    fresh = {name: p.value.copy() for name, p in model.named_parameters()}
    pretrain_language_model(model, ids, mask, epochs=1, lr=0.02, batch=16, clip=5.0, seed=0, keep="embedding")
    for name, p in model.named_parameters():
        assert np.array_equal(p.value, fresh[name]) == (name != "embedding.weight"), name
    with pytest.raises(ValueError, match="unknown transfer 'rnn'"):
        pretrain_language_model(model, ids, mask, epochs=1, lr=0.02, batch=16, clip=5.0, seed=0, keep="rnn")
