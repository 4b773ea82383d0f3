"""The captioner in a notebook:

    from rnnkit.apps.caption import ImageCaptioner
    model = ImageCaptioner(hidden=64, epochs=20).fit()     # the digits and their generated captions
    model.describe(images[:3], beam=3)                    # ['a bold handwritten seven', ...]

`fit(images, captions)` takes any feature vectors (N, F) and sentences. `train_captioner` is the
training `rnnkit caption train` runs too; a saved model is the command's checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnnkit.checks import check_arguments
from rnnkit.data.batches import ExampleBatches
from rnnkit.losses import softmax_cross_entropy
from rnnkit.network import NetworkConfig
from rnnkit.optim import Adam
from rnnkit.optional import require
from rnnkit.train import Trainer

from .data import caption_split, teacher_forced_captions
from .model import KIND, Captioner, CaptionerConfig

__all__ = ["ImageCaptioner", "train_captioner", "MAX_WORDS"]

MAX_WORDS = 8  # the longest caption decoding writes
SETTINGS = {"cell": "lstm", "hidden": 128, "layers": 1, "embed": 16, "epochs": 150, "lr": 0.01, "seed": 0,
            "forget_bias": 0.0}
KINDS = {"cell": ("lstm", "gru", "rnn"), "hidden": "positive_int", "layers": "positive_int", "embed": "positive_int",
         "epochs": "positive_int", "lr": "positive_float", "seed": "non_negative_int",
         "forget_bias": "finite_float"}


def train_captioner(images: np.ndarray, captions: list[str], settings: dict, *,
                    checkpoint_dir: str | Path | None = None,
                    callbacks: tuple[Callable, ...] = ()) -> tuple[Captioner, list[str], Trainer]:
    """Train a captioner on feature vectors (N, F) and their sentences (teacher forcing, Adam,
    batches of 64): (model, word vocabulary, trainer). `settings` has SETTINGS' keys."""
    vocabulary, inputs, targets, mask = teacher_forced_captions(captions)
    decoder = NetworkConfig(len(vocabulary), len(vocabulary), cell=settings["cell"], hidden_size=settings["hidden"],
                            num_layers=settings["layers"], input_kind="embedding", embedding_size=settings["embed"],
                            forget_bias=settings.get("forget_bias", 0.0))
    model = Captioner(CaptionerConfig(images.shape[1], decoder), rng=settings["seed"])
    trainer = Trainer(model, Adam(model.parameters(), lr=settings["lr"]), softmax_cross_entropy, clip_norm=5.0)
    trainer.callbacks += list(callbacks)
    batches = ExampleBatches(inputs, targets, mask=mask, context=images.astype(np.float32), batch_size=64,
                             seed=settings["seed"])
    trainer.fit(batches, epochs=settings["epochs"], checkpoint_dir=checkpoint_dir,
                metadata={"kind": KIND, "vocabulary": vocabulary})
    return model, vocabulary, trainer


