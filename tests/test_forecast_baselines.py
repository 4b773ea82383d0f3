"""Metrics (MAE, RMSE, MASE, coverage) by hand, and the baselines: naive and seasonal naive
exactly, ETS and ARIMA (plain and seasonally differenced) on series they should get right."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.apps.forecast.backtest import actual_values, rolling_origins
from rnnkit.apps.forecast.baselines import ARIMA, ETS, Naive, SeasonalNaive, standard_baselines
from rnnkit.metrics import coverage, forecast_metrics, mae, mase, rmse, seasonal_naive_scale


def test_metrics_by_hand():
    actual, forecast = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 1.0])
    assert mae(actual, forecast) == pytest.approx(4 / 3)
    assert rmse(actual, forecast) == pytest.approx(np.sqrt(10 / 3))
    insample = np.array([1.0, 5.0, 2.0, 6.0, 3.0])  # seasonal (m=2) differences: 1, 1, 1
    assert seasonal_naive_scale(insample, 2) == 1.0
    assert seasonal_naive_scale(insample, 1) == pytest.approx(np.mean([4, 3, 4, 3]))
    assert mase(actual, forecast, insample, 2) == pytest.approx(4 / 3)
    assert coverage(actual, actual - 1, np.array([1.5, 2.5, 3.5])) == pytest.approx(2 / 3)
    assert set(forecast_metrics(actual, forecast, insample, 2, actual - 1, actual + 1)) == {
        "MAE", "RMSE", "MASE", "coverage"}
    with pytest.raises(ValueError, match="more than 2 in-sample values"):
        seasonal_naive_scale(insample[:2], 2)


def test_rolling_origins_keep_every_forecast_inside_the_test_part():
    origins = rolling_origins(20, 15, 3)
    np.testing.assert_array_equal(origins, [14, 15, 16])
    actual = actual_values(np.arange(20.0), origins, 3)
    assert actual.min() == 15 and actual.max() == 19
    with pytest.raises(ValueError, match="fewer than the horizon"):
        rolling_origins(20, 18, 3)


def test_naive_and_seasonal_naive():
    values = np.arange(10.0) ** 2
    origins = np.array([5, 7])
    np.testing.assert_array_equal(Naive().forecast_from(values, origins, 2), [[25, 25], [49, 49]])
    # m = 3: y^_{o+h} = y_{o+h-3} for h <= 3, then the cycle repeats
    np.testing.assert_array_equal(SeasonalNaive(3).forecast_from(values, origins, 4),
                                  [[9, 16, 25, 9], [25, 36, 49, 25]])


def seasonal_series(length: int, season: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pattern = np.array([0.0, 2.0, 3.0, 1.0, -2.0, -4.0])[:season]
    return 10 + 0.05 * np.arange(length) + np.tile(pattern, length // season + 1)[:length] \
        + 0.05 * rng.standard_normal(length)


def test_ets_and_seasonal_arima_learn_a_season_and_a_trend():
    values = seasonal_series(96)
    origins = np.arange(71, 90)
    actual = actual_values(values, origins, 6)
    naive_error = mae(actual, Naive().forecast_from(values, origins, 6))
    ets = ETS(6).fit(values[:72])
    assert "additive season 6" in ets.describe()
    assert mae(actual, ets.forecast_from(values, origins, 6)) < 0.1 * naive_error
    arima = ARIMA(6, seasonal=True, max_p=1, max_q=1).fit(values[:72])
    assert arima.describe().startswith("ARIMA(") and "(0,1,0)_6" in arima.describe()
    assert mae(actual, arima.forecast_from(values, origins, 6)) < 0.1 * naive_error


def test_arima_finds_an_autoregression():
    rng = np.random.default_rng(3)
    values = np.zeros(200)
    for t in range(1, 200):
        values[t] = 0.8 * values[t - 1] + rng.standard_normal()
    arima = ARIMA(max_p=1, max_q=1).fit(values[:150])
    assert arima.order[:2] == (1, 0)
    assert arima.result.params[arima.result.param_names.index("ar.L1")] == pytest.approx(0.8, abs=0.12)
    origins = np.arange(149, 199)
    params = dict(zip(arima.result.param_names, arima.result.params))
    mean, phi = params.get("const", 0.0), params["ar.L1"]
    one_step = arima.forecast_from(values, origins, 1)[:, 0]
    np.testing.assert_allclose(one_step, mean + phi * (values[origins] - mean), rtol=1e-6)  # y = mu + eta, AR(1) eta
    assert arima.forecast_from(values, origins[:3], 4).shape == (3, 4)


def test_standard_baselines_add_a_seasonal_arima_for_seasonal_series():
    assert [b.name for b in standard_baselines(1)] == ["naive", "seasonal naive", "ETS", "ARIMA"]
    assert [getattr(b, "seasonal_difference", False) for b in standard_baselines(12)] == [False] * 4 + [True]
