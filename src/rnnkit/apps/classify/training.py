"""Training a many-to-one model: the one code path of `rnnkit classify train` and of the
scikit-learn estimators' `fit`. Batches of similar length (`LengthBuckets`), Adam with optional
weight decay, the gradient's global norm clipped; with validation data, one evaluation per epoch,
the best epoch kept and `patience` epochs without a better validation loss ending the run. Under
MPI (`communicator`) each rank trains on its block of every batch.

Before that, `pretrain_language_model` may train the model's embedding and recurrent stack as a
language model of unlabelled sentences (Dai & Le 2015; `rnnkit.pretrain`), in place: the
classifier then starts from those weights and fine-tunes all of them. ULMFiT's fixes for a
pretrained encoder (Howard & Ruder 2018) are options of `plan_training`: `freeze_encoder_epochs`
trains the head alone on the frozen encoder first (its large early gradients, from random
weights, would wreck the pretrained features), `encoder_lr_scale` then updates the encoder (the
embedding and recurrent stack) with a fraction of the head's learning rate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnnkit.data.buckets import LengthBuckets
from rnnkit.optim import Adam
from rnnkit.pretrain import pretrain_encoder
from rnnkit.threads import one_blas_thread
from rnnkit.train import Trainer

from .labelled import UNK_ID

TRANSFERS = ("all", "embedding")  # what the classifier takes from the pretrained language model

__all__ = ["TRANSFERS", "Examples", "TrainingPlan", "encoder_parameters", "plan_training", "pretrain_language_model"]


@dataclass
class Examples:
    """Encoded sequences: inputs (N, T) ids or (N, T, F) features, mask (N, T) of real steps,
    targets (N,)."""

    inputs: np.ndarray
    mask: np.ndarray
    targets: np.ndarray


@dataclass
class TrainingPlan:
    """A trainer with its batches, ready to run: `updates_per_epoch` is known before training
    starts (the command warns when it is small)."""

    trainer: Trainer
    batches: LengthBuckets
    validation: LengthBuckets | None
    patience: int | None

    @property
    def updates_per_epoch(self) -> int:
        return len(self.batches)

    def run(self, *, epochs: int, max_seconds: float | None = None, checkpoint_dir=None,
            metadata: dict | None = None, callbacks: tuple[Callable, ...] = ()) -> Trainer:
        """Train (one BLAS thread: these products are small) and return the trainer."""
        self.trainer.callbacks += list(callbacks)
        with one_blas_thread():
            self.trainer.fit(self.batches, epochs=epochs, max_seconds=max_seconds, validation=self.validation,
                             eval_every=len(self.batches) if self.validation is not None else None,
                             patience=self.patience if self.validation is not None else None,
                             checkpoint_dir=checkpoint_dir, metadata=metadata)
        return self.trainer


def plan_training(model, train: Examples, validation: Examples | None, *, batch: int, lr: float,
                  weight_decay: float, clip: float | None, patience: int | None, seed: int,
                  communicator=None, freeze_encoder_epochs: int = 0, encoder_lr_scale: float = 1.0) -> TrainingPlan:
    """The trainer and batches for `model` (a SequenceClassifier or SequenceRegressor). The encoder
    (embedding and recurrent stack) is frozen for the first `freeze_encoder_epochs` epochs, then
    updated with lr * `encoder_lr_scale` (module docstring)."""
    if isinstance(freeze_encoder_epochs, bool) or not isinstance(freeze_encoder_epochs, (int, np.integer)) \
            or freeze_encoder_epochs < 0:
        raise ValueError(f"freeze_encoder_epochs must be an integer >= 0, got {freeze_encoder_epochs!r}")
    if not (np.isfinite(encoder_lr_scale) and encoder_lr_scale > 0):
        raise ValueError(f"encoder_lr_scale must be a positive number, got {encoder_lr_scale!r}")
    optimizer = Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    encoder = encoder_parameters(model)
    optimizer.set_lr_scale(encoder, 0.0 if freeze_encoder_epochs else encoder_lr_scale)
    batches = LengthBuckets(train.inputs, train.mask, train.targets, batch_size=batch, seed=seed)
    callbacks = []
    if freeze_encoder_epochs:
        def unfreeze(trainer, record) -> None:
            if record["step"] == freeze_encoder_epochs * len(batches):
                trainer.optimizer.set_lr_scale(encoder, encoder_lr_scale)

        callbacks.append(unfreeze)
    trainer = Trainer(model, optimizer, model.loss, clip_norm=clip or None, communicator=communicator,
                      callbacks=callbacks)
    held_out = (None if validation is None else
                LengthBuckets(validation.inputs, validation.mask, validation.targets, batch_size=256))
    if communicator is not None:  # each rank trains and validates its block of every batch
        batches = batches.shard(communicator.rank, communicator.size)
        held_out = None if held_out is None else held_out.shard(communicator.rank, communicator.size)
    return TrainingPlan(trainer, batches, held_out, patience)


def encoder_parameters(model) -> list:
    """The parameters language-model pretraining gives: the embedding's (if any) and the recurrent stack's."""
    embedding = getattr(model, "embedding", None)
    return (list(embedding.parameters()) if embedding is not None else []) + list(model.rnn.parameters())


def pretrain_language_model(model, ids: np.ndarray, mask: np.ndarray, *, epochs: int, lr: float, batch: int,
                            clip: float | None, seed: int, report=None, output_size: int | None = None,
                            keep: str = "all") -> list[float]:
    """Pretrain `model`'s embedding and recurrent stack (in place) as a language model of the
    sentences `ids`/`mask` (N, T), with the model's own dropout; returns each epoch's mean loss.
    `output_size`: predict only the ids below it (the commonest words), the rest as <unk>.
    keep: "all" (the classifier starts from the pretrained embedding and recurrent stack) or
    "embedding" (from the pretrained word vectors only, its recurrent stack as initialised)."""
    if keep not in TRANSFERS:
        raise ValueError(f"unknown transfer {keep!r}; choose one of {', '.join(TRANSFERS)}")
    if model.config.network.input_kind != "embedding":
        raise ValueError("language-model pretraining needs a model that reads text (an embedding of token ids)")
    vocabulary = model.config.network.input_size
    initial = {name: p.value.copy() for name, p in model.rnn.named_parameters()}
    with one_blas_thread():
        losses = pretrain_encoder(model.embedding, model.rnn, ids, mask, epochs=epochs, batch_size=batch, lr=lr,
                                  dropout=model.config.network.dropout, clip=clip, seed=seed, report=report,
                                  output_size=None if output_size is None else min(output_size, vocabulary),
                                  unknown_id=UNK_ID)
    if keep == "embedding":
        for name, p in model.rnn.named_parameters():
            p.value[...] = initial[name]
    return losses
