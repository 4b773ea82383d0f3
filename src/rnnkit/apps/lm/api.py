"""The language model in a notebook, five lines from a text to a sample:

    from rnnkit.apps import lm
    model = lm.train("hello", steps=300)          # a named corpus, a text file, or the text itself
    model.sample(20, prime="h", seed=0)           # 'hellohellohello...'
    model.perplexity("hello hello"), model.history, model.plot_history()
    model.save("hello.safetensors"); lm.load("hello.safetensors")

The settings are `rnnkit lm train`'s (the same names, defaults and corpus presets), the data, the
network, the optimizer and the trainer come from `training.py`'s functions, and a saved model is
the command's checkpoint (`rnnkit lm sample | eval | train --resume` read it). The progress bar
is `tqdm.auto`'s: a widget in a notebook, text elsewhere. pandas is imported for `history` only.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from types import SimpleNamespace

from rnnkit.cells.lstm import VARIANTS
from rnnkit.checkpoint import load_checkpoint
from rnnkit.checks import check_arguments
from rnnkit.data.corpora import CORPORA
from rnnkit.losses import softmax_cross_entropy
from rnnkit.optional import require
from rnnkit.train import Trainer

from . import training
from .model import LanguageModel

__all__ = ["TextModel", "load", "train"]

KINDS = {
    "cell": ("lstm", "gru", "rnn"), "peephole": "bool", "variant": VARIANTS,
    "nonlinearity": ("tanh", "relu", "sigmoid", "leaky_relu", "elu"), "textbook_gru": "bool",
    "hidden": "positive_int", "layers": "positive_int", "embed": "non_negative_int", "dropout": "fraction",
    "seq_len": "positive_int", "batch": "positive_int", "k1": "positive_int", "k2": "positive_int",
    "steps": "positive_int", "epochs": "positive_int", "minutes": "positive_float", "lr": "positive_float",
    "optimizer": tuple(sorted(training.OPTIMIZERS)), "clip": "non_negative_float", "lr_decay": "positive_float",
    "lr_decay_after": "non_negative_int", "val_frac": "fraction", "eval_every": "positive_int",
    "seed": "non_negative_int", "tokens": ("chars", "words"), "vocab_size": "positive_int", "tie_weights": "bool",
    "layer_norm": "bool", "input_dropout": "fraction", "recurrent_dropout": "fraction", "forget_bias": "finite_float",
    "val_tokens": "positive_int",
}
NOT_HERE = {"corpus", "out", "sample_every", "sample_length", "prime"}  # the command's reporting and files


class TextModel(LanguageModel):
    """A trained language model with the notebook's conveniences: `sample`, `perplexity`,
    `history` (a DataFrame), `plot_history`, `save`. Everything of `LanguageModel` (generate,
    loss, network, vocabulary) is there too."""

    trainer: Trainer | None = None
    settings: dict | None = None
    records: list[dict] = []

    def sample(self, n: int = 200, *, temperature: float = 1.0, prime: str = "", top_k: int | None = None,
               seed: int | None = None, greedy: bool = False) -> str:
        """`prime` followed by `n` sampled tokens, as `rnnkit lm sample` prints them: each drawn from
        softmax(logits / temperature), among the `top_k` likeliest if given (argmax if greedy)."""
        check_arguments({"n": n, "temperature": temperature, "top_k": top_k, "seed": seed, "greedy": greedy},
                        {"n": "positive_int", "temperature": "positive_float", "top_k": "positive_int",
                         "seed": "non_negative_int", "greedy": "bool"})
        if not isinstance(prime, str):
            raise ValueError(f"prime={prime!r}: expected a string")
        self.require_known(prime, "the prime")
        return prime + self.generate(n, temperature=temperature, top_k=top_k, greedy=greedy, prime=prime, rng=seed)

    def perplexity(self, text: str) -> float:
        """exp(nats per token) of `text` (as `rnnkit lm eval`); unseen characters raise ValueError."""
        if not isinstance(text, str):
            raise ValueError(f"expected a text (a string), got {type(text).__name__}")
        self.require_known(text, "the text")
        return math.exp(self.loss(text)[0])

    @property
    def history(self):
        """One row per training step: loss (nats per token), grad_norm, lr, val_loss where evaluated."""
        pd = require("pandas", "notebook", "the history as a DataFrame")
        frame = pd.DataFrame(self.records)
        return frame.set_index("step") if "step" in frame else frame

    def plot_history(self, ax=None):
        """The training loss (a running mean) and the validation loss against the step; returns the axes."""
        import matplotlib.pyplot as plt

        if not self.records:
            raise ValueError("this model has no training history to plot")
        history = self.history
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        ax.plot(history.index, history["loss"].ewm(alpha=0.05).mean(), label="training (running mean)")
        if "val_loss" in history:
            evaluated = history["val_loss"].dropna()
            ax.plot(evaluated.index, evaluated, marker="o", label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel(f"nats/{self.unit}")
        ax.legend()
        return ax

    def save(self, path: str | Path) -> None:
        """A checkpoint of `rnnkit lm train`'s layout: `load`, `rnnkit lm sample | eval` read it."""
        trainer = self.trainer or Trainer(self.network, training.OPTIMIZERS["adam"](self.network.parameters()),
                                          softmax_cross_entropy)
        trainer.save(path, {**self.metadata(), "settings": self.settings or {}})


