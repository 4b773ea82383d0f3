"""Classical models to print beside a sequence classifier or regressor, fitted on the same
training part and scored on the same test part (scikit-learn, from the `datasets` extra).

    texts, classes    bag of words: TF-IDF of word uni- and bigrams (sublinear tf), then
                      logistic regression (L2);  P(k | x) = softmax(W tfidf(x) + b)
    texts, numbers    the same features, ridge regression: min ||X w + b - t||^2 + alpha ||w||^2
    features          the sequence flattened to one vector (an 8x8 digit: 64 pixels), then
                      logistic regression on the standardised values

Each has one regularisation strength, chosen on the validation part from a small grid (the
recurrent model's epochs are chosen on it too), then refitted on the training part alone.

The fits run with one BLAS thread: these problems are small, and on a busy 2-core machine
SciPy's and NumPy's BLAS thread pools fighting each other made a digits fit 100x slower.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import numpy as np

from rnnkit.optional import require
from rnnkit.threads import one_blas_thread

__all__ = ["BaselineResult", "feature_baseline", "text_baseline"]

C_GRID = tuple(4.0 ** k for k in range(-3, 5))  # 1/64 .. 256: wide enough that no edge was chosen
ALPHA_GRID = tuple(10.0 ** (k / 2) for k in range(-4, 3))  # 0.01 .. 10


@dataclass
class BaselineResult:
    name: str
    predictions: np.ndarray  # class ids (N_test,) or numbers (N_test,)
    setting: str  # the chosen regularisation


def _sklearn():
    require("sklearn", "datasets", "the baselines", alternative=", or pass --no-baseline")


@contextlib.contextmanager
def _quiet_single_thread():
    """One BLAS thread and no convergence chatter."""
    with one_blas_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _fit_best(make, grid, x_train, y_train, x_val, score, x_test) -> tuple[float, np.ndarray]:
    """The grid value whose model scores best on validation (higher is better), and the test
    predictions of that model."""
    with _quiet_single_thread():
        best = max(grid, key=lambda value: score(make(value).fit(x_train, y_train).predict(x_val)))
        return best, make(best).fit(x_train, y_train).predict(x_test)


def text_baseline(train_texts, train_targets, val_texts, val_targets, test_texts, *,
                  regression: bool) -> BaselineResult:
    """TF-IDF of word 1-2-grams + logistic regression (classes) or ridge (numbers)."""
    _sklearn()
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
    x_train = vectorizer.fit_transform(train_texts)
    x_val, x_test = vectorizer.transform(val_texts), vectorizer.transform(test_texts)
    if regression:
        make = lambda alpha: Ridge(alpha=alpha)  # noqa: E731
        score = lambda predicted: -np.mean((predicted - val_targets) ** 2)  # noqa: E731
        grid, name, label = ALPHA_GRID, "TF-IDF word 1-2-grams + ridge regression", "alpha"
    else:
        make = lambda c: LogisticRegression(C=c, max_iter=2000)  # noqa: E731
        score = lambda predicted: np.mean(predicted == val_targets)  # noqa: E731
        grid, name, label = C_GRID, "TF-IDF word 1-2-grams + logistic regression", "C"
    best, predictions = _fit_best(make, grid, x_train, train_targets, x_val, score, x_test)
    return BaselineResult(name, predictions, f"{label}={best:g}")


def feature_baseline(train_x, train_y, val_x, val_y, test_x, *, regression: bool) -> BaselineResult:
    """Flattened, standardised sequences + logistic regression (classes) or ridge (numbers)."""
    _sklearn()
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    flat = lambda x: np.asarray(x, dtype=np.float64).reshape(len(x), -1)  # noqa: E731
    x_train, x_val, x_test = flat(train_x), flat(val_x), flat(test_x)
    if regression:
        make = lambda alpha: make_pipeline(StandardScaler(), Ridge(alpha=alpha))  # noqa: E731
        score = lambda predicted: -np.mean((predicted - val_y) ** 2)  # noqa: E731
        grid, name, label = ALPHA_GRID, "flattened sequence + ridge regression", "alpha"
    else:
        make = lambda c: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))  # noqa: E731
        score = lambda predicted: np.mean(predicted == val_y)  # noqa: E731
        grid, name, label = C_GRID, "flattened sequence + logistic regression", "C"
    best, predictions = _fit_best(make, grid, x_train, train_y, x_val, score, x_test)
    return BaselineResult(name, predictions, f"{label}={best:g}")
