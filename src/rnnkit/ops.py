"""Elementwise activations and the softmax family.

Every activation carries its derivative written from its *output* y = f(x), which is what a
recurrent cell keeps in its cache (so backward never recomputes a pre-activation):

    sigmoid      y = 1 / (1 + e^-x)             dy/dx = y (1 - y)
    tanh         y = tanh(x)                    dy/dx = 1 - y^2
    relu         y = max(0, x)                  dy/dx = [y > 0]
    leaky_relu   y = max(a x, x), 0 < a < 1     dy/dx = 1 if y > 0 else a
    elu          y = x if x > 0 else e^x - 1    dy/dx = 1 if y > 0 else y + 1
    identity     y = x                          dy/dx = 1
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Activation",
    "ACTIVATIONS",
    "get_activation",
    "sigmoid",
    "softmax",
    "log_softmax",
]


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic sigmoid, computed as 0.5 tanh(x/2) + 0.5: overflow-free for any x, and the
    fastest plain-NumPy form on this machine (../shared/PERF.md)."""
    y = np.multiply(x, 0.5, out=out)
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return y


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _relu_grad(y: np.ndarray) -> np.ndarray:
    return (y > 0).astype(y.dtype)


def _elu(x: np.ndarray) -> np.ndarray:
    # expm1 of min(x, 0) so that large positive x never overflows the unused branch.
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def _elu_grad(y: np.ndarray) -> np.ndarray:
    return np.where(y > 0, 1.0, y + 1.0).astype(y.dtype, copy=False)


def _tanh_grad(y: np.ndarray) -> np.ndarray:
    return 1.0 - y * y


def _sigmoid_grad(y: np.ndarray) -> np.ndarray:
    return y * (1.0 - y)


def _identity(x: np.ndarray) -> np.ndarray:
    return x.copy()


def _ones_like(y: np.ndarray) -> np.ndarray:
    return np.ones_like(y)


@dataclass(frozen=True)
class Activation:
    """An elementwise function f and its derivative expressed through y = f(x)."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    grad_from_output: Callable[[np.ndarray], np.ndarray]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)


def leaky_relu(slope: float = 0.1) -> Activation:
    """The lecture's max(slope * x, x); slope must lie in (0, 1) so the output's sign tells the
    branch, which is what lets the derivative be read from the output."""
    if not 0.0 < slope < 1.0:
        raise ValueError(f"leaky_relu slope must be in (0, 1), got {slope}")
    return Activation(
        f"leaky_relu({slope})",
        lambda x: np.where(x > 0, x, slope * x),
        lambda y: np.where(y > 0, 1.0, slope).astype(y.dtype, copy=False),
    )


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", sigmoid, _sigmoid_grad),
    "tanh": Activation("tanh", np.tanh, _tanh_grad),
    "relu": Activation("relu", _relu, _relu_grad),
    "leaky_relu": leaky_relu(0.1),
    "elu": Activation("elu", _elu, _elu_grad),
    "identity": Activation("identity", _identity, _ones_like),
}


def get_activation(name: str | Activation) -> Activation:
    """Look an activation up by name (or pass an `Activation` through)."""
    if isinstance(name, Activation):
        return name
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}"
        ) from None


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(z)_k = z_k - max(z) - log sum_j exp(z_j - max(z)); subtracting the maximum
    keeps exp() from overflowing."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax(z)_k = exp(z_k - max z) / sum_j exp(z_j - max z)."""
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)
