"""Layer normalisation (Ba, Kiros & Hinton 2016), the one forward/backward every normalised
cell uses, over the last axis of whatever it is given (one step (B, W) or a sequence (T, B, W)):

    mu = mean_k(v_k)       sigma = sqrt(mean_k((v_k - mu)^2) + eps)
    v_hat = (v - mu) / sigma                                        (zero mean, unit variance)
    y = gain * v_hat + shift                                        gain init 1, shift init 0

Backward, with dy arriving at y (W the width; means over the normalised axis):

    d_gain  += sum over rows of dy * v_hat        d_shift += sum over rows of dy
    d_v_hat  = dy * gain
    dv       = (d_v_hat - mean_k(d_v_hat) - v_hat * mean_k(d_v_hat * v_hat)) / sigma

A normalisation without a shift (`shift=False`) is used where a bias follows anyway: LN(v) + b
with its own shift would be LN(v) + (shift + b), two parameters for one sum.
"""

from __future__ import annotations

import numpy as np

from ..module import Parameter

EPS = 1e-5  # PyTorch's nn.LayerNorm default


class LayerNorm:
    """Learned gain (and optionally shift) of width `width`; the statistics of each call are
    written into caller-owned arrays, so a cell keeps them in its per-step cache."""

    def __init__(self, width: int, dtype, shift: bool = True):
        self.weight = Parameter(np.ones(width, dtype=dtype))
        self.bias = Parameter(np.zeros(width, dtype=dtype)) if shift else None

    def forward(self, v: np.ndarray, normalised: np.ndarray, inv_std: np.ndarray) -> np.ndarray:
        """y = gain * v_hat + shift; writes v_hat into `normalised` (v's shape) and 1/sigma
        into `inv_std` (v's shape with a last axis of 1)."""
        centred = v - v.mean(axis=-1, keepdims=True)
        inv_std[...] = 1.0 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + EPS)
        np.multiply(centred, inv_std, out=normalised)
        y = normalised * self.weight.value
        if self.bias is not None:
            y += self.bias.value
        return y

    def backward(self, dy: np.ndarray, normalised: np.ndarray, inv_std: np.ndarray) -> np.ndarray:
        """dL/dv from dL/dy and the forward's v_hat and 1/sigma; adds d_gain and d_shift."""
        rows = dy.reshape(-1, dy.shape[-1])
        self.weight.grad += np.einsum("nk,nk->k", rows, normalised.reshape(rows.shape))
        if self.bias is not None:
            self.bias.grad += rows.sum(axis=0)
        d_hat = dy * self.weight.value
        dv = d_hat - d_hat.mean(axis=-1, keepdims=True)
        dv -= normalised * (d_hat * normalised).mean(axis=-1, keepdims=True)
        dv *= inv_std
        return dv


def statistics(shape: tuple[int, ...], dtype) -> tuple[np.ndarray, np.ndarray]:
    """Empty (v_hat, 1/sigma) arrays for normalising arrays of `shape` over the last axis."""
    return np.empty(shape, dtype=dtype), np.empty(shape[:-1] + (1,), dtype=dtype)
