"""Comparing a layer with equations written independently in torch operations: the same random
inputs, initial states and upstream gradients through both; torch autograd is the oracle for the
gradients (test_torch_oracle.py, test_layer_norm.py)."""

from __future__ import annotations

import numpy as np
import torch

import rnnkit

H, I, T, B = 3, 2, 4, 2  # noqa: E741  (the lectures' names: hidden, input, time, batch)


def torch_params(layer, suffix="_l0"):
    return {name[: -len(suffix)]: torch.tensor(p.value, requires_grad=True)
            for name, p in layer.named_parameters() if name.endswith(suffix)}


def compare(layer, reference, seed):
    """Run both with random inputs, states and upstream gradients; return the largest error."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, I if isinstance(layer, rnnkit.LSTM) else layer.input_size))
    init = layer.initial_state(B)
    state0 = [rng.standard_normal(c.shape) for c in ([init] if isinstance(init, np.ndarray) else init)]
    y, final, cache = layer.forward(x, layer._pack(state0))
    finals = [final] if isinstance(final, np.ndarray) else list(final)
    dy = rng.standard_normal(y.shape)
    dfinal = [rng.standard_normal(c.shape) for c in finals]
    layer.zero_grad()
    dx, dstate0 = layer.backward(dy, cache, layer._pack(dfinal))
    dstate0 = [dstate0] if isinstance(dstate0, np.ndarray) else list(dstate0)

    params = torch_params(layer)
    x_t = torch.tensor(x, requires_grad=True)
    state_t = [torch.tensor(c[0], requires_grad=True) for c in state0]
    y_t, final_t = reference(params, x_t, *state_t)
    loss = (y_t * torch.tensor(dy)).sum() + sum((c * torch.tensor(d[0])).sum() for c, d in zip(final_t, dfinal))
    loss.backward()

    pairs = [(y, y_t), (dx, x_t.grad)]
    pairs += [(ours[0], theirs) for ours, theirs in zip(finals, final_t)]
    pairs += [(ours[0], theirs.grad) for ours, theirs in zip(dstate0, state_t)]
    pairs += [(p.grad, params[name[:-3]].grad) for name, p in layer.named_parameters()]
    return max(float(np.abs(ours - theirs.detach().numpy()).max()) for ours, theirs in pairs)
