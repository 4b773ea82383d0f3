"""Truncated BPTT(k1, k2): (a) k1 = k2 = T is exactly full BPTT; (b) each window's gradient equals
torch autograd's on the graph detached at the window's start with the losses masked to the
window's last k1 steps, within a batch and across the batches of a stream, and with an update
after every window (property-based); (c) windows with carried state compute the outputs of one
whole pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data import StreamBatches
from rnnkit.losses import softmax_cross_entropy
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import SGD
from rnnkit.tbptt import history_length, truncated_bptt, windows
from rnnkit.train import Trainer

T, B, V, H = 11, 3, 5, 4


def make_network(cell="lstm", layers=2):
    config = NetworkConfig(input_size=V, output_size=V, cell=cell, hidden_size=H, num_layers=layers,
                           input_kind="embedding", embedding_size=3)
    return SequenceNetwork(config, dtype=np.float64, rng=0)


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(V, size=(T, B)), rng.integers(V, size=(T, B))


def grads(model):
    return {name: p.grad.copy() for name, p in model.named_parameters()}


def test_window_bounds():
    # A short last window still backpropagates k2 steps from its end (Williams & Peng).
    assert windows(10, 4, 4) == [(0, 0, 4), (4, 4, 8), (6, 8, 10)]
    assert windows(10, 3, 5) == [(0, 0, 3), (1, 3, 6), (4, 6, 9), (5, 9, 10)]
    assert windows(5, 5, 5) == [(0, 0, 5)]
    # After 3 kept steps of the stream, the first windows reach into them.
    assert windows(6, 2, 5, past=3) == [(-3, 0, 2), (-1, 2, 4), (1, 4, 6)]
    assert windows(6, 2, 5, past=1) == [(-1, 0, 2), (-1, 2, 4), (1, 4, 6)]
    assert history_length(6, 2, 5) == 3 and history_length(1, 2, 5) == 4 and history_length(6, 4, 4) == 0


@pytest.mark.parametrize("k1,k2", [(0, 3), (3, 2), (-1, -1), (2.5, 3), (True, 2)])
def test_bad_truncation_is_rejected(k1, k2):
    with pytest.raises(ValueError, match="k1|k2"):
        windows(10, k1, k2)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_full_window_is_exactly_full_bptt(cell):
    model = make_network(cell)
    inputs, targets = make_data()
    model.zero_grad()
    state, losses, _ = truncated_bptt(model, softmax_cross_entropy, inputs, targets, None, T, T)
    windowed = grads(model)

    model.zero_grad()
    outputs, final, cache = model.forward(inputs)
    loss, d_outputs = softmax_cross_entropy(outputs, targets)
    model.backward(d_outputs, cache)
    assert losses == [(loss, T * B)]
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(windowed[name], p.grad, err_msg=name)
    for a, b in zip(state, final):
        np.testing.assert_array_equal(a, b)


TORCH_CELLS = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}


def torch_twin(model):
    """The same network in torch, with our weights: (embedding, recurrent stack, head)."""
    config = model.config
    embedding = torch.nn.Embedding(V, config.embedding_size).double()
    rnn = TORCH_CELLS[config.cell](config.embedding_size, H, config.num_layers).double()
    head = torch.nn.Linear(H, V).double()
    state = model.state_dict()
    embedding.load_state_dict({"weight": torch.tensor(state["embedding.weight"])})
    rnn.load_state_dict({k[4:]: torch.tensor(v) for k, v in state.items() if k.startswith("rnn.")})
    head.load_state_dict({k[5:]: torch.tensor(v) for k, v in state.items() if k.startswith("head.")})
    return embedding, rnn, head


def torch_names(twin):
    _, rnn, head = twin
    return (["embedding.weight"] + [f"rnn.{n}" for n, _ in rnn.named_parameters()]
            + [f"head.{n}" for n, _ in head.named_parameters()])


def torch_zero_state(model, batch):
    zeros = torch.zeros(model.config.num_layers, batch, H, dtype=torch.float64)
    return (zeros, zeros.clone()) if model.config.cell == "lstm" else zeros


def detached(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def torch_window(twin, x, y, state, start, injected, end, split=None):
    """Autograd on one window: steps [start, end) from `state` (detached: the gradient stops
    there), the mean cross-entropy of the injected steps [injected, end). Returns (loss,
    {name: gradient}, the detached state at `split`, the state at `end`)."""
    embedding, rnn, head = twin
    params = [*embedding.parameters(), *rnn.parameters(), *head.parameters()]
    for p in params:
        p.grad = None
    split = start if split is None else split
    first, at_split = rnn(embedding(x[start:split]), detached(state)) if split > start else (None, detached(state))
    second, at_end = rnn(embedding(x[split:end]), at_split) if end > split else (None, at_split)
    hidden = torch.cat([h for h in (first, second) if h is not None])
    logits = head(hidden)[injected - start:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y[injected:end].reshape(-1))
    loss.backward()
    grads_ = {name: p.grad.numpy().copy() for name, p in zip(torch_names(twin), params)}
    return loss.item(), grads_, detached(at_split), detached(at_end)


def assert_same_grads(ours, theirs, atol=1e-12):
    for name, grad in theirs.items():
        np.testing.assert_allclose(ours[name], grad, rtol=0, atol=atol, err_msg=name)


def states_entering_every_step(twin, model, x):
    """With fixed weights, the state entering each step of one whole pass over x."""
    embedding, rnn, _ = twin
    with torch.no_grad():
        states, state = [], torch_zero_state(model, x.shape[1])
        for t in range(len(x)):
            states.append(state)
            state = rnn(embedding(x[t:t + 1]), state)[1]
    return states


@pytest.mark.parametrize("k1,k2", [(3, 3), (2, 5), (3, 4), (1, 3), (4, 11)])
def test_windows_match_torch_autograd_on_detached_graph(k1, k2):
    model = make_network()
    inputs, targets = make_data(1)
    ours = []

    def record(loss, index):
        ours.append((loss, grads(model)))
        model.zero_grad()

    model.zero_grad()
    truncated_bptt(model, softmax_cross_entropy, inputs, targets, None, k1, k2, after_window=record)

    twin = torch_twin(model)
    x, y = torch.tensor(inputs), torch.tensor(targets)
    states = states_entering_every_step(twin, model, x)  # the weights do not change in this test
    ends = list(range(k1, T, k1)) + [T]
    assert len(ends) == len(ours)
    for (our_loss, our_grads), previous_end, end in zip(ours, [0] + ends, ends):
        start = max(0, end - k2)
        loss, theirs, _, _ = torch_window(twin, x, y, states[start], start, previous_end, end)
        assert abs(loss - our_loss) < 1e-12
        assert_same_grads(our_grads, theirs)


class RecordingSGD(SGD):
    """Records the gradients of every update and leaves the weights as they are."""

    def __init__(self, model):
        super().__init__(model.parameters(), lr=1.0)
        self.model, self.updates = model, []

    def step(self):
        self.updates.append(grads(self.model))


def test_windows_reach_k2_steps_back_into_the_previous_stream_batch():
    # char-rnn's streams, 2 batches of 6 steps, BPTT(2, 5): every window backpropagates 5 steps
    # (fewer only at the start of the epoch), the second batch's first one 3 steps into the first.
    model = make_network()
    batches = StreamBatches(np.random.default_rng(3).integers(V, size=2 * 6 * B + 1), B, 6)
    optimizer = RecordingSGD(model)
    Trainer(model, optimizer, softmax_cross_entropy, k1=2, k2=5).fit(batches, steps=2)

    twin = torch_twin(model)
    x, y = torch.tensor(batches.streams[:-1]), torch.tensor(batches.streams[1:])  # the whole stream
    states = states_entering_every_step(twin, model, x)
    ends = [2, 4, 6, 8, 10, 12]
    assert len(optimizer.updates) == len(ends)
    for our_grads, previous_end, end in zip(optimizer.updates, [0] + ends, ends):
        start = max(0, end - 5)
        assert_same_grads(our_grads, torch_window(twin, x, y, states[start], start, previous_end, end)[1])


@settings(max_examples=20, deadline=None)
@given(cell=st.sampled_from(["lstm", "gru", "rnn"]), layers=st.integers(1, 2), k1=st.integers(1, 4),
       extra=st.integers(0, 5), steps=st.integers(1, 6), lr=st.sampled_from([0.0, 0.3]), seed=st.integers(0, 99))
def test_truncation_reach_matches_torch_across_batches_with_an_update_after_every_window(
        cell, layers, k1, extra, steps, lr, seed):
    """BPTT(k1, k2) over 3 batches of one stream, SGD after every window. The reference, in
    global step numbers: window j ends at e_j on each batch's grid of k1, starts at
    s_j = max(0, e_j - k2); its state at s_j is the one window j-1 computed there (the gradient
    stops at it), and [s_j, e_j) runs again with the current weights."""
    k2, batch_count = k1 + extra, 3
    config = NetworkConfig(input_size=V, output_size=V, cell=cell, hidden_size=H, num_layers=layers,
                           input_kind="embedding", embedding_size=3)
    model = SequenceNetwork(config, dtype=np.float64, rng=seed)
    twin = torch_twin(model)
    stream = np.random.default_rng(seed).integers(V, size=(batch_count * steps + 1, 2))
    x, y = torch.tensor(stream[:-1]), torch.tensor(stream[1:])

    ours = []

    def update(loss, index):
        ours.append((loss, grads(model)))
        for _, p in model.named_parameters():
            p.value -= lr * p.grad
        model.zero_grad()

    history = None
    model.zero_grad()
    for b in range(batch_count):
        batch = slice(b * steps, (b + 1) * steps)
        history = truncated_bptt(model, softmax_cross_entropy, stream[:-1][batch], stream[1:][batch], None, k1, k2,
                                 after_window=update, history=history,
                                 keep=history_length(steps, k1, k2)).history

    ends = [b * steps + min(j, steps) for b in range(batch_count) for j in range(k1, steps + k1, k1)]
    starts = [max(0, end - k2) for end in ends]
    assert len(ours) == len(ends)
    state = torch_zero_state(model, 2)
    params = [*twin[0].parameters(), *twin[1].parameters(), *twin[2].parameters()]
    for j, ((our_loss, our_grads), end) in enumerate(zip(ours, ends)):
        injected = ends[j - 1] if j else 0
        split = starts[j + 1] if j + 1 < len(ends) else end
        loss, theirs, state, _ = torch_window(twin, x, y, state, starts[j], injected, end, split)
        assert abs(loss - our_loss) < 1e-10
        assert_same_grads(our_grads, theirs, atol=1e-10)
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad


@pytest.mark.parametrize("k1,k2", [(3, 3), (2, 5), (4, 7)])
def test_windows_with_carried_state_compute_the_whole_pass(k1, k2):
    model = make_network("gru")
    inputs, targets = make_data(2)
    seen = []

    def recording_loss(outputs, targets_, mask):
        seen.append(outputs[mask.astype(bool)].reshape(-1, B, V))
        return softmax_cross_entropy(outputs, targets_, mask)

    state, _, _ = truncated_bptt(model, recording_loss, inputs, targets, None, k1, k2)
    whole, final, _ = model.forward(inputs)
    np.testing.assert_allclose(np.concatenate(seen), whole, rtol=0, atol=1e-14)
    np.testing.assert_allclose(state, final, rtol=0, atol=1e-14)
