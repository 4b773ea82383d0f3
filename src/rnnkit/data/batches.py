"""How training data becomes batches: the lectures' gradient-descent strategies and char-rnn's
parallel streams.

Both sources are deterministic functions of (epoch, position), so a trainer resumes exactly by
saving two integers, and validation can be replayed.

- `ExampleBatches`: N independent sequences (the state starts from zero for each batch).
    strategy "full"        every example in every step (full-batch gradient descent); an epoch is 1 step
    strategy "stochastic"  one example drawn at random per step; an epoch is N steps
    strategy "minibatch"   the examples shuffled each epoch and cut into batches of `batch_size`
- `StreamBatches`: one long token sequence cut into B contiguous streams, read T steps at a time
  (char-rnn's layout). Window k of every stream follows window k-1, so the hidden state carries
  from one batch to the next within an epoch; targets are the inputs shifted by one step.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

__all__ = ["Conditioned", "EmptyShare", "ExampleBatches", "Padded", "StreamBatches", "STRATEGIES", "share_of"]

STRATEGIES = ("full", "stochastic", "minibatch")


@dataclass(frozen=True)
class Conditioned:
    """Time-major inputs together with a per-sequence context that sets the first state (an image
    for a captioner, a source sentence for an encoder-decoder). Slicing it in time slices the
    inputs only, so truncated BPTT can cut it into windows; the model uses the context when it
    starts from no state."""

    context: np.ndarray  # (B, ...)
    inputs: np.ndarray  # (T, B, ...)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, steps: slice) -> Conditioned:
        return Conditioned(self.context, self.inputs[steps])


@dataclass(frozen=True)
class Padded:
    """Time-major inputs of sequences of different lengths, padded to one length, with the mask
    (T, B) of the real steps; the recurrent layers freeze the state on padded steps, so padding
    never reaches a state, an output that counts, or a gradient."""

    inputs: np.ndarray  # (T, B, ...)
    mask: np.ndarray  # (T, B) bool

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, steps: slice) -> Padded:
        return Padded(self.inputs[steps], self.mask[steps])


@dataclass(frozen=True)
class EmptyShare:
    """What a shard (one process's block of a global batch) yields when the batch has fewer
    examples than there are processes: no rows, but the batch's number of steps, so the process
    still takes part in every window's gradient exchange."""

    steps: int

    def __len__(self) -> int:
        return self.steps


def share_of(rows: np.ndarray, shard: tuple[int, int] | None) -> np.ndarray:
    """Block `index` of `count` of a batch's rows (np.array_split's contiguous blocks)."""
    return rows if shard is None else np.array_split(np.asarray(rows), shard[1])[shard[0]]


def share_bounds(total: int, shard: tuple[int, int] | None) -> tuple[int, int, int] | None:
    """(start, stop, total): the rows of a global batch of `total` rows that `share_of` keeps
    (None without a shard), for drawing dropout masks of the whole batch (`rnnkit.batchshare`)."""
    if shard is None:
        return None
    sizes = [len(block) for block in np.array_split(np.arange(total), shard[1])]
    start = sum(sizes[:shard[0]])
    return start, start + sizes[shard[0]], total


def _positive(name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _targets_per_step(per_step: bool | None, steps: int, target_shape: tuple[int, ...], masked: bool) -> bool:
    """`per_step` checked against the targets' shape, or read from what is unambiguous (see
    `ExampleBatches`)."""
    fits_steps = len(target_shape) >= 2 and target_shape[1] == steps
    if per_step is None:
        if fits_steps and not masked:
            raise ValueError(f"targets of shape {target_shape} could be one per step ({steps} steps) or one "
                             f"{target_shape[1:]} array per sequence; pass per_step=True or per_step=False")
        per_step = masked  # a loss mask over steps needs per-step targets; otherwise they cannot be
    if masked and not (per_step and fits_steps):
        raise ValueError(f"a loss mask over steps needs one target per step, (examples, {steps} steps, ...); "
                         f"got targets of shape {target_shape}" + ("" if per_step else " and per_step=False"))
    if per_step and not fits_steps:
        raise ValueError(f"one target per step needs targets (examples, {steps} steps, ...), got shape {target_shape}")
    return bool(per_step)


class ExampleBatches:
    """inputs (N, T, ...) and targets: (N, T, ...), one per step, or (N, ...), one per sequence
    (many-to-one). Optionally: `mask` (N, T), which steps' targets count in the loss;
    `padding` (N, T), which input steps are real (sequences of different lengths); `context`
    (N, ...), what sets each sequence's first state. Batches come out time-major, (T, B, ...),
    the inputs wrapped in `Padded` and/or `Conditioned` when there is padding or a context;
    per-step targets come out (T, B, ...), per-sequence targets (B, ...).

    per_step: whether the targets are one per step (True) or one per sequence (False). Left
    None, it is read only from what cannot mean anything else: a loss `mask` over steps means per
    step; targets (N,), or (N, K, ...) with K != T, mean per sequence. Targets (N, T, ...)
    without a mask could be either (8 sequences of 4 steps with 4-vector targets), so they raise
    ValueError asking for `per_step`: the shape is never guessed."""

    carries_state = False

    def __init__(self, inputs: np.ndarray, targets: np.ndarray, *, strategy: str = "minibatch",
                 batch_size: int = 32, seed: int = 0, mask: np.ndarray | None = None,
                 context: np.ndarray | None = None, padding: np.ndarray | None = None,
                 per_step: bool | None = None):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if len(inputs) == 0:
            raise ValueError("no training examples")
        if len(inputs) != len(targets) or (mask is not None and len(mask) != len(inputs)):
            raise ValueError(f"inputs, targets and mask must have the same number of examples, "
                             f"got {len(inputs)}, {len(targets)}" + ("" if mask is None else f", {len(mask)}"))
        if np.ndim(inputs) < 2:
            raise ValueError(f"inputs must be (examples, steps, ...), got shape {np.shape(inputs)}")
        self.per_step = _targets_per_step(per_step, np.shape(inputs)[1], np.shape(targets), mask is not None)
        for name, extra in (("context", context), ("padding", padding)):
            if extra is not None and len(extra) != len(inputs):
                raise ValueError(f"{name} has {len(extra)} examples, inputs {len(inputs)}")
        if padding is not None and np.shape(padding) != np.shape(inputs)[:2]:
            raise ValueError(f"padding must be (examples, steps) = {np.shape(inputs)[:2]}, got {np.shape(padding)}")
        self.inputs, self.targets, self.mask = inputs, targets, mask
        self.context, self.padding = context, padding
        self.strategy, self.seed = strategy, int(seed)
        self.batch_size = min(_positive("batch_size", batch_size), len(inputs))
        self.shard_of: tuple[int, int] | None = None  # (index, count): this process's block of each batch

    def shard(self, index: int, count: int) -> ExampleBatches:
        """The same batches, each cut to its block `index` of `count` (data-parallel training)."""
        part = copy.copy(self)
        part.shard_of = (index, count)
        return part

    def __len__(self) -> int:
        """Steps per epoch."""
        n = len(self.inputs)
        return {"full": 1, "stochastic": n, "minibatch": -(-n // self.batch_size)}[self.strategy]

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.inputs)
        rng = np.random.default_rng([self.seed, epoch])
        if self.strategy == "full":
            return np.arange(n)
        if self.strategy == "stochastic":
            return rng.integers(n, size=n)
        return rng.permutation(n)

    def batch(self, epoch: int, position: int):
        """(inputs, targets, mask) of step `position` of `epoch`, time-major."""
        if self.strategy == "full":
            chosen = self._order(epoch)
        elif self.strategy == "stochastic":
            chosen = self._order(epoch)[position:position + 1]
        else:
            chosen = self._order(epoch)[position * self.batch_size:(position + 1) * self.batch_size]
        chosen = share_of(chosen, self.shard_of)
        return (EmptyShare(self.inputs.shape[1]), None, None) if not len(chosen) else self._select(chosen)

    def share(self, epoch: int, position: int) -> tuple[int, int, int] | None:
        """The rows of step `position`'s global batch this shard holds (`share_bounds`)."""
        total = {"full": len(self.inputs), "stochastic": 1}.get(
            self.strategy, len(self._order(epoch)[position * self.batch_size:(position + 1) * self.batch_size]))
        return share_bounds(total, self.shard_of)

    def in_order(self):
        """Every example once, in order, in batches of `batch_size` (for evaluation)."""
        for begin in range(0, len(self.inputs), self.batch_size):
            chosen = share_of(np.arange(begin, min(begin + self.batch_size, len(self.inputs))), self.shard_of)
            if len(chosen):
                yield self._select(chosen)

    def _select(self, chosen):
        inputs = np.swapaxes(self.inputs[chosen], 0, 1)
        if self.padding is not None:
            inputs = Padded(inputs, np.swapaxes(self.padding[chosen], 0, 1).astype(bool))
        if self.context is not None:
            inputs = Conditioned(self.context[chosen], inputs)
        targets = self.targets[chosen]
        if self.per_step:
            targets = np.swapaxes(targets, 0, 1)
        mask = None if self.mask is None else np.swapaxes(self.mask[chosen], 0, 1)
        return inputs, targets, mask


class StreamBatches:
    """A 1-D token array as `batch_size` parallel streams read `seq_len` steps at a time.

    The tokens may be a memory map (`rnnkit.data.tokens`): each batch gathers only its own
    (seq_len + 1) x B tokens, as int64, so nothing reads the whole array. `shard(i, n)` is the
    i-th of n contiguous blocks of the streams (data-parallel training: each process trains its
    block of the same global batch and reads only its streams' tokens)."""

    carries_state = True

    def __init__(self, tokens: np.ndarray, batch_size: int, seq_len: int):
        self.batch_size = _positive("batch_size", batch_size)
        self.seq_len = _positive("seq_len", seq_len)
        tokens = tokens if isinstance(tokens, np.ndarray) else np.asarray(tokens)
        if tokens.ndim != 1:
            raise ValueError(f"a token stream must be 1-D, got shape {tokens.shape}")
        # Each stream needs one extra token: the target of its last input.
        per_stream = (len(tokens) - 1) // self.batch_size
        if per_stream < self.seq_len:
            raise ValueError(f"{len(tokens)} tokens are too few for {self.batch_size} streams of at least "
                             f"one window of {self.seq_len} steps; use a longer text, a smaller batch "
                             f"or a shorter sequence length")
        self.tokens, self.per_stream = tokens, per_stream
        self.windows = per_stream // self.seq_len  # training reads whole windows only
        self.columns = np.arange(self.batch_size)  # the streams this source reads (all, unless a shard)

    def shard(self, index: int, count: int) -> StreamBatches:
        """The same streams' block `index` of `count` (np.array_split's blocks, in order); empty
        when there are fewer streams than blocks."""
        part = copy.copy(self)
        part.columns = np.array_split(np.arange(self.batch_size), count)[index]
        return part

    def share(self, epoch: int, position: int) -> tuple[int, int, int] | None:
        """The streams (rows of every batch) this shard reads, as (start, stop, batch_size)."""
        if len(self.columns) in (0, self.batch_size):
            return None
        return int(self.columns[0]), int(self.columns[-1]) + 1, self.batch_size

    def _window(self, begin: int, steps: int) -> np.ndarray:
        """Steps begin .. begin + steps of this source's streams, (steps + 1, streams) int64."""
        rows = begin + np.arange(steps + 1)
        return np.asarray(self.tokens[(self.columns * self.per_stream)[None, :] + rows[:, None]], dtype=np.int64)

    @property
    def streams(self) -> np.ndarray:
        """Every stream whole, (per_stream + 1, streams): stream b is column b (reads everything)."""
        return self._window(0, self.per_stream)

    def __len__(self) -> int:
        return self.windows

    def batch(self, epoch: int, position: int):
        window = self._window(position * self.seq_len, self.seq_len)
        return window[:-1], window[1:], None

    def in_order(self):
        """Every window once, in order, then the short rest of each stream (for evaluation:
        the state carries between them, and only the fewer than B tokens that do not fill a
        stream are left out)."""
        if not len(self.columns):
            return
        for begin in range(0, self.per_stream, self.seq_len):
            window = self._window(begin, min(self.seq_len, self.per_stream - begin))
            yield window[:-1], window[1:], None

    @property
    def tokens_per_batch(self) -> int:
        return self.seq_len * len(self.columns)
