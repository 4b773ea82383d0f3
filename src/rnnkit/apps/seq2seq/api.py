"""The encoder-decoder in a notebook:

    from rnnkit.apps.seq2seq import Translator
    model = Translator(hidden=64, epochs=20).fit([("abc", "cba"), ("hello", "olleh"), ...])
    model.translate(["abc", "hello"], beam=3)     # ['cba', 'olleh']

`train_seq2seq` is the training `rnnkit seq2seq train` runs too; a saved model is the
command's checkpoint (`rnnkit seq2seq translate` reads it, and `Translator.load` reads the
command's)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rnnkit.checks import check_arguments
from rnnkit.data.batches import ExampleBatches
from rnnkit.losses import softmax_cross_entropy
from rnnkit.optim import Adam
from rnnkit.optional import require
from rnnkit.schedules import CosineDecay
from rnnkit.train import Trainer

from .model import KIND, Seq2Seq, Seq2SeqConfig, exact_match
from .pairs import PairVocabulary

__all__ = ["Translator", "train_seq2seq"]

SETTINGS = {"cell": "lstm", "hidden": 128, "layers": 1, "embed": 32, "epochs": 30, "batch": 64, "lr": 0.01,
            "seed": 0, "forget_bias": 0.0}
KINDS = {"cell": ("lstm", "gru", "rnn"), "hidden": "positive_int", "layers": "positive_int", "embed": "positive_int",
         "epochs": "positive_int", "batch": "positive_int", "lr": "positive_float", "seed": "non_negative_int",
         "forget_bias": "finite_float"}


def train_seq2seq(pairs, vocabulary: PairVocabulary, settings: dict, *, max_length: int | None = None,
                  checkpoint_dir: str | Path | None = None,
                  callbacks: tuple[Callable, ...] = ()) -> tuple[Seq2Seq, Trainer, int]:
    """Train an encoder-decoder on (source, target) pairs with teacher forcing, Adam and a cosine
    decay of the rate to 0 over the run: (model, trainer, the decoding limit `max_length`, by
    default the longest target + 2). `settings` has SETTINGS' keys."""
    sources, inputs, targets, mask = vocabulary.arrays(pairs)
    config = Seq2SeqConfig(len(vocabulary), cell=settings["cell"], hidden_size=settings["hidden"],
                           num_layers=settings["layers"], embedding_size=settings["embed"],
                           forget_bias=settings.get("forget_bias", 0.0))
    model = Seq2Seq(config, rng=settings["seed"])
    batches = ExampleBatches(inputs, targets, mask=mask, context=sources, batch_size=settings["batch"],
                             seed=settings["seed"])
    optimizer = Adam(model.parameters(), lr=settings["lr"])
    # The rate falls to zero along a cosine over the run: large steps early, fine ones at the end
    # (with a constant rate the accuracy on addition kept jumping around 98 %).
    schedule = CosineDecay(optimizer, total_steps=settings["epochs"] * len(batches))
    trainer = Trainer(model, optimizer, softmax_cross_entropy, clip_norm=5.0, schedule=schedule,
                      schedule_unit="step")
    trainer.callbacks += list(callbacks)
    max_length = max_length or max(len(target) for _, target in pairs) + 2
    trainer.fit(batches, epochs=settings["epochs"], checkpoint_dir=checkpoint_dir,
                metadata={"kind": KIND, "vocabulary": vocabulary.tokens, "max_length": max_length})
    return model, trainer, max_length


def check_pairs(pairs) -> list[tuple[str, str]]:
    """A list of (source, target) string pairs, both sides non-empty; else one ValueError."""
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no pairs to train on; give (source, target) string pairs")
    for number, pair in enumerate(pairs, start=1):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise ValueError(f"pair {number} is {pair!r}; each pair must be (source, target), two strings")
        if not pair[0] or not pair[1]:
            raise ValueError(f"pair {number}: the {'source' if not pair[0] else 'target'} is empty")
    return [tuple(pair) for pair in pairs]


class Translator:
    """An encoder-decoder over characters with `rnnkit seq2seq train`'s settings: `fit(pairs)`,
    `translate(strings, beam=)`, `score(pairs)` (exact match), `save`/`load`, `history`."""

    def __init__(self, *, cell: str = "lstm", hidden: int = 128, layers: int = 1, embed: int = 32,
                 epochs: int = 30, batch: int = 64, lr: float = 0.01, seed: int = 0, forget_bias: float = 0.0):
        self.settings = {"cell": cell, "hidden": hidden, "layers": layers, "embed": embed, "epochs": epochs,
                         "batch": batch, "lr": lr, "seed": seed, "forget_bias": forget_bias}
        check_arguments(self.settings, KINDS)
        self.model: Seq2Seq | None = None
        self.vocabulary: PairVocabulary | None = None
        self.max_length: int | None = None
        self._trainer: Trainer | None = None

    def fit(self, pairs) -> Translator:
        """Train on (source, target) string pairs; the vocabulary is their characters."""
        pairs = check_pairs(pairs)
        self.vocabulary = PairVocabulary.from_pairs(pairs)
        self.model, self._trainer, self.max_length = train_seq2seq(pairs, self.vocabulary, self.settings)
        return self

    def _fitted(self) -> Seq2Seq:
        if self.model is None:
            raise ValueError("this translator has not been fitted yet; call fit(pairs) or load(path) first")
        return self.model

    def translate(self, sources, *, beam: int = 1, max_length: int | None = None):
        """The translation of each source string (greedy, or beam search of width `beam`); one
        string in, one string out. Characters the model never saw raise ValueError."""
        model = self._fitted()
        check_arguments({"beam": beam, "max_length": max_length}, {"beam": "positive_int",
                                                                   "max_length": "positive_int"})
        single = isinstance(sources, str)
        sources = [sources] if single else list(sources)
        for number, source in enumerate(sources, start=1):
            if not isinstance(source, str):
                raise ValueError(f"source {number} is {source!r}; give strings")
            if not source:
                raise ValueError(f"source {number} is empty")
        limit = max_length or self.max_length
        outputs = [self.vocabulary.decode(model.decode(self.vocabulary.sources([s])[0], max_length=limit, beam=beam))
                   for s in sources]
        return outputs[0] if single else outputs

    def score(self, pairs, *, beam: int = 1) -> float:
        """The fraction of (source, target) pairs translated exactly."""
        return exact_match(self._fitted(), self.vocabulary, check_pairs(pairs), beam, self.max_length)

    @property
    def history(self):
        """The training history as a DataFrame, one row per step."""
        history = [] if self._trainer is None else self._trainer.state.history
        return require("pandas", "notebook", "the history as a DataFrame").DataFrame(history)

    def save(self, path: str | Path) -> None:
        """The weights, vocabulary and decoding limit in one checkpoint (`rnnkit seq2seq translate` reads it)."""
        model = self._fitted()
        trainer = self._trainer or Trainer(model, Adam(model.parameters()), softmax_cross_entropy)
        trainer.save(path, {"kind": KIND, "vocabulary": self.vocabulary.tokens, "max_length": self.max_length})

    @classmethod
    def load(cls, path: str | Path) -> Translator:
        """A translator saved by `save` or written by `rnnkit seq2seq train`."""
        model, vocabulary, max_length = Seq2Seq.load(path)
        c = model.config
        translator = cls(cell=c.cell, hidden=c.hidden_size, layers=c.num_layers, embed=c.embedding_size)
        translator.model, translator.vocabulary, translator.max_length = model, vocabulary, max_length
        return translator
