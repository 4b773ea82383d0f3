"""One trial: train a variant on a task with one draw of hyperparameters, for the study's budget,
and score it. A plain function of plain values, so Ray can run it on any worker of a cluster.

The optimizer is Greff et al.'s, SGD with Nesterov momentum, or Adam (with `momentum` as beta1).
A trial whose loss or gradient stops being finite ends as "diverged" (a property of its
hyperparameters, reported but not scored); any other exception propagates, and the study records
the trial as "failed" with the error.
"""

from __future__ import annotations

import math
import socket
import time

import numpy as np

from rnnkit.network import SequenceNetwork
from rnnkit.optim import SGD, Adam
from rnnkit.threads import one_blas_thread
from rnnkit.train import Trainer, TrainingDiverged

from . import tasks
from .spec import Trial

__all__ = ["run_trial", "trial_record"]


def trial_record(trial: Trial, **fields) -> dict:
    """The JSON line for a trial: its identity, its hyperparameters, then `fields`."""
    return {"key": trial.key, "task": trial.task, "variant": trial.variant, "trial": trial.index,
            "hyperparameters": dict(trial.hyperparameters), **fields}


def run_trial(trial: Trial, data: dict, optimizer: str, steps: int, max_seconds: float | None) -> dict:
    started = time.perf_counter()
    hp = trial.hyperparameters
    with one_blas_thread():
        setup = tasks.setup(trial.task, data, int(hp["batch_size"]), float(hp["input_noise"]), trial)
        config = tasks.network_config(trial.variant, setup.input_size, setup.output_size, int(hp["hidden_size"]))
        model = SequenceNetwork(config, rng=np.random.default_rng(trial.seed_for("weights")))
        if optimizer == "sgd":
            momentum = float(hp["momentum"])
            update = SGD(model.parameters(), lr=float(hp["learning_rate"]), momentum=momentum,
                         nesterov=momentum > 0)
        else:
            update = Adam(model.parameters(), lr=float(hp["learning_rate"]), betas=(float(hp["momentum"]), 0.999))
        clip = float(hp["clip_norm"]) or None
        trainer = Trainer(model, update, setup.loss, clip_norm=clip)
        common = {"host": socket.gethostname(), "parameters": int(sum(p.value.size for p in model.parameters()))}
        try:
            trainer.fit(setup.train, steps=steps, max_seconds=max_seconds, eval_every=steps + 1)
            score = trainer.evaluate(setup.validation)
        except TrainingDiverged as error:
            return trial_record(trial, status="diverged", score=None, error=str(error),
                                steps=trainer.state.step, seconds=time.perf_counter() - started, **common)
        if not math.isfinite(score):
            return trial_record(trial, status="diverged", score=None, error=f"validation score {score}",
                                steps=trainer.state.step, seconds=time.perf_counter() - started, **common)
        extra = setup.extra(model) if setup.extra is not None else {}
        return trial_record(trial, status="ok", score=float(score), metric=tasks.METRICS[trial.task],
                            steps=trainer.state.step, seconds=time.perf_counter() - started, **extra, **common)
