"""Central finite differences for the gradient checks (float64 only)."""

from __future__ import annotations

import numpy as np


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / max(||a|| + ||n||, tiny): scale-free, and meaningful for tiny gradients too."""
    denominator = max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-12)
    return float(np.linalg.norm(analytic - numeric) / denominator)


def numeric_gradient(loss, array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d loss() / d array by central differences, perturbing `array` in place (restored)."""
    grad = np.zeros_like(array)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        original = flat[k]
        flat[k] = original + eps
        plus = loss()
        flat[k] = original - eps
        minus = loss()
        flat[k] = original
        flat_grad[k] = (plus - minus) / (2 * eps)
    return grad


def as_components(state):
    return [state] if isinstance(state, np.ndarray) else list(state)


def check_layer_gradients(layer, x: np.ndarray, rng: np.random.Generator, reset_rng=None) -> dict[str, float]:
    """Compare a recurrent layer's backward with central differences for every parameter, the
    input and every initial-state component. The loss is L = sum(dy * y) + sum(dstate * state_T)
    with random upstream gradients dy and dstate (an all-ones upstream would hide bugs).
    `reset_rng()` is called before each forward so a dropout mask stays fixed.
    Returns the relative error per checked array."""
    reset = reset_rng or (lambda: None)
    batch = x.shape[0] if layer.batch_first else x.shape[1]
    state0 = as_components(layer.initial_state(batch))
    for component in state0:
        component[...] = rng.standard_normal(component.shape)
    reset()
    y, final, cache = layer.forward(x, layer._pack(state0))
    dy = rng.standard_normal(y.shape)
    dfinal = [rng.standard_normal(c.shape) for c in as_components(final)]

    def loss() -> float:
        reset()
        out, end, _ = layer.forward(x, layer._pack(state0))
        return float(np.sum(dy * out) + sum(np.sum(d * c) for d, c in zip(dfinal, as_components(end))))

    layer.zero_grad()
    dx, dstate0 = layer.backward(dy, cache, layer._pack(dfinal))
    errors = {"input": relative_error(dx, numeric_gradient(loss, x))}
    for name, component, analytic in zip(layer.state_names, state0, as_components(dstate0)):
        errors[f"state {name}"] = relative_error(analytic, numeric_gradient(loss, component))
    for name, param in layer.named_parameters():
        errors[name] = relative_error(param.grad, numeric_gradient(loss, param.value))
    return errors
