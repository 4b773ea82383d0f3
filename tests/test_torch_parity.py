"""rnnkit's RNN/LSTM/GRU against torch.nn.RNN/LSTM/GRU: outputs, final states and every gradient
(input, initial state, each parameter), with weights moved by state dict in both directions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnkit

PAIRS = {
    "lstm": (rnnkit.LSTM, torch.nn.LSTM, {}),
    "gru": (rnnkit.GRU, torch.nn.GRU, {}),
    "rnn_tanh": (rnnkit.RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (rnnkit.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
}
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def components(state):
    return [state] if not isinstance(state, (tuple, list)) else list(state)


def close(ours: np.ndarray, theirs: torch.Tensor, dtype) -> float:
    """Largest difference relative to the reference's largest magnitude (at least 1)."""
    reference = theirs.detach().numpy()
    assert ours.shape == reference.shape
    return float(np.abs(ours - reference).max() / max(1.0, np.abs(reference).max()))


def run_pair(kind, dtype, layers, bidirectional, batch_first, steps, batch, bias, seed, ours_first):
    ours_cls, torch_cls, options = PAIRS[kind]
    rng = np.random.default_rng(seed)
    input_size, hidden = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    ours = ours_cls(input_size, hidden, layers, bias=bias, batch_first=batch_first,
                    bidirectional=bidirectional, dtype=dtype, rng=seed, **options)
    torch.manual_seed(seed)
    theirs = torch_cls(input_size, hidden, layers, bias=bias, batch_first=batch_first,
                       bidirectional=bidirectional, **options).to(TORCH_DTYPE[dtype])
    if ours_first:  # ours -> torch
        theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    else:  # torch -> ours
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())

    x = rng.standard_normal((batch, steps, input_size) if batch_first else (steps, batch, input_size)).astype(dtype)
    state0 = [rng.standard_normal(c.shape).astype(dtype) for c in components(ours.initial_state(batch))]
    y, final, cache = ours.forward(x, ours._pack(state0))

    x_t = torch.tensor(x, requires_grad=True)
    state0_t = [torch.tensor(c, requires_grad=True) for c in state0]
    y_t, final_t = theirs(x_t, state0_t[0] if len(state0_t) == 1 else tuple(state0_t))

    dy = rng.standard_normal(y.shape).astype(dtype)
    dfinal = [rng.standard_normal(c.shape).astype(dtype) for c in components(final)]
    loss = (y_t * torch.from_numpy(dy)).sum() + sum(
        (c * torch.from_numpy(d)).sum() for c, d in zip(components(final_t), dfinal))
    loss.backward()
    dx, dstate0 = ours.backward(dy, cache, ours._pack(dfinal))

    errors = {"output": close(y, y_t, dtype), "input grad": close(dx, x_t.grad, dtype)}
    for name, ours_c, theirs_c in zip("hc", components(final), components(final_t)):
        errors[f"final {name}"] = close(ours_c, theirs_c, dtype)
    for name, ours_d, theirs_c in zip("hc", components(dstate0), state0_t):
        errors[f"initial {name} grad"] = close(ours_d, theirs_c.grad, dtype)
    torch_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        errors[name] = close(param.grad, torch_params[name].grad, dtype)
    return errors


@settings(max_examples=100, deadline=None)
@given(
    kind=st.sampled_from(sorted(PAIRS)),
    dtype=st.sampled_from([np.float64, np.float32]),
    layers=st.integers(1, 3),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    steps=st.sampled_from([1, 2, 7]),
    batch=st.sampled_from([1, 3]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
    ours_first=st.booleans(),
)
def test_matches_pytorch(kind, dtype, layers, bidirectional, batch_first, steps, batch, bias, seed, ours_first):
    errors = run_pair(kind, dtype, layers, bidirectional, batch_first, steps, batch, bias, seed, ours_first)
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE[dtype], f"{worst}: {errors[worst]:.2e}"


@pytest.mark.parametrize("kind", sorted(PAIRS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_pytorch_every_kind(kind, dtype):
    """The largest configuration of each kind, so no kind is left to chance."""
    errors = run_pair(kind, dtype, 3, True, False, 5, 3, True, seed=5, ours_first=True)
    assert max(errors.values()) < TOLERANCE[dtype]


def test_state_dict_shapes_are_pytorchs():
    ours = rnnkit.LSTM(3, 5, 2, bidirectional=True)
    theirs = torch.nn.LSTM(3, 5, 2, bidirectional=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
