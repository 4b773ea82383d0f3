"""Forecast accuracy: MAE, RMSE, MASE and the coverage of prediction intervals.

For actual values y_i and forecasts f_i over n forecast points (every origin and horizon):

    MAE  = (1/n) sum_i |y_i - f_i|
    RMSE = sqrt((1/n) sum_i (y_i - f_i)^2)
    MASE = MAE / s,   s = (1/(T-m)) sum_{t=m+1..T} |y_t - y_{t-m}|     (Hyndman & Koehler 2006)

where s is the in-sample MAE of the seasonal-naive one-step forecast (period m) on the T values
seen before the test part: MASE < 1 beats that in-sample naive error, whatever the scale.

    coverage = (1/n) #{i : lower_i <= y_i <= upper_i}   (a 90 % interval should give about 0.9)
"""

from __future__ import annotations

import numpy as np

__all__ = ["mae", "rmse", "seasonal_naive_scale", "mase", "coverage", "forecast_metrics"]


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