def check_images(images, feature_size: int | None = None) -> np.ndarray:
    """Images as a float (N, F) array (an (N, H, W) stack is flattened); ValueError otherwise."""
    try:
        array = np.asarray(images, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("images must be an array of numbers, (N, features) or (N, height, width)") from None
    if array.ndim == 1 and feature_size is not None and array.size == feature_size:
        array = array[None]  # one image
    if array.ndim < 2 or len(array) == 0:
        raise ValueError(f"images must be (N, features) or (N, height, width) with N >= 1, got shape {array.shape}")
    array = array.reshape(len(array), -1)
    if feature_size is not None and array.shape[1] != feature_size:
        raise ValueError(f"this captioner reads images of {feature_size} values, got {array.shape[1]}")
    if not np.isfinite(array).all():
        raise ValueError("the images hold NaN or infinite values")
    return array


class ImageCaptioner:
    """One image (a feature vector) sets a decoder's first state; the decoder writes a sentence.
    `rnnkit caption train`'s settings; `fit`, `describe(images, beam=)`, `score`, `save`/`load`."""

    def __init__(self, *, cell: str = "lstm", hidden: int = 128, layers: int = 1, embed: int = 16,
                 epochs: int = 150, lr: float = 0.01, seed: int = 0, forget_bias: float = 0.0):
        self.settings = {"cell": cell, "hidden": hidden, "layers": layers, "embed": embed, "epochs": epochs,
                         "lr": lr, "seed": seed, "forget_bias": forget_bias}
        check_arguments(self.settings, KINDS)
        self.model: Captioner | None = None
        self.vocabulary: list[str] | None = None
        self._trainer: Trainer | None = None

    def fit(self, images=None, captions: list[str] | None = None, *,
            checkpoint_dir: str | Path | None = None) -> ImageCaptioner:
        """Train on images (N, F) or (N, H, W) and one sentence each; with neither, on the
        training part of the captioned digits (`rnnkit caption train`'s data). With
        `checkpoint_dir`, the trainer's checkpoints go there (last.safetensors)."""
        if images is None and captions is None:
            all_images, _, all_captions, train, _ = caption_split()
            images, captions = all_images[train], [all_captions[i] for i in train]
        if images is None or captions is None:
            raise ValueError("give both the images and their captions (or neither, for the digits)")
        images = check_images(images)
        captions = list(captions)
        if len(captions) != len(images):
            raise ValueError(f"{len(images)} images but {len(captions)} captions; give one caption per image")
        for number, caption in enumerate(captions, start=1):
            if not isinstance(caption, str) or not caption.split():
                raise ValueError(f"caption {number} is {caption!r}; every caption needs at least one word")
        self.model, self.vocabulary, self._trainer = train_captioner(images, captions, self.settings,
                                                                            checkpoint_dir=checkpoint_dir)
        return self

    def _fitted(self) -> Captioner:
        if self.model is None:
            raise ValueError("this captioner has not been fitted yet; call fit() or load(path) first")
        return self.model

    def describe(self, images, *, beam: int = 1, max_words: int = MAX_WORDS) -> list[str]:
        """A caption for each image (greedy, or beam search of width `beam`)."""
        model = self._fitted()
        check_arguments({"beam": beam, "max_words": max_words}, {"beam": "positive_int", "max_words": "positive_int"})
        images = check_images(images, model.config.feature_size).astype(np.float32)
        return [" ".join(self.vocabulary[k] for k in model.decode(image, max_length=max_words, beam=beam))
                for image in images]

    def score(self, images, captions, *, beam: int = 1) -> float:
        """The fraction of images captioned exactly."""
        written = self.describe(images, beam=beam)
        if len(written) != len(captions):
            raise ValueError(f"{len(written)} images but {len(captions)} captions")
        return float(np.mean([w.split() == c.split() for w, c in zip(written, captions)]))

    @property
    def history(self):
        """The training history as a DataFrame, one row per step."""
        history = [] if self._trainer is None else self._trainer.state.history
        return require("pandas", "notebook", "the history as a DataFrame").DataFrame(history)

    def save(self, path: str | Path) -> None:
        """Weights and vocabulary in one checkpoint (`rnnkit caption describe` reads it)."""
        model = self._fitted()
        trainer = self._trainer or Trainer(model, Adam(model.parameters()), softmax_cross_entropy)
        trainer.save(path, {"kind": KIND, "vocabulary": self.vocabulary})

    @classmethod
    def load(cls, path: str | Path) -> ImageCaptioner:
        """A captioner saved by `save` or written by `rnnkit caption train`."""
        model, vocabulary = Captioner.load(path)
        d = model.config.decoder
        captioner = cls(cell=d.cell, hidden=d.hidden_size, layers=d.num_layers, embed=d.embedding_size)
        captioner.model, captioner.vocabulary = model, vocabulary
        return captioner
