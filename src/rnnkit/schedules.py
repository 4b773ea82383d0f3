"""Learning-rate schedules with torch.optim.lr_scheduler's semantics: step decay (char-rnn's
"decay after epoch N"), exponential decay, cosine decay. Each sets `optimizer.lr` from a closed
form of the epoch (or step) count, and saves {"type", "hyperparameters", "base_lr", "last_epoch"},
all JSON, so a resumed run continues with exactly the same rates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .optim import Optimizer, _Configurable, _count, _require

__all__ = ["LRSchedule", "StepDecay", "ExponentialDecay", "CosineDecay"]


class LRSchedule(_Configurable):
    """Base class of learning-rate schedules. Like torch's schedulers, construction sets the
    optimizer's lr to the epoch-0 rate, and each `step()` (after `optimizer.step()`) advances
    `last_epoch` by one and sets `optimizer.lr = lr_at(last_epoch)`, a closed form of base_lr (the
    optimizer's lr at construction)."""

    def __init__(self, optimizer: Optimizer, hyperparameters: dict):
        _require(isinstance(optimizer, Optimizer),
                 f"a schedule needs an rnnkit Optimizer, got {type(optimizer).__name__}")
        self._set_hyperparameters(hyperparameters)
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0
        optimizer.lr = self.lr

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    @property
    def lr(self) -> float:
        return self.lr_at(self.last_epoch)

    def step(self) -> None:
        self.last_epoch += 1
        self.optimizer.lr = self.lr

    def state_dict(self) -> dict:
        return {"type": type(self).__name__, "hyperparameters": self._saved_hyperparameters(),
                "base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore the schedule and set the optimizer's lr; ValueError on any mismatch."""
        hp = self._read_saved(state, ["base_lr", "last_epoch"])
        last_epoch = _count(state["last_epoch"], "last_epoch")
        for k, v in hp.items():
            setattr(self, k, v)
        self.base_lr, self.last_epoch = float(state["base_lr"]), last_epoch
        self.optimizer.lr = self.lr


class StepDecay(LRSchedule):
    """lr = base_lr * gamma ** (max(0, epoch - start) // step_size): decay by gamma every
    step_size epochs after epoch `start` (torch's StepLR when start=0). char-rnn's
    "learning_rate_decay_after M" (1-based epochs, decay every epoch) is step_size=1, start=M-1."""

    _positive = ("gamma",)
    _counts = {"step_size": 1, "start": 0}

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, start: int = 0):
        super().__init__(optimizer, dict(step_size=step_size, gamma=gamma, start=start))

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (max(0, epoch - self.start) // self.step_size)


class ExponentialDecay(LRSchedule):
    """lr = base_lr * gamma ** epoch (torch's ExponentialLR)."""

    _positive = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float):
        super().__init__(optimizer, dict(gamma=gamma))

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** epoch


class CosineDecay(LRSchedule):
    """lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * t / total_steps)) / 2 with
    t = min(epoch, total_steps): torch's CosineAnnealingLR closed form, except that the rate
    stays at min_lr after total_steps instead of rising again."""

    _non_negative = ("min_lr",)
    _counts = {"total_steps": 1}

    def __init__(self, optimizer: Optimizer, total_steps: int, min_lr: float = 0.0):
        super().__init__(optimizer, dict(total_steps=total_steps, min_lr=min_lr))

    def lr_at(self, epoch):
        cosine = math.cos(math.pi * min(epoch, self.total_steps) / self.total_steps)
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + cosine) / 2
