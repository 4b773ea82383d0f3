"""The trainer: gradient descent with (truncated) backpropagation through time.

One training step takes one batch from a batch source (`rnnkit.data.batches`: full-batch,
stochastic or mini-batch over examples, or char-rnn's parallel streams) and runs BPTT(k1, k2)
over it (`rnnkit.tbptt`); every window ends in one update:

    g = dL_window/dW                         (hand-derived BPTT through the window)
    stop if L or ||g|| is not finite          (before the update: the weights stay good)
    g = clip(g)                               (global norm, or element value)
    W = optimizer(W, g)

k1 = k2 = None means full BPTT over each batch (one update per batch). With a stream source the
final state of one batch starts the next (state carried, gradient stopped); every epoch starts
from zero. Around the steps: validation every `eval_every` steps, early stopping after
`patience` evaluations without improvement, callbacks, a history, and checkpoints that resume
bit-exactly (model, optimizer, schedule, dropout generators, carried state, data position).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .checkpoint import describe_difference, load_checkpoint, save_checkpoint
from .optim import Optimizer, clip_grad_norm, clip_grad_value
from .tbptt import check_truncation, truncated_bptt

__all__ = ["Trainer", "TrainingDiverged", "TrainState"]


class TrainingDiverged(RuntimeError):
    """The loss or the gradient stopped being finite; the offending update was not applied."""


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    position: int = 0  # batch index inside the epoch
    best_loss: float | None = None
    evals_without_improvement: int = 0
    history: list[dict] = field(default_factory=list)


def global_grad_norm(params) -> float:
    return math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in params))


class Trainer:
    """Train `model` (with `forward`, `backward`, `initial_state`, `named_parameters`) on a
    `loss_fn(outputs, targets, mask) -> (loss, d_outputs)` with `optimizer`.

    k1, k2: truncated BPTT (None, None: full BPTT over each batch; k2 defaults to k1).
    clip_norm / clip_value: gradient clipping. schedule: an `rnnkit.schedules` schedule stepped
    every epoch (schedule_unit="epoch", char-rnn's decay) or every step ("step").
    callbacks: functions `callback(trainer, record)` called after every step with its history
    record (a dict with step, epoch, loss, grad_norm, lr, and val_loss on evaluation steps)."""

    def __init__(self, model, optimizer: Optimizer, loss_fn: Callable, *, k1: int | None = None,
                 k2: int | None = None, clip_norm: float | None = None, clip_value: float | None = None,
                 schedule=None, schedule_unit: str = "epoch", callbacks=()):
        if k1 is None and k2 is not None:
            raise ValueError("k2 needs k1: give k1 (and optionally k2 >= k1), or neither for full BPTT")
        if k1 is not None:
            check_truncation(k1, k1 if k2 is None else k2)
        for name, value in (("clip_norm", clip_norm), ("clip_value", clip_value)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if schedule_unit not in ("epoch", "step"):
            raise ValueError(f"schedule_unit must be 'epoch' or 'step', got {schedule_unit!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.k1, self.k2 = k1, (k1 if k2 is None else k2)
        self.clip_norm, self.clip_value = clip_norm, clip_value
        self.schedule, self.schedule_unit = schedule, schedule_unit
        self.callbacks = list(callbacks)
        self.params = [p for _, p in model.named_parameters()]
        self.state = TrainState()
        self.carried_state = None  # the recurrent state handed from one stream batch to the next
        self.should_stop = False  # a callback may set this to end training after the step
        self.best_weights = None  # the weights of the best evaluation so far (in memory)

    # ------------------------------------------------------------------------- one step
    def train_step(self, inputs, targets, mask=None, state=None):
        """BPTT(k1, k2) over one time-major batch, one update per window that has a counted
        position. Returns (mean loss per counted position, final state)."""
        self.model.train()
        steps = len(inputs)
        k1 = self.k1 or steps
        k2 = self.k2 or steps
        self.model.zero_grad()
        self._last_grad_norm = 0.0
        state, losses = truncated_bptt(self.model, self.loss_fn, inputs, targets, state, k1, max(k1, k2),
                                       mask=mask, after_window=self._update)
        if not losses:
            raise ValueError("no position of this batch counts (its mask is all false); nothing to train on")
        total = sum(loss * positions for loss, positions in losses)
        return total / sum(positions for _, positions in losses), state

    def _update(self, loss: float, window: int) -> None:
        step = self.state.step + 1
        if not math.isfinite(loss):
            raise TrainingDiverged(f"training diverged at step {step}: the loss is {loss}; the update was "
                                   "not applied (try a lower learning rate or gradient clipping)")
        norm = (clip_grad_norm(self.params, self.clip_norm) if self.clip_norm
                else global_grad_norm(self.params))
        if not math.isfinite(norm):
            raise TrainingDiverged(f"training diverged at step {step}: the gradient norm is {norm}; the "
                                   "update was not applied (try a lower learning rate or gradient clipping)")
        if self.clip_value:
            clip_grad_value(self.params, self.clip_value)
        self.optimizer.step()
        self.model.zero_grad()
        self._last_grad_norm = norm

    # ----------------------------------------------------------------------- evaluation
    def evaluate(self, batches) -> float:
        """Mean loss per counted position over one pass of `batches` (eval mode: no dropout;
        stream state carried from batch to batch, as in training)."""
        self.model.eval()
        total, count, state = 0.0, 0, None
        try:
            for inputs, targets, mask in batches.in_order():
                outputs, final, _ = self.model.forward(inputs, state if batches.carries_state else None)
                loss, _ = self.loss_fn(outputs, targets, mask)
                counted = int(np.sum(mask)) if mask is not None else int(np.prod(np.shape(targets)[:2]))
                total += loss * counted
                count += counted
                state = final
        finally:
            self.model.train()
        return total / max(count, 1)

    # ---------------------------------------------------------------------------- fit
    def fit(self, batches, *, steps: int | None = None, epochs: int | None = None,
            max_seconds: float | None = None, validation=None, eval_every: int | None = None,
            patience: int | None = None, checkpoint_dir: str | Path | None = None,
            save_every: int | None = None, metadata: dict | None = None,
            score: Callable[[], float] | None = None) -> list[dict]:
        """Train until `steps` total steps, `epochs` total epochs or `max_seconds` of wall time,
        whichever comes first (at least one must be given), or until early stopping.

        Every `eval_every` steps, and once more at the end if the last step was not one of those
        (so a short run still has a best checkpoint), the model is scored: by `score()` if given (any number to
        minimise, e.g. a forecast's error; recorded as "val_score"), else by the validation loss,
        else by the training loss. The best score's weights are kept in `best_weights`;
        `patience` evaluations without a better score stop training.

        With `checkpoint_dir`: `best.safetensors` whenever the validation loss improves (or at
        each evaluation without validation data), `last.safetensors` every `save_every` steps, at
        the end, and on Ctrl-C (then `KeyboardInterrupt` is raised again). `metadata` (JSON) is
        stored in both, e.g. a vocabulary. Returns the history."""
        if steps is None and epochs is None and max_seconds is None:
            raise ValueError("fit needs a limit: steps, epochs or max_seconds")
        checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        eval_every = eval_every or len(batches)
        started = time.perf_counter()
        s = self.state
        self.should_stop = False
        evaluated = s.step
        try:
            while not self._finished(steps, epochs, max_seconds, started):
                if s.position == 0:
                    self.carried_state = None
                inputs, targets, mask = batches.batch(s.epoch, s.position)
                state = self.carried_state if batches.carries_state else None
                loss, state = self.train_step(inputs, targets, mask, state)
                self.carried_state = state if batches.carries_state else None
                s.step += 1
                record = {"step": s.step, "epoch": s.epoch, "loss": loss, "grad_norm": self._last_grad_norm,
                          "lr": self.optimizer.lr, "seconds": time.perf_counter() - started}
                self._advance(len(batches))
                if s.step % eval_every == 0:
                    self._evaluate_and_keep_best(record, validation, score, patience, checkpoint_dir, metadata)
                    evaluated = s.step
                s.history.append(record)
                for callback in self.callbacks:
                    callback(self, record)
                if checkpoint_dir is not None and save_every and s.step % save_every == 0:
                    self.save(checkpoint_dir / "last.safetensors", metadata)
                if self.should_stop:
                    break
        except KeyboardInterrupt:
            if checkpoint_dir is not None:
                self.save(checkpoint_dir / "last.safetensors", metadata)
            raise
        if s.step != evaluated and s.history:
            self._evaluate_and_keep_best(s.history[-1], validation, score, None, checkpoint_dir, metadata)
        if checkpoint_dir is not None:
            self.save(checkpoint_dir / "last.safetensors", metadata)
        return s.history

    def _finished(self, steps, epochs, max_seconds, started) -> bool:
        s = self.state
        return ((steps is not None and s.step >= steps) or (epochs is not None and s.epoch >= epochs)
                or (max_seconds is not None and time.perf_counter() - started >= max_seconds))

    def _advance(self, steps_per_epoch: int) -> None:
        s = self.state
        s.position += 1
        if s.position >= steps_per_epoch:
            s.epoch, s.position = s.epoch + 1, 0
            if self.schedule is not None and self.schedule_unit == "epoch":
                self.schedule.step()
        if self.schedule is not None and self.schedule_unit == "step":
            self.schedule.step()

    def _evaluate_and_keep_best(self, record, validation, score_fn, patience, checkpoint_dir, metadata) -> None:
        s = self.state
        score = record["loss"]
        if validation is not None:
            score = record["val_loss"] = self.evaluate(validation)
        if score_fn is not None:
            score = record["val_score"] = float(score_fn())
            self.model.train()
        if s.best_loss is None or score < s.best_loss:
            s.best_loss, s.evals_without_improvement = score, 0
            self.best_weights = self.model.state_dict()
            if checkpoint_dir is not None:
                self.save(checkpoint_dir / "best.safetensors", metadata)
        else:
            s.evals_without_improvement += 1
            if patience is not None and s.evals_without_improvement >= patience:
                record["early_stop"] = True
                self.should_stop = True

    # ---------------------------------------------------------------------- checkpoints
    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        """Everything needed to resume exactly, in one atomically written safetensors file:
        the model's parameters under their own (PyTorch) names, the optimizer's arrays under
        `optimizer/<index>/<name>`, the carried state under `trainer/state/<k>`."""
        tensors = {name: p.value for name, p in self.model.named_parameters()}
        optimizer = self.optimizer.state_dict()
        for index, buffers in enumerate(optimizer.pop("state")):
            for name, array in buffers.items():
                tensors[f"optimizer/{index}/{name}"] = array
        carried = self.carried_state
        components = [] if carried is None else ([carried] if isinstance(carried, np.ndarray) else list(carried))
        for index, component in enumerate(components):
            tensors[f"trainer/state/{index}"] = component
        info = {
            "rnnkit_version": __version__,
            "model": _model_config(self.model),
            "optimizer": optimizer,
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
            "trainer": {**self.state.__dict__, "carried_parts": len(components)},
            "random": self.model.random_state(),
            "user": metadata or {},
        }
        save_checkpoint(path, tensors, json.loads(json.dumps(info, default=_json_default)))

    def restore(self, path: str | Path) -> dict:
        """Load a checkpoint written by `save` into this trainer, its model, optimizer and
        schedule; returns the user metadata. A checkpoint of a different model configuration or
        optimizer raises ValueError saying what differs."""
        tensors, info = load_checkpoint(path)
        expected = _model_config(self.model)
        if expected is not None and info.get("model") is not None:
            difference = describe_difference(expected, info["model"])
            if difference:
                raise ValueError(f"checkpoint {path} was saved from a different model: {difference}")
        load_model_weights(self.model, tensors, path)
        optimizer = dict(info["optimizer"])
        optimizer["state"] = [
            {name: tensors[f"optimizer/{index}/{name}"] for name in _buffer_names(tensors, index)}
            for index in range(len(self.params))
        ]
        self.optimizer.load_state_dict(optimizer)
        if (info["schedule"] is None) != (self.schedule is None):
            raise ValueError(f"checkpoint {path} was saved {'without' if info['schedule'] is None else 'with'} "
                             "a learning-rate schedule, but this trainer has the opposite")
        if self.schedule is not None:
            self.schedule.load_state_dict(info["schedule"])
        self.model.set_random_state(info["random"])
        trainer = dict(info["trainer"])
        parts = trainer.pop("carried_parts")
        self.state = TrainState(**trainer)
        carried = [tensors[f"trainer/state/{index}"] for index in range(parts)]
        self.carried_state = None if not carried else (carried[0] if len(carried) == 1 else tuple(carried))
        return info["user"]


def load_model_weights(model, tensors: dict, path) -> None:
    """Copy a model's parameters out of a checkpoint's tensors (other entries ignored)."""
    names = [name for name, _ in model.named_parameters()]
    missing = [name for name in names if name not in tensors]
    if missing:
        raise ValueError(f"checkpoint {path} lacks the model parameter(s) {', '.join(missing)}")
    model.load_state_dict({name: tensors[name] for name in names})


def _buffer_names(tensors: dict, index: int) -> list[str]:
    prefix = f"optimizer/{index}/"
    return sorted(name[len(prefix):] for name in tensors if name.startswith(prefix))


def _model_config(model) -> dict | None:
    config = getattr(model, "config", None)
    return config.to_dict() if config is not None else None


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
