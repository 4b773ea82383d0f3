"""Truncated BPTT(k1, k2): (a) k1 = k2 = T is exactly full BPTT; (b) each window's gradient equals
torch autograd's on the graph detached at the window's start with the losses masked to the
window's last k1 steps; (c) windows with carried state compute the outputs of one whole pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.losses import softmax_cross_entropy
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.tbptt import truncated_bptt, windows

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


@pytest.mark.parametrize("k1,k2", [(0, 3), (3, 2), (-1, -1), (2.5, 3), (True, 2)])
def test_bad_truncation_is_rejected(k1, k2):
    with pytest.raises(ValueError, match="k1|k2"):
        windows(10, k1, k2)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_full_window_is_exactly_full_bptt(cell):
    model = make_network(cell)
    inputs, targets = make_data()
    model.zero_grad()
    state, losses = truncated_bptt(model, softmax_cross_entropy, inputs, targets, None, T, T)
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


def torch_twin(model):
    """The same network in torch, with our weights."""
    embedding = torch.nn.Embedding(V, 3).double()
    lstm = torch.nn.LSTM(3, H, 2).double()
    head = torch.nn.Linear(H, V).double()
    state = model.state_dict()
    embedding.load_state_dict({"weight": torch.tensor(state["embedding.weight"])})
    lstm.load_state_dict({k[4:]: torch.tensor(v) for k, v in state.items() if k.startswith("rnn.")})
    head.load_state_dict({k[5:]: torch.tensor(v) for k, v in state.items() if k.startswith("head.")})
    return embedding, lstm, head


@pytest.mark.parametrize("k1,k2", [(3, 3), (2, 5), (3, 4), (1, 3), (4, 11)])
def test_windows_match_torch_autograd_on_detached_graph(k1, k2):
    model = make_network()
    inputs, targets = make_data(1)
    ours = []

    def record(loss, index):  # noqa: ARG001
        ours.append((loss, grads(model)))
        model.zero_grad()

    model.zero_grad()
    truncated_bptt(model, softmax_cross_entropy, inputs, targets, None, k1, k2, after_window=record)

    embedding, lstm, head = torch_twin(model)
    x, y = torch.tensor(inputs), torch.tensor(targets)
    with torch.no_grad():  # the state entering every step (weights do not change in this test)
        states, state = [], (torch.zeros(2, B, H, dtype=torch.float64), torch.zeros(2, B, H, dtype=torch.float64))
        for t in range(T):
            states.append(state)
            state = lstm(embedding(x[t:t + 1]), state)[1]
    ends = list(range(k1, T, k1)) + [T]
    assert len(ends) == len(ours)
    previous_end = 0
    for (our_loss, our_grads), end in zip(ours, ends):
        start = max(0, end - k2)
        params = [*embedding.parameters(), *lstm.parameters(), *head.parameters()]
        for p in params:
            p.grad = None
        h0, c0 = (s.detach() for s in states[start])  # the gradient stops at the window's start
        logits = head(lstm(embedding(x[start:end]), (h0, c0))[0])
        injected = slice(previous_end - start, end - start)  # only the losses of the new steps
        loss = torch.nn.functional.cross_entropy(logits[injected].reshape(-1, V), y[start:end][injected].reshape(-1))
        loss.backward()
        assert abs(loss.item() - our_loss) < 1e-12
        names = ["embedding.weight"] + [f"rnn.{n}" for n, _ in lstm.named_parameters()] + \
                [f"head.{n}" for n, _ in head.named_parameters()]
        for name, p in zip(names, params):
            np.testing.assert_allclose(our_grads[name], p.grad.numpy(), rtol=0, atol=1e-12, err_msg=name)
        previous_end = end


@pytest.mark.parametrize("k1,k2", [(3, 3), (2, 5), (4, 7)])
def test_windows_with_carried_state_compute_the_whole_pass(k1, k2):
    model = make_network("gru")
    inputs, targets = make_data(2)
    seen = []

    def recording_loss(outputs, targets_, mask):
        seen.append(outputs[mask.astype(bool)].reshape(-1, B, V))
        return softmax_cross_entropy(outputs, targets_, mask)

    state, _ = truncated_bptt(model, recording_loss, inputs, targets, None, k1, k2)
    whole, final, _ = model.forward(inputs)
    np.testing.assert_allclose(np.concatenate(seen), whole, rtol=0, atol=1e-14)
    np.testing.assert_allclose(state, final, rtol=0, atol=1e-14)
