"""The classifier and the regressor as scikit-learn estimators (as skorch gives PyTorch models
that face), so that `Pipeline`, `clone`, `GridSearchCV` and `cross_val_score` work with them:

    from rnnkit.apps.classify import RecurrentClassifier
    clf = RecurrentClassifier(hidden=32, epochs=5, random_state=0).fit(texts, labels)
    clf.predict(["a fine film"]); clf.predict_proba(...); clf.score(texts, labels)
    clf.save("sentiment.safetensors"); RecurrentClassifier.load("sentiment.safetensors").predict([...])

X is a list of strings (tokenised by `tokens` = "words" or "chars", the vocabulary built from
the training texts), an (N, T, F) array of N sequences of T steps of F numbers, or an (N, T)
array, read as N sequences of T single numbers. y: any class labels (`classes_`, sorted), or
numbers for the regressor. The network, the padding, the mask and the training steps are those
of `rnnkit classify train` (`model.build_model`, `labelled`, `data.buckets.LengthBuckets`), and
a saved estimator is that command's checkpoint: `rnnkit classify predict` reads it, and `load`
reads the command's (the tokenizer settings and the vocabulary travel in it).

scikit-learn is imported by this module only, which nothing on the command line's path imports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from rnnkit.checks import check_arguments
from rnnkit.optim import Adam
from rnnkit.threads import one_blas_thread
from rnnkit.train import Trainer

from .datasets import encode_texts
from .labelled import TextEncoder, build_vocabulary
from .model import KIND, build_model, load_model
from .training import Examples, plan_training

__all__ = ["RecurrentClassifier", "RecurrentRegressor"]

KINDS = {"cell": ("lstm", "gru", "rnn"), "hidden": "positive_int", "layers": "positive_int", "embed": "positive_int",
         "bidirectional": "bool", "dropout": "fraction", "epochs": "positive_int", "batch": "positive_int",
         "lr": "positive_float", "weight_decay": "non_negative_float", "clip": "non_negative_float",
         "tokens": ("words", "chars"), "lowercase": "bool", "min_freq": "positive_int", "max_vocab": "positive_int",
         "max_length": "positive_int", "validation_fraction": "fraction", "patience": "positive_int",
         "forget_bias": "finite_float"}


class _RecurrentEstimator(BaseEstimator):
    """What classifier and regressor share; the parameters are `rnnkit classify train`'s options."""

    _task = "classification"

    def __init__(self, *, cell: str = "lstm", hidden: int = 128, layers: int = 1, embed: int = 128,
                 bidirectional: bool = True, dropout: float = 0.5, epochs: int = 10, batch: int = 32,
                 lr: float = 5e-4, weight_decay: float = 0.0, clip: float = 5.0, tokens: str = "words",
                 lowercase: bool = True, min_freq: int = 2, max_vocab: int = 20000, max_length: int | None = None,
                 validation_fraction: float | None = None, patience: int | None = None, random_state=None,
                 forget_bias: float = 0.0):
        self.cell, self.hidden, self.layers, self.embed = cell, hidden, layers, embed
        self.bidirectional, self.dropout, self.epochs, self.batch = bidirectional, dropout, epochs, batch
        self.lr, self.weight_decay, self.clip, self.tokens = lr, weight_decay, clip, tokens
        self.lowercase, self.min_freq, self.max_vocab, self.max_length = lowercase, min_freq, max_vocab, max_length
        self.validation_fraction, self.patience, self.random_state = validation_fraction, patience, random_state
        self.forget_bias = forget_bias

    # ----------------------------------------------------------------------------- input
    def _inputs(self, X, *, reset: bool):
        """(inputs (N, T) ids or (N, T, F) floats, mask (N, T)); on `reset` (fit) the text
        settings and vocabulary are made, else those of the fitted model are used."""
        if _is_texts(X):
            texts = list(X)
            if reset:
                encoder = TextEncoder(self.tokens, self.lowercase, self.max_length)
                vocabulary = build_vocabulary(encoder.token_lists(texts), min_freq=self.min_freq,
                                              max_size=self.max_vocab)
                self.metadata_ = {"input": "text", "tokens": encoder.level, "lowercase": encoder.lowercase,
                                  "max_length": encoder.max_length, "vocabulary": vocabulary.tokens,
                                  "feature_shape": None}
                self.n_features_in_ = 1
            elif self.metadata_["input"] != "text":
                raise ValueError(f"this model reads sequences of shape {self.metadata_['feature_shape']}, not text")
            return encode_texts(self.metadata_, texts)
        if not reset and self.metadata_["input"] == "text":
            raise ValueError("this model reads text: give a list of strings")
        array = np.asarray(X) if not hasattr(X, "toarray") else X
        if getattr(array, "ndim", 2) == 3:
            array = _checked_3d(array)
            if reset:
                self.n_features_in_ = array.shape[2]
        else:
            array = validate_data(self, X, reset=reset, dtype=np.float64)[..., None]  # (N, T) -> (N, T, 1)
        shape = list(array.shape[1:])
        if reset:
            self.metadata_ = {"input": "features", "tokens": None, "lowercase": None, "max_length": None,
                              "vocabulary": None, "feature_shape": shape}
        elif shape != self.metadata_["feature_shape"]:
            raise ValueError(f"X has sequences of shape {shape}, but this model is expecting "
                             f"{self.metadata_['feature_shape']}")
        return array, np.ones(array.shape[:2], dtype=bool)

    def _targets(self, y, count: int) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------------------- fit
    def fit(self, X, y):
        """Train on sequences X and targets y for `epochs` passes (with `validation_fraction`, on
        the rest, keeping the epoch with the lowest validation loss; `patience` epochs without
        one stop early). Returns self."""
        check_arguments(self.get_params(), KINDS)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        inputs, mask = self._inputs(X, reset=True)
        targets = self._targets(y, len(inputs))
        seed = _seed(self.random_state)
        metadata = {**self.metadata_, "kind": KIND, "task": self._task, "source": "python", "dataset": None,
                    "text_column": None, "label_column": None, "split_seed": None, "labels": self._labels()}
        train = np.arange(len(inputs))
        validation = None
        if self.validation_fraction:
            train, held_out = _holdout(len(inputs), self.validation_fraction, seed)
            validation = Examples(inputs[held_out], mask[held_out], targets[held_out])
        model = build_model(metadata, targets[train], cell=self.cell, hidden=self.hidden, layers=self.layers,
                            embed=self.embed, dropout=self.dropout, bidirectional=self.bidirectional, seed=seed,
                            forget_bias=self.forget_bias)
        plan = plan_training(model, Examples(inputs[train], mask[train], targets[train]), validation,
                             batch=self.batch, lr=self.lr, weight_decay=self.weight_decay, clip=self.clip,
                             patience=self.patience, seed=seed)
        trainer = plan.run(epochs=self.epochs)
        if validation is not None and trainer.best_weights is not None:
            model.load_state_dict(trainer.best_weights)
        model.eval()
        self.model_, self.metadata_, self.history_ = model, metadata, list(trainer.state.history)
        self._trainer = trainer
        return self

    def _labels(self):
        return None

    def _outputs(self, X):
        """(the fitted model, X encoded as it reads, the mask of real steps)."""
        check_is_fitted(self, "model_")
        inputs, mask = self._inputs(X, reset=False)
        return self.model_, inputs, mask

    # ------------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> None:
        """One checkpoint with the weights, the tokenizer settings, the vocabulary and the classes:
        `load` and `rnnkit classify predict | eval` read it."""
        check_is_fitted(self, "model_")
        trainer = getattr(self, "_trainer", None) or Trainer(self.model_, Adam(self.model_.parameters()),
                                                             self.model_.loss)
        trainer.save(path, {**self.metadata_, "classes": self._classes_json(), "params": _json_params(self)})

    def _classes_json(self):
        return None

    @classmethod
    def load(cls, path: str | Path):
        """An estimator saved by `save` or written by `rnnkit classify train`, ready to predict on
        raw input (texts, or arrays of the shape it was trained on)."""
        model, metadata = load_model(path)
        if model.config.task != cls._task:
            other = "RecurrentRegressor" if cls._task == "classification" else "RecurrentClassifier"
            raise ValueError(f"{path} holds a {model.config.task} model; load it with {other}.load")
        n = model.config.network
        saved = metadata.get("params") or {}
        params = {**saved, "cell": n.cell, "hidden": n.hidden_size, "layers": n.num_layers,
                  "embed": n.embedding_size or cls().embed, "bidirectional": n.bidirectional, "dropout": n.dropout}
        if metadata["input"] == "text":
            params.update(tokens=metadata["tokens"], lowercase=metadata["lowercase"],
                          max_length=metadata["max_length"])
        estimator = cls(**{k: v for k, v in params.items() if k in cls._get_param_names()})
        estimator.model_, estimator.metadata_, estimator.history_ = model, metadata, []
        estimator.n_features_in_ = 1 if metadata["input"] == "text" else metadata["feature_shape"][-1]
        estimator._restore_classes(metadata)
        return estimator

    def _restore_classes(self, metadata: dict) -> None:
        pass