def train(text_or_corpus: str | Path = "shakespeare", *, progress: bool = True, **settings) -> TextModel:
    """Train a language model on a named corpus ("shakespeare", "python", "hello"), a text file
    (a Path, or a string naming an existing file) or a text given as a string, with
    `rnnkit lm train`'s settings as keywords (hidden=, layers=, cell=, steps=, seq_len=, lr=, ...;
    the defaults and the corpus's preset otherwise). `progress`: a tqdm.auto bar."""
    unknown = sorted(set(settings) - set(KINDS))
    if unknown:
        known = ", ".join(sorted(KINDS))
        hint = " (the command's reporting and output options do not apply here)" if set(unknown) & NOT_HERE else ""
        raise ValueError(f"unknown setting {unknown[0]!r}{hint}; the settings are: {known}")
    check_arguments(settings, KINDS)
    source_file = None
    with tempfile.TemporaryDirectory() as folder:
        args = SimpleNamespace(text_file=None, corpus=None, **settings)
        if isinstance(text_or_corpus, str) and text_or_corpus in CORPORA:
            args.corpus = text_or_corpus
        elif isinstance(text_or_corpus, Path) or _names_a_file(text_or_corpus):
            args.text_file = source_file = str(text_or_corpus)
        elif isinstance(text_or_corpus, str):
            if not text_or_corpus:
                raise ValueError("the text is empty; give some text, a text file or a corpus name "
                                 f"({', '.join(CORPORA)})")
            args.text_file = Path(folder) / "text.txt"  # training.prepare_data reads the text from a file
            args.text_file.write_text(text_or_corpus, encoding="utf-8")
        else:
            raise ValueError(f"expected a text, a file or a corpus name, got {type(text_or_corpus).__name__}")
        resolved = training.settings_from(args, None)
        vocabulary, train_ids, val_ids, _, _ = training.prepare_data(args, resolved, None)
    resolved.update(sample_every=0, out=None, source_file=source_file)  # no file: the text was given as a string
    batches = training.training_batches(train_ids, resolved)
    validation = training.validation_batches(val_ids, resolved)
    trainer, language_model = training.build_trainer(resolved, vocabulary)
    model = TextModel(language_model.network, vocabulary, resolved["tokens"])
    model.trainer, model.settings = trainer, resolved
    bar = _ProgressBar(resolved, batches) if progress else None
    if bar is not None:
        trainer.callbacks.append(bar.update)
    try:
        trainer.fit(batches, steps=resolved["steps"], epochs=resolved["epochs"],
                    max_seconds=resolved["minutes"] * 60 if resolved["minutes"] else None,
                    validation=validation, eval_every=resolved["eval_every"])
    finally:
        if bar is not None:
            bar.close()
    model.network.eval()
    model.records = trainer.state.history
    return model


def _names_a_file(text) -> bool:
    """Whether a string is the path of an existing file (rather than a text to train on)."""
    if not isinstance(text, str) or "\n" in text or len(text) > 1024:
        return False
    try:
        return Path(text).is_file()
    except OSError:  # a name too long for the file system, say
        return False


def load(path: str | Path) -> TextModel:
    """A language model saved by `TextModel.save` or written by `rnnkit lm train`, with its history."""
    model = TextModel.load(path)
    info = load_checkpoint(path)[1]
    model.settings = (info.get("user") or {}).get("settings")
    model.records = (info.get("trainer") or {}).get("history") or []
    return model


class _ProgressBar:
    """tqdm.auto's bar over the training steps, the running-mean loss and the last validation loss."""

    def __init__(self, settings: dict, batches):
        from tqdm.auto import tqdm

        total = settings["steps"] or (settings["epochs"] * len(batches) if settings["epochs"] else None)
        self.bar = tqdm(total=total, unit="step")
        self.smoothed = self.val = None

    def update(self, trainer, record: dict) -> None:
        self.smoothed = record["loss"] if self.smoothed is None else 0.95 * self.smoothed + 0.05 * record["loss"]
        self.val = record.get("val_loss", self.val)
        postfix = {"loss": f"{self.smoothed:.3f}"} | ({"val": f"{self.val:.3f}"} if self.val is not None else {})
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(record["step"] - self.bar.n)

    def close(self) -> None:
        self.bar.close()
