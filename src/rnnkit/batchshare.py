"""Dropout masks under data-parallel training: every process draws the masks of the whole global
batch and keeps the rows it holds.

With N processes each training a block of rows of one global batch (`rnnkit.distributed`), a
mask drawn per process from identically seeded generators would repeat itself across the
blocks (row i of every block masked alike), and would differ from what one process draws for
the whole batch. Inside `batch_share((start, stop, total))`, `random_for_batch` draws the
uniform numbers for all `total` rows (the batch axis is the second to last: (T, B, H) or
(B, H)) and returns rows start:stop. So each process's mask is exactly its block of the one
process's mask, and the generators of all processes stay in step (each draws the same numbers),
which keeps checkpoints, saved from rank 0, valid for every rank.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import numpy as np

__all__ = ["batch_share", "random_for_batch"]

_SHARE: ContextVar[tuple[int, int, int] | None] = ContextVar("rnnkit_batch_share", default=None)


@contextlib.contextmanager
def batch_share(share: tuple[int, int, int] | None) -> Iterator[None]:
    """Inside the block, this process holds rows start:stop of a global batch of `total` rows
    (None: the whole batch, as without data parallelism)."""
    token = _SHARE.set(share)
    try:
        yield
    finally:
        _SHARE.reset(token)


def random_for_batch(rng: np.random.Generator, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """`rng.random(shape, dtype)`, or, inside `batch_share`, this process's rows of the draw for
    the whole global batch (batch axis -2)."""
    share = _SHARE.get()
    if share is None or len(shape) < 2 or shape[-2] != share[1] - share[0]:
        return rng.random(shape, dtype=dtype)
    start, stop, total = share
    return rng.random((*shape[:-2], total, shape[-1]), dtype=dtype)[..., start:stop, :]
