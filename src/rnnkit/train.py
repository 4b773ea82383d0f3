"""The trainer: gradient descent with (truncated) backpropagation through time.

One training step takes one batch from a batch source (`rnnkit.data.batches`: full-batch,
stochastic or mini-batch over examples, or char-rnn's parallel streams) and runs BPTT(k1, k2)
over it (`rnnkit.tbptt`); every window ends in one update:

    g = dL_window/dW                         (hand-derived BPTT through the window)
    stop if L or ||g|| is not finite          (before the update: the weights stay good)
    g = clip(g)                               (global norm, or element value)
    W = optimizer(W, g)

k1 = k2 = None means full BPTT over each batch (one update per batch). With a stream source one
batch continues the stream of the one before (state carried, gradient stopped where a window
starts; a window reaches k2 steps back into the previous batch, see `rnnkit.tbptt`); every
epoch starts from zero. Around the steps: validation every `eval_every` steps, early stopping
after `patience` evaluations without improvement, callbacks, a history, and checkpoints that
resume bit-exactly (model, optimizer, schedule, dropout generators, the carried stream, data
position).

A step is all or nothing. It is the batch's windows and updates, the schedule, the scheduled
evaluation and the history record; Ctrl-C anywhere inside it (between two windows, inside an
update, during the evaluation) rolls model, optimizer, schedule, generators and trainer back
to the start of the step before the checkpoint is written, so resuming redoes that step exactly
as an uninterrupted run does. (A `best.safetensors` the rolled-back step already wrote is
written again, identically, when the step is redone.) Callbacks and `save_every` checkpoints
run after the step is complete.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batchshare import batch_share
from .data.batches import EmptyShare
from .optim import Optimizer, clip_grad_norm, clip_grad_value
from .resume import TrainState, load_model_weights, restore_training, save_training
from .tbptt import StreamHistory, check_truncation, history_length, truncated_bptt, windows

__all__ = ["Trainer", "TrainingDiverged", "TrainState", "load_model_weights"]


class TrainingDiverged(RuntimeError):
    """The loss or the gradient stopped being finite; the offending update was not applied."""


@dataclass
class _Snapshot:
    """Everything a training step changes, copied before it: what an interrupted step rolls
    back to. The history only grows during a step, so its length is enough."""

    weights: dict
    optimizer: dict
    schedule: dict | None
    random: dict
    counters: dict  # TrainState's fields but the history
    history_length: int
    carried: StreamHistory | None
    best_weights: dict | None


def global_grad_norm(params) -> float:
    return math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in params))


class Trainer:
    """Train `model` (with `forward`, `backward`, `initial_state`, `named_parameters`) on a
    `loss_fn(outputs, targets, mask) -> (loss, d_outputs)` with `optimizer`.

    k1, k2: truncated BPTT (None, None: full BPTT over each batch; k2 defaults to k1).
    clip_norm / clip_value: gradient clipping. schedule: an `rnnkit.schedules` schedule stepped
    every epoch (schedule_unit="epoch", char-rnn's decay) or every step ("step").
    callbacks: functions `callback(trainer, record)` called after every step with its history
    record (a dict with step, epoch, loss, grad_norm, lr, and val_loss on evaluation steps).
    communicator: an `rnnkit.distributed.Communicator` to train data-parallel (that module
    says how): give every rank its shard of the batches (`batches.shard(rank, size)`); rank 0
    alone writes checkpoints."""

    def __init__(self, model, optimizer: Optimizer, loss_fn: Callable, *, k1: int | None = None,
                 k2: int | None = None, clip_norm: float | None = None, clip_value: float | None = None,
                 schedule=None, schedule_unit: str = "epoch", callbacks=(), communicator=None):
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
        self.carried: StreamHistory | None = None  # what one stream batch hands the next
        self.should_stop = False  # a callback may set this to end training after the step
        self.best_weights = None  # the weights of the best evaluation so far (in memory)
        self.communicator = communicator
        self._positions, self._global_losses = 0, []  # the window's counted positions; global window losses
        if communicator is not None:
            communicator.broadcast_parameters(self.params)

    # ------------------------------------------------------------------------- one step
    def train_step(self, inputs, targets, mask=None, history: StreamHistory | None = None, keep: int = 0):
        """BPTT(k1, k2) over one time-major batch that continues the stream `history` (None: from
        zero), one update per window that has a counted position. Returns (mean loss per counted
        position, the `StreamHistory` of the batch's last `keep` steps)."""
        if history is not None and not isinstance(history, StreamHistory):
            raise ValueError("train_step's history is the StreamHistory a previous train_step returned (or None), "
                             f"not {type(history).__name__}; to start from a state, use StreamHistory(state)")
        self.model.train()
        steps = len(inputs)
        k1 = self.k1 or steps
        k2 = self.k2 or steps
        self.model.zero_grad()
        self._last_grad_norm = 0.0
        self._global_losses = []
        parallel = self.communicator is not None
        if isinstance(inputs, EmptyShare):  # no rows here: still take part in every window's exchange
            for index in range(len(windows(steps, k1, max(k1, k2)))):
                self._update(0.0, index)
            result = None
        else:
            result = truncated_bptt(self.model, self._counted_loss if parallel else self.loss_fn, inputs, targets,
                                    None, k1, max(k1, k2), mask=mask, after_window=self._update, history=history,
                                    keep=keep, every_window=parallel)
        losses = self._global_losses if parallel else result.losses
        if not losses:
            raise ValueError("no position of this batch counts (its mask is all false); nothing to train on")
        total = sum(loss * positions for loss, positions in losses)
        return total / sum(positions for _, positions in losses), None if result is None else result.history

    def _counted_loss(self, outputs, targets, mask):
        """The loss, noting how many positions it averages over (`rnnkit.distributed` weighs each
        rank's gradient by them)."""
        self._positions = int(np.sum(mask)) if mask is not None else int(np.prod(np.shape(targets)[:2]))
        return self.loss_fn(outputs, targets, mask)

    def _kept_steps(self, steps: int) -> int:
        """How many of a stream batch's last steps the next batch's first window reaches back into."""
        return 0 if self.k1 is None else history_length(steps, self.k1, self.k2)

    def _update(self, loss: float, window: int) -> None:
        step = self.state.step + 1
        if self.communicator is not None:  # the whole batch's mean gradient and loss, on every rank
            loss, positions = self.communicator.allreduce_gradients(self.params, loss, self._positions)
            self._positions = 0
            if not positions:  # no rank counts a position in this window
                self.model.zero_grad()
                return
            self._global_losses.append((loss, positions))
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
        self.state.updates += 1

    # ----------------------------------------------------------------------- evaluation
    def evaluate(self, batches) -> float:
        """Mean loss per counted position over one pass of `batches` (eval mode: no dropout;
        stream state carried from batch to batch, as in training)."""
        self.model.eval()
        total, count, state = 0.0, 0, None
        try:
            for inputs, targets, mask in batches.in_order():  # a shard's: this rank's block
                outputs, final, _ = self.model.forward(inputs, state if batches.carries_state else None)
                loss, _ = self.loss_fn(outputs, targets, mask)
                counted = int(np.sum(mask)) if mask is not None else int(np.prod(np.shape(targets)[:2]))
                total += loss * counted
                count += counted
                state = final
        finally:
            self.model.train()
        if self.communicator is not None:
            total, count = self.communicator.sum(total, count)
        return total / max(count, 1)

    # ---------------------------------------------------------------------------- fit
    def fit(self, batches, *, steps: int | None = None, epochs: int | None = None,
            max_seconds: float | None = None, validation=None, eval_every: int | None = None,
            patience: int | None = None, checkpoint_dir: str | Path | None = None,
            save_every: int | None = None, metadata: dict | None = None,
            score: Callable[[], float] | None = None) -> list[dict]:
        """Train until `steps` total steps, `epochs` total epochs or `max_seconds` of wall time,
        whichever comes first (at least one must be given), or until early stopping.

        Every `eval_every` steps the model is scored: by `score()` if given (any number to
        minimise, e.g. a forecast's error; recorded as "val_score"), else by the validation loss,
        else by the training loss. The best score's weights are kept in `best_weights`;
        `patience` evaluations without a better score stop training. That count is saved, so a
        run that stopped early stays stopped when resumed with the same patience (a larger one
        trains on).

        A run that stops between two scheduled evaluations is evaluated once more at its end
        (by this `fit`, or by the next one if Ctrl-C interrupted that evaluation), so a short run
        still has a score and a best checkpoint. That evaluation reports, it does not decide:
        its score goes into the last record, it becomes the best (weights and checkpoint) only
        when there is no best yet, and it never counts towards patience. It is also provisional:
        a later `fit` that trains on (after `restore` or in the same process) first withdraws it
        (the record's keys, the best it set), so `fit(steps=a)` then `fit(steps=b)` trains,
        stops and keeps the same best as `fit(steps=b)` alone.

        With `checkpoint_dir`: `best.safetensors` whenever the score improves, `last.safetensors`
        every `save_every` steps, at the end, and on Ctrl-C (rolled back to the start of the
        interrupted step, see the module docstring; then `KeyboardInterrupt` is raised again).
        `metadata` (JSON) is stored in both, e.g. a vocabulary. Returns the history."""
        if steps is None and epochs is None and max_seconds is None:
            raise ValueError("fit needs a limit: steps, epochs or max_seconds")
        checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        eval_every = eval_every or len(batches)
        evaluation = {"validation": validation, "score_fn": score, "checkpoint_dir": checkpoint_dir,
                      "metadata": metadata}
        started = time.perf_counter()
        s = self.state
        self.should_stop = False
        interrupted_step = None
        try:
            while not self._agree(self._finished(steps, epochs, max_seconds, started, patience)):
                self._withdraw_end_evaluation()
                interrupted_step = self._snapshot()
                record = self._step(batches, started)
                if s.step % eval_every == 0:
                    self._evaluate_and_keep_best(record, patience=patience, **evaluation)
                s.history.append(record)
                interrupted_step = None  # the step is complete
                for callback in self.callbacks:
                    callback(self, record)
                if checkpoint_dir is not None and save_every and s.step % save_every == 0:
                    self.save(checkpoint_dir / "last.safetensors", metadata)
                if self._agree(self.should_stop):
                    break
            if s.history and s.step % eval_every != 0 and s.end_evaluation is None:
                self._evaluate_at_end(s.history[-1], **evaluation)
        except KeyboardInterrupt:
            if interrupted_step is not None:
                self._roll_back(interrupted_step)
            self._withdraw_end_evaluation()  # if it was the end-of-run evaluation that was interrupted
            if checkpoint_dir is not None and self.communicator is None:  # ranks may be mid-collective
                self.save(checkpoint_dir / "last.safetensors", metadata)
            raise
        if checkpoint_dir is not None:
            self.save(checkpoint_dir / "last.safetensors", metadata)
        return s.history

    def _step(self, batches, started: float) -> dict:
        """Train on the next batch and move the data position and schedule on; returns the
        step's history record."""
        s = self.state
        if s.position == 0:
            self.carried = None  # every epoch starts its streams from zero
        inputs, targets, mask = batches.batch(s.epoch, s.position)
        # Under MPI, dropout masks are drawn for the whole global batch, this rank's rows kept.
        share = batches.share(s.epoch, s.position) if self.communicator and hasattr(batches, "share") else None
        with batch_share(share):
            if batches.carries_state:
                loss, self.carried = self.train_step(inputs, targets, mask, self.carried,
                                                     self._kept_steps(len(inputs)))
            else:
                loss, _ = self.train_step(inputs, targets, mask)
        s.step += 1
        record = {"step": s.step, "updates": s.updates, "epoch": s.epoch, "loss": loss,
                  "grad_norm": self._last_grad_norm, "lr": self.optimizer.lr, "seconds": time.perf_counter() - started}
        self._advance(len(batches))
        return record

    def _agree(self, flag: bool) -> bool:
        """Whether to stop, the same on every rank (each rank's clock differs)."""
        return flag if self.communicator is None else self.communicator.any(flag)

    def _finished(self, steps, epochs, max_seconds, started, patience) -> bool:
        s = self.state
        return ((steps is not None and s.step >= steps) or (epochs is not None and s.epoch >= epochs)
                or (max_seconds is not None and time.perf_counter() - started >= max_seconds)
                or (patience is not None and s.evals_without_improvement >= patience))

    def _advance(self, steps_per_epoch: int) -> None:
        s = self.state
        s.position += 1
        if s.position >= steps_per_epoch:
            s.epoch, s.position = s.epoch + 1, 0
            if self.schedule is not None and self.schedule_unit == "epoch":
                self.schedule.step()
        if self.schedule is not None and self.schedule_unit == "step":
            self.schedule.step()

    # ------------------------------------------------------------------ keeping the best
    def _score(self, validation, score_fn, loss: float) -> dict:
        """The evaluation's entries for a record ("val_loss", "val_score") and "score", the
        number to minimise: the score function's, else the validation loss, else `loss`."""
        entries = {}
        if validation is not None:
            entries["val_loss"] = self.evaluate(validation)
        if score_fn is not None:
            entries["val_score"] = float(score_fn())
            self.model.train()
        return {**entries, "score": entries.get("val_score", entries.get("val_loss", loss))}

    def _evaluate_and_keep_best(self, record, *, validation, score_fn, patience, checkpoint_dir, metadata) -> None:
        """A scheduled evaluation: keep the best, count evaluations without improvement."""
        s = self.state
        entries = self._score(validation, score_fn, record["loss"])
        score = entries.pop("score")
        record.update(entries)
        if s.best_loss is None or score < s.best_loss:
            self._keep_best(score, checkpoint_dir, metadata)
        else:
            s.evals_without_improvement += 1
            if patience is not None and s.evals_without_improvement >= patience:
                record["early_stop"] = True
                self.should_stop = True

    def _evaluate_at_end(self, record, *, validation, score_fn, checkpoint_dir, metadata) -> None:
        """The end-of-run evaluation (see `fit`): reported in `record`, the best only if there is
        none yet, noted in `TrainState.end_evaluation` so that it can be withdrawn."""
        s = self.state
        entries = self._score(validation, score_fn, record["loss"])
        score = entries.pop("score")
        s.end_evaluation = {"keys": sorted(entries), "set_best": s.best_loss is None}
        record.update(entries)
        if s.end_evaluation["set_best"]:
            self._keep_best(score, checkpoint_dir, metadata)

    def _withdraw_end_evaluation(self) -> None:
        """Undo the end-of-run evaluation before training on: the run it ended goes on."""
        s = self.state
        if s.end_evaluation is None:
            return
        for key in s.end_evaluation["keys"]:
            s.history[-1].pop(key, None)
        if s.end_evaluation["set_best"]:
            s.best_loss, self.best_weights = None, None
        s.end_evaluation = None

    def _keep_best(self, score: float, checkpoint_dir, metadata) -> None:
        s = self.state
        s.best_loss, s.evals_without_improvement = score, 0
        self.best_weights = self.model.state_dict()
        if checkpoint_dir is not None:
            self.save(checkpoint_dir / "best.safetensors", metadata)

    # ------------------------------------------------------------- interrupted steps
    def _snapshot(self) -> _Snapshot:
        s = self.state
        counters = {name: value for name, value in s.__dict__.items() if name != "history"}
        return _Snapshot(weights=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                         schedule=None if self.schedule is None else self.schedule.state_dict(),
                         random=self.model.random_state(), counters=counters,
                         history_length=len(s.history), carried=self.carried, best_weights=self.best_weights)

    def _roll_back(self, snapshot: _Snapshot) -> None:
        self.model.load_state_dict(snapshot.weights)
        self.optimizer.load_state_dict(snapshot.optimizer)
        if self.schedule is not None:
            self.schedule.load_state_dict(snapshot.schedule)
        self.model.set_random_state(snapshot.random)
        history = self.state.history
        del history[snapshot.history_length:]
        self.state = TrainState(**snapshot.counters, history=history)
        self.carried, self.best_weights = snapshot.carried, snapshot.best_weights

    # ---------------------------------------------------------------------- checkpoints
    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        """Everything needed to resume exactly, in one atomically written file (`rnnkit.resume`).
        Data-parallel: every rank calls it; rank 0 writes, with every rank's carried stream."""
        carried = self.carried
        if self.communicator is not None:
            carried = self.communicator.gather_stream(carried)
            if not self.communicator.is_root:
                return
        save_training(path, self.model, self.optimizer, self.schedule, self.state, carried, metadata)

    def restore(self, path: str | Path) -> dict:
        """Load a checkpoint written by `save` into this trainer, its model, optimizer and
        schedule; returns the user metadata. A checkpoint of a different model configuration or
        optimizer raises ValueError saying what differs."""
        self.state, self.carried, user = restore_training(path, self.model, self.optimizer, self.schedule)
        if self.communicator is not None:
            self.carried = self.communicator.local_stream(self.carried)
        return user
