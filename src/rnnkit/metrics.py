"""How good predictions are: the forecaster's MAE, RMSE, MASE and interval coverage, and the
classifier's accuracy, macro-F1 and confusion matrix (and, for a regressor, RMSE and Pearson's r).

Forecasts, for actual values y_i and forecasts f_i over n forecast points (every origin and horizon):

    MAE  = (1/n) sum_i |y_i - f_i|
    RMSE = sqrt((1/n) sum_i (y_i - f_i)^2)
    MASE = MAE / s,   s = (1/(T-m)) sum_{t=m+1..T} |y_t - y_{t-m}|     (Hyndman & Koehler 2006)

where s is the in-sample MAE of the seasonal-naive one-step forecast (period m) on the T values
seen before the test part: MASE < 1 beats that in-sample naive error, whatever the scale.

    coverage = (1/n) #{i : lower_i <= y_i <= upper_i}   (a 90 % interval should give about 0.9)

Classes and numbers per sequence (many-to-one models), with classes 0 .. K-1, true labels y_i
and predictions p_i (i = 1 .. N):

    C[a, b]     = #{i : y_i = a, p_i = b}                  confusion matrix (rows: truth)
    accuracy    = trace(C) / N
    precision_k = C[k, k] / sum_a C[a, k]                  (0 when nothing was predicted k)
    recall_k    = C[k, k] / sum_b C[k, b]                  (0 when no example is k)
    F1_k        = 2 precision_k recall_k / (precision_k + recall_k)      (0 when both are 0)
    macro-F1    = mean of F1_k over the classes that occur in y or p

scikit-learn's `f1_score(average="macro")` averages over the same classes (the union of the
labels in y and p) with the same zero conventions. For numbers t_i (truth) and p_i:

    RMSE as above
    r    = sum_i (p_i - p̄)(t_i - t̄) / sqrt(sum_i (p_i - p̄)^2 sum_i (t_i - t̄)^2)

r is NaN when either side is constant (a correlation is undefined there).
"""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "confusion_matrix", "coverage", "forecast_metrics", "format_confusion", "macro_f1", "mae",
           "mase", "pearson_r", "rmse", "seasonal_naive_scale"]


def _errors(actual, forecast) -> np.ndarray:
    actual, forecast = np.asarray(actual, np.float64), np.asarray(forecast, np.float64)
    if actual.shape != forecast.shape:
        raise ValueError(f"actual values of shape {actual.shape} do not match forecasts of shape {forecast.shape}")
    if actual.size == 0:
        raise ValueError("no forecasts to score")
    return actual - forecast


def mae(actual, forecast) -> float:
    return float(np.mean(np.abs(_errors(actual, forecast))))


def rmse(actual, forecast) -> float:
    return float(np.sqrt(np.mean(np.square(_errors(actual, forecast)))))


def seasonal_naive_scale(insample, season: int = 1) -> float:
    """Mean |y_t - y_{t-m}| over the in-sample values: MASE's denominator."""
    insample = np.asarray(insample, np.float64)
    if season <= 0:
        raise ValueError(f"the seasonal period must be positive, got {season}")
    if len(insample) <= season:
        raise ValueError(f"MASE needs more than {season} in-sample values for a seasonal period of {season}, "
                         f"got {len(insample)}")
    scale = float(np.mean(np.abs(insample[season:] - insample[:-season])))
    if scale == 0.0:
        raise ValueError("the in-sample series repeats itself exactly, so MASE's scale is 0")
    return scale


def mase(actual, forecast, insample, season: int = 1) -> float:
    return mae(actual, forecast) / seasonal_naive_scale(insample, season)


def coverage(actual, lower, upper) -> float:
    """The fraction of actual values inside [lower, upper]."""
    actual = np.asarray(actual, np.float64)
    _errors(actual, lower), _errors(actual, upper)
    return float(np.mean((np.asarray(lower) <= actual) & (actual <= np.asarray(upper))))


def forecast_metrics(actual, forecast, insample, season: int = 1, lower=None, upper=None) -> dict[str, float]:
    """{"MAE", "RMSE", "MASE"} and, with an interval, "coverage"."""
    scores = {"MAE": mae(actual, forecast), "RMSE": rmse(actual, forecast),
              "MASE": mase(actual, forecast, insample, season)}
    if lower is not None and upper is not None:
        scores["coverage"] = coverage(actual, lower, upper)
    return scores


# ---------------------------------------------------------------------- classes
def _labels(truth, predicted) -> tuple[np.ndarray, np.ndarray]:
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if truth.shape != predicted.shape or truth.ndim != 1:
        raise ValueError(f"truth and predictions must be 1-D and of one length, got shapes "
                         f"{truth.shape} and {predicted.shape}")
    if truth.size == 0:
        raise ValueError("no examples to score")
    return truth, predicted


def confusion_matrix(truth, predicted, num_classes: int | None = None) -> np.ndarray:
    """C (K, K) of integer class ids: C[a, b] counts examples of class a predicted as b."""
    truth, predicted = _labels(truth, predicted)
    if not (np.issubdtype(truth.dtype, np.integer) and np.issubdtype(predicted.dtype, np.integer)):
        raise ValueError("the confusion matrix needs integer class ids")
    size = int(max(truth.max(), predicted.max())) + 1 if num_classes is None else int(num_classes)
    if min(truth.min(), predicted.min()) < 0 or max(truth.max(), predicted.max()) >= size:
        raise ValueError(f"class ids must lie in [0, {size})")
    matrix = np.zeros((size, size), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def accuracy(truth, predicted) -> float:
    truth, predicted = _labels(truth, predicted)
    return float(np.mean(truth == predicted))


def macro_f1(truth, predicted) -> float:
    """The unweighted mean of the per-class F1 over the classes present in truth or predictions."""
    truth, predicted = _labels(truth, predicted)
    scores = []
    for label in np.union1d(truth, predicted):
        true_positive = np.sum((truth == label) & (predicted == label))
        predicted_count, true_count = np.sum(predicted == label), np.sum(truth == label)
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / true_count if true_count else 0.0
        scores.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(scores))


def _numbers(truth, predicted) -> tuple[np.ndarray, np.ndarray]:
    truth, predicted = _labels(np.asarray(truth, dtype=np.float64).reshape(-1),
                               np.asarray(predicted, dtype=np.float64).reshape(-1))
    return truth, predicted


def pearson_r(truth, predicted) -> float:
    truth, predicted = _numbers(truth, predicted)
    dt, dp = truth - truth.mean(), predicted - predicted.mean()
    denominator = np.sqrt(np.sum(dt * dt) * np.sum(dp * dp))
    return float(np.sum(dt * dp) / denominator) if denominator > 0 else float("nan")


def format_confusion(matrix: np.ndarray, names: list[str]) -> str:
    """The matrix as aligned text: one row per true class, one column per predicted class."""
    names = [str(name) for name in names]
    width = max(max(len(name) for name in names), len(str(int(matrix.max()))), 4)
    lines = [" " * width + "  " + " ".join(name.rjust(width) for name in names) + "   <- predicted"]
    for name, row in zip(names, matrix):
        lines.append(name.rjust(width) + "  " + " ".join(str(int(v)).rjust(width) for v in row))
    return "\n".join(lines)