class RecurrentClassifier(ClassifierMixin, _RecurrentEstimator):
    """Many-to-one classification: P(class | sequence) from the last state (both directions)."""

    _task = "classification"

    def _targets(self, y, count: int) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)  # "Unknown label type: continuous" for numbers that are no classes
        if len(y) != count:
            raise ValueError(f"y must be one label per sequence: {count} labels, got shape {y.shape}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError("y holds NaN or infinite labels")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has {len(self.classes_)} class; a classifier needs at least two")
        return encoded.astype(np.int64)

    def _labels(self):
        return [str(c) for c in self.classes_]

    def _classes_json(self):
        return [c.item() if hasattr(c, "item") else c for c in self.classes_]

    def _restore_classes(self, metadata: dict) -> None:
        self.classes_ = np.array(metadata.get("classes") or metadata["labels"])

    def predict_proba(self, X) -> np.ndarray:
        """P(class | sequence), (N, classes) in the order of `classes_`."""
        model, inputs, mask = self._outputs(X)
        with one_blas_thread():
            return model.predict_proba(inputs, mask)

    def predict(self, X) -> np.ndarray:
        """The likeliest class of each sequence."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]


class RecurrentRegressor(RegressorMixin, _RecurrentEstimator):
    """Many-to-one regression: one number per sequence (the standardised target by squared error)."""

    _task = "regression"

    def _targets(self, y, count: int) -> np.ndarray:
        try:
            y = column_or_1d(y, warn=True).astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError("y must hold one number per sequence for a regressor") from None
        if len(y) != count:
            raise ValueError(f"y must be one number per sequence: {count} numbers, got shape {y.shape}")
        if not np.isfinite(y).all():
            raise ValueError("y holds NaN or infinite values")
        return y

    def predict(self, X) -> np.ndarray:
        """The predicted number for each sequence."""
        model, inputs, mask = self._outputs(X)
        with one_blas_thread():
            return model.predict(inputs, mask)


# ------------------------------------------------------------------------------ helpers
def _is_texts(X) -> bool:
    if isinstance(X, str):
        raise ValueError("X is one string; give a list of strings (one per sequence)")
    if isinstance(X, np.ndarray):
        return X.dtype.kind in "UO" and X.ndim == 1 and all(isinstance(x, str) for x in X)
    if hasattr(X, "toarray") or hasattr(X, "dtypes"):
        return False
    try:
        items = list(X)
    except TypeError:
        return False
    return bool(items) and all(isinstance(x, str) for x in items)


def _checked_3d(array) -> np.ndarray:
    try:
        array = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("X must be texts or an array of numbers, (N, T) or (N, T, F)") from None
    if 0 in array.shape:
        raise ValueError(f"X is empty (shape {array.shape}); give at least one sequence with one step")
    if not np.isfinite(array).all():
        raise ValueError("X holds NaN or infinite values")
    return array


def _holdout(count: int, fraction: float, seed: int):
    held = max(1, int(round(count * fraction)))
    if held >= count:
        raise ValueError(f"validation_fraction {fraction} leaves no training examples out of {count}")
    order = np.random.default_rng(seed).permutation(count)
    return order[held:], order[:held]


def _seed(random_state) -> int:
    """An integer seed: the random_state itself, or one drawn from it (None: fresh entropy)."""
    if random_state is None:
        return int(np.random.default_rng().integers(2**31))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state={random_state}: expected an integer >= 0, a RandomState or None")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31))
    raise ValueError(f"random_state={random_state!r}: expected an integer >= 0, a RandomState or None")


def _json_params(estimator) -> dict:
    params = estimator.get_params()
    return {k: v for k, v in params.items() if k != "random_state" and (v is None or isinstance(v, (bool, int, float,
                                                                                                   str)))}
