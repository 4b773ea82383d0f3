"""Pooling over time: one summary vector of a sequence from its states at every real step (a
many-to-one read-out that sees every step, not only the last one).

    y (T, B, F)      the states of every step; m (T, B) true on each sequence's real steps,
                     n_b = sum_t m_tb >= 1 (padding at the end, or anywhere)
    mean             z_b = (1 / n_b) sum_t m_tb y_tb                              (B, F)
    max              z_bf = max_{t : m_tb} y_tbf, t*_bf the first step reaching it

Backward, with dz = dL/dz (B, F):
    mean             dL/dy_tb = m_tb dz_b / n_b
    max              dL/dy_tbf = dz_bf where t = t*_bf, else 0 (the subgradient of the first maximum)

Padded steps get a zero gradient and never change z, whatever their values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["POOLS", "PoolCache", "pool_backward", "pool_forward"]

POOLS = ("mean", "max")


@dataclass
class PoolCache:
    kind: str
    shape: tuple[int, ...]
    mask: np.ndarray  # (T, B) bool
    counts: np.ndarray | None  # mean: n_b (B,)
    argmax: np.ndarray | None  # max: t*_bf (B, F)


def pool_forward(kind: str, y: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, PoolCache]:
    """z (B, F) of y (T, B, F) over the steps where mask (T, B) is true (None: every step)."""
    if kind not in POOLS:
        raise ValueError(f"unknown pooling {kind!r}; choose one of {', '.join(POOLS)}")
    y = np.asarray(y)
    if y.ndim != 3 or y.shape[0] == 0:
        raise ValueError(f"pooling reads states (time, batch, features) with at least one step, got shape {y.shape}")
    mask = np.ones(y.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != y.shape[:2]:
        raise ValueError(f"the mask must cover (time, batch) = {y.shape[:2]}, got shape {mask.shape}")
    counts = mask.sum(axis=0)
    if not counts.all():
        raise ValueError("every sequence needs at least one real step to pool over (its mask is all false)")
    if kind == "mean":
        total = np.where(mask[..., None], y, 0).sum(axis=0)
        return (total / counts[:, None]).astype(y.dtype), PoolCache(kind, y.shape, mask, counts, None)
    masked = np.where(mask[..., None], y, -np.inf)
    argmax = masked.argmax(axis=0)  # (B, F): the first step with the largest real value
    z = np.take_along_axis(y, argmax[None], axis=0)[0]
    return z, PoolCache(kind, y.shape, mask, None, argmax)


def pool_backward(d_pooled: np.ndarray, cache: PoolCache) -> np.ndarray:
    """dL/dy (T, B, F) from dL/dz (B, F)."""
    d_pooled = np.asarray(d_pooled)
    if d_pooled.shape != cache.shape[1:]:
        raise ValueError(f"the pooled gradient must have shape {cache.shape[1:]}, got {d_pooled.shape}")
    if cache.kind == "mean":
        return cache.mask[..., None] * (d_pooled / cache.counts[:, None])[None].astype(d_pooled.dtype)
    dy = np.zeros(cache.shape, dtype=d_pooled.dtype)
    np.put_along_axis(dy, cache.argmax[None], d_pooled[None], axis=0)
    return dy
