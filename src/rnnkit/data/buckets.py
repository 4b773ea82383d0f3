"""Mini-batches of sequences of similar length (a bucketing batch source for many-to-one
training), so that little time goes into padding.

Each epoch e, from the generator seeded with (seed, e):

    shuffle the N examples; sort them by length, stably (equal lengths stay shuffled)
    cut the sorted list into batches of `batch_size`; shuffle the order of the batches

Every batch is cut to its own longest sequence and wrapped as `Padded(inputs (T_b, B, ...),
mask (T_b, B))`; when all its sequences have one length the mask is all true and the recurrent
layers run their compiled loops. The targets are one per sequence, (B, ...). Like
`ExampleBatches`, the source is a pure function of (epoch, position), so a trainer resumes from
two integers.
"""

from __future__ import annotations

import copy

import numpy as np

from .batches import EmptyShare, Padded, share_bounds, share_of

__all__ = ["LengthBuckets"]


class LengthBuckets:
    """inputs (N, T, ...) padded at the end, mask (N, T) of real steps, targets (N, ...)."""

    carries_state = False

    def __init__(self, inputs: np.ndarray, mask: np.ndarray, targets: np.ndarray, *, batch_size: int = 32,
                 seed: int = 0):
        inputs, mask, targets = np.asarray(inputs), np.asarray(mask, dtype=bool), np.asarray(targets)
        if len(inputs) == 0:
            raise ValueError("no examples to batch")
        if mask.shape != inputs.shape[:2] or len(targets) != len(inputs):
            raise ValueError(f"inputs {inputs.shape[:2]}, mask {mask.shape} and targets ({len(targets)}) "
                             "must cover the same examples and steps")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.lengths = mask.sum(axis=1)
        if self.lengths.min() < 1:
            raise ValueError("every sequence needs at least one real step")
        self.inputs, self.mask, self.targets = inputs, mask, targets
        self.batch_size, self.seed = min(int(batch_size), len(inputs)), int(seed)
        self._epoch_batches: tuple[int, list[np.ndarray]] | None = None  # the last epoch's, reused
        self.shard_of: tuple[int, int] | None = None  # (index, count): this process's block of each batch

    def shard(self, index: int, count: int) -> LengthBuckets:
        """The same batches, each cut to its block `index` of `count` (data-parallel training),
        padded to the whole batch's longest sequence so that every process runs as many steps."""
        part = copy.copy(self)
        part.shard_of = (index, count)
        return part

    def __len__(self) -> int:
        """Steps per epoch."""
        return -(-len(self.inputs) // self.batch_size)

    def _batches(self, epoch: int) -> list[np.ndarray]:
        if self._epoch_batches is not None and self._epoch_batches[0] == epoch:
            return self._epoch_batches[1]
        rng = np.random.default_rng([self.seed, epoch])
        shuffled = rng.permutation(len(self.inputs))
        ordered = shuffled[np.argsort(self.lengths[shuffled], kind="stable")]
        batches = [ordered[i:i + self.batch_size] for i in range(0, len(ordered), self.batch_size)]
        batches = [batches[k] for k in rng.permutation(len(batches))]
        self._epoch_batches = (epoch, batches)
        return batches

    def batch(self, epoch: int, position: int):
        """(Padded inputs, targets, None) of step `position` of `epoch`, time-major."""
        return self._share(self._batches(epoch)[position])

    def share(self, epoch: int, position: int) -> tuple[int, int, int] | None:
        """The rows of step `position`'s global batch this shard holds (`share_bounds`)."""
        return share_bounds(len(self._batches(epoch)[position]), self.shard_of)

    def in_order(self):
        """Every example once, in batches of similar length (for evaluation)."""
        ordered = np.argsort(self.lengths, kind="stable")
        for begin in range(0, len(ordered), self.batch_size):
            inputs, targets, mask = self._share(ordered[begin:begin + self.batch_size])
            if not isinstance(inputs, EmptyShare):
                yield inputs, targets, mask

    def _share(self, rows: np.ndarray):
        steps = int(self.lengths[rows].max())
        rows = share_of(rows, self.shard_of)
        return (EmptyShare(steps), None, None) if not len(rows) else self._select(rows, steps)

    def _select(self, rows: np.ndarray, steps: int):
        inputs = np.swapaxes(self.inputs[rows, :steps], 0, 1)
        return Padded(inputs, np.swapaxes(self.mask[rows, :steps], 0, 1)), self.targets[rows], None
