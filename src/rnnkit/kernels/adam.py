"""Adam and AdamW (`rnnkit.optim`, the NumPy reference) as one compiled pass per parameter.

NumPy's Adam makes about a dozen passes over each parameter and its two moment buffers, with
temporaries; this reads and writes each element once, in the reference's order of operations:

    g = grad + weight_decay * p              (AdamW: p = p * (1 - lr * weight_decay))
    m = m + (1 - beta1) * (g - m)
    v = beta2 * v + (1 - beta2) * g * g       v_max = max(v_max, v)   (amsgrad)
    p = p - step_size * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def adam_pass(value, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, one_minus_beta1, beta2, one_minus_beta2,
              weight_decay, decay_factor, correction2, eps, step_size, coupled_decay, decoupled_decay, amsgrad):
    """All arrays 1-D and contiguous; scalars in the arrays' dtype."""
    for k in range(value.shape[0]):
        p = value[k]
        g = grad[k]
        if coupled_decay:
            g = g + weight_decay * p
        if decoupled_decay:
            p = p * decay_factor
        m = exp_avg[k] + one_minus_beta1 * (g - exp_avg[k])
        v = exp_avg_sq[k] * beta2 + one_minus_beta2 * g * g
        exp_avg[k] = m
        exp_avg_sq[k] = v
        if amsgrad:
            v = max(max_exp_avg_sq[k], v)
            max_exp_avg_sq[k] = v
        denom = math.sqrt(v) / correction2 + eps
        value[k] = p - m / denom * step_size


def update(optimizer, value: np.ndarray, grad: np.ndarray, state: dict) -> None:
    """One Adam/AdamW step of one parameter, in place (the optimizer's `_update`)."""
    real = value.dtype.type
    beta1, beta2 = optimizer.betas
    t = optimizer.step_count
    decoupled = optimizer.decoupled_weight_decay
    has_decay = optimizer.weight_decay != 0
    max_sq = state["max_exp_avg_sq"] if optimizer.amsgrad else state["exp_avg_sq"]
    adam_pass(value.reshape(-1), grad.reshape(-1), state["exp_avg"].reshape(-1), state["exp_avg_sq"].reshape(-1),
              max_sq.reshape(-1), real(1 - beta1), real(beta2), real(1 - beta2), real(optimizer.weight_decay),
              real(1 - optimizer.lr * optimizer.weight_decay), real((1 - beta2 ** t) ** 0.5), real(optimizer.eps),
              real(optimizer.lr / (1 - beta1 ** t)), has_decay and not decoupled, has_decay and decoupled,
              bool(optimizer.amsgrad))
