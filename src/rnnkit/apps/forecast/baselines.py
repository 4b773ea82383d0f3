"""Classical forecasts to compare a recurrent forecaster with, on the same rolling origins.

Each baseline is fitted once on the values before the test part (`fit(history)`), then forecasts
`horizon` steps from every origin o with the values up to o known (`forecast_from(values,
origins, horizon)` -> (origins, horizon)); its parameters stay fixed, as the network's do.

    naive            y^_{o+h} = y_o
    seasonal naive   y^_{o+h} = y_{o+h-m*ceil(h/m)}            (the same season, last cycle)
    ETS              Holt-Winters exponential smoothing (statsmodels' ExponentialSmoothing):
                     level, trend (none / additive / damped) and additive season of period m,
                     the combination with the lowest AIC
    ARIMA            ARIMA(p, d, q) with a constant or drift (statsmodels' ARIMA), auto.arima's
                     recipe on a small grid: d in {0, 1} by the KPSS test, then p in 0..3,
                     q in 0..2 and the constant by AIC
    seasonal ARIMA   the same on the seasonal difference w_t = y_t - y_{t-m}: SARIMA(p,d,q)(0,1,0)_m

The seasonal difference is taken here, not inside statsmodels (a SARIMA state of 52 seasonal
lags takes minutes to fit): forecasts of w are integrated back as y^_{o+h} = w^_{o+h} + y_{o+h-m},
with y_{o+h-m} itself a forecast when h > m.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager

import numpy as np

from rnnkit.threads import one_blas_thread

__all__ = ["Naive", "SeasonalNaive", "ETS", "ARIMA", "standard_baselines"]


def _check_origins(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    if horizon <= 0:
        raise ValueError(f"the horizon must be a positive integer, got {horizon}")
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and (origins.min() < 0 or origins.max() >= len(values)):
        raise ValueError(f"origins must lie inside the {len(values)} values")
    return origins


@contextmanager
def _quiet():
    """statsmodels warns about convergence and frequency on every fit (the choice by AIC copes),
    and its many tiny matrix products run fastest on one BLAS thread (`rnnkit.threads`)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), one_blas_thread():
        warnings.simplefilter("ignore")
        yield


class Naive:
    name = "naive"

    def fit(self, history: np.ndarray) -> Naive:
        return self

    def forecast_from(self, values, origins, horizon: int) -> np.ndarray:
        origins = _check_origins(values, origins, horizon)
        return np.repeat(np.asarray(values, np.float64)[origins][:, None], horizon, axis=1)


class SeasonalNaive:
    name = "seasonal naive"

    def __init__(self, season: int):
        if season <= 0:
            raise ValueError(f"the seasonal period must be positive, got {season}")
        self.season = season

    def fit(self, history: np.ndarray) -> SeasonalNaive:
        return self

    def forecast_from(self, values, origins, horizon: int) -> np.ndarray:
        origins = _check_origins(values, origins, horizon)
        m = self.season
        steps = np.arange(1, horizon + 1)
        back = steps - m * np.ceil(steps / m).astype(np.int64)  # in (-m, 0]
        positions = origins[:, None] + back[None, :]
        if positions.size and positions.min() < 0:
            raise ValueError(f"seasonal naive needs {m} values before the first origin")
        return np.asarray(values, np.float64)[positions]


class ETS:
    """Holt-Winters smoothing; the trend/season combination with the lowest AIC."""

    name = "ETS"

    def __init__(self, season: int = 1):
        self.season = season
        self.spec: dict | None = None
        self.params: dict | None = None

    def candidates(self, length: int) -> list[dict]:
        trends = [dict(trend=None), dict(trend="add"), dict(trend="add", damped_trend=True)]
        seasons = [dict(seasonal=None)]
        if self.season > 1 and length >= 2 * self.season + 2:
            seasons.append(dict(seasonal="add", seasonal_periods=self.season))
        return [{**t, **s} for t in trends for s in seasons]

    def fit(self, history: np.ndarray) -> ETS:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        history = np.asarray(history, np.float64)
        best = None
        with _quiet():
            for spec in self.candidates(len(history)):
                try:
                    result = ExponentialSmoothing(history, initialization_method="estimated", **spec).fit()
                except (ValueError, np.linalg.LinAlgError):
                    continue
                if math.isfinite(result.aic) and (best is None or result.aic < best[0]):
                    best = (result.aic, spec, dict(result.params))
        if best is None:
            raise ValueError("no exponential smoothing model could be fitted to this series")
        _, self.spec, self.params = best
        return self

    def describe(self) -> str:
        spec = self.spec or {}
        trend = {None: "no trend", "add": "additive trend"}[spec.get("trend")]
        if spec.get("damped_trend"):
            trend = "damped trend"
        season = f"additive season {spec['seasonal_periods']}" if spec.get("seasonal") else "no season"
        return f"ETS ({trend}, {season})"

    def forecast_from(self, values, origins, horizon: int) -> np.ndarray:
        """Re-runs the smoothing recursions with the fitted parameters and initial states over
        the values up to each origin (no re-estimation)."""
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        if self.params is None:
            raise ValueError("fit the ETS baseline before forecasting")
        origins = _check_origins(values, origins, horizon)
        values = np.asarray(values, np.float64)
        p = self.params
        initial = {"initial_level": p["initial_level"]}
        smoothing = {"smoothing_level": p["smoothing_level"]}
        if self.spec.get("trend"):
            initial["initial_trend"] = p["initial_trend"]
            smoothing["smoothing_trend"] = p["smoothing_trend"]
        if self.spec.get("damped_trend"):
            smoothing["damping_trend"] = p["damping_trend"]
        if self.spec.get("seasonal"):
            initial["initial_seasonal"] = p["initial_seasons"]
            smoothing["smoothing_seasonal"] = p["smoothing_seasonal"]
        out = np.empty((len(origins), horizon))
        with _quiet():
            for row, origin in enumerate(origins):
                model = ExponentialSmoothing(values[:origin + 1], initialization_method="known", **initial,
                                             **self.spec)
                out[row] = model.fit(optimized=False, **smoothing).forecast(horizon)
        return out


def kpss_differences(values: np.ndarray) -> int:
    """0 if the KPSS test (5 %) accepts level stationarity, else 1."""
    from statsmodels.tsa.stattools import kpss

    with _quiet():
        p_value = kpss(np.asarray(values, np.float64), regression="c", nlags="auto")[1]
    return 0 if p_value >= 0.05 else 1


class ARIMA:
    """ARIMA(p, d, q) on the series, or on its seasonal difference (`seasonal=True`); see the
    module docstring."""

    name = "ARIMA"

    def __init__(self, season: int = 1, *, seasonal: bool = False, max_p: int = 3, max_q: int = 2):
        if seasonal and season < 2:
            raise ValueError("a seasonal ARIMA needs a seasonal period of at least 2")
        self.season, self.seasonal_difference = season, seasonal
        self.p_values, self.q_values = range(max_p + 1), range(max_q + 1)
        self.order: tuple[int, int, int] | None = None
        self.trend: str | None = None
        self.result = None

    def _transform(self, values: np.ndarray) -> np.ndarray:
        m = self.season
        return values[m:] - values[:-m] if self.seasonal_difference else values

    def fit(self, history: np.ndarray) -> ARIMA:
        """d by KPSS, then (p, q, constant) by AIC, on `history` (seasonally differenced if asked)."""
        from statsmodels.tsa.arima.model import ARIMA as StatsmodelsARIMA

        series = self._transform(np.asarray(history, np.float64))
        if len(series) < 8:
            raise ValueError(f"ARIMA needs at least 8 values to fit, got {len(series)}")
        d = kpss_differences(series)
        best = None
        with _quiet():
            for p in self.p_values:
                for q in self.q_values:
                    for trend in ("n", "c" if d == 0 else "t"):
                        try:
                            result = StatsmodelsARIMA(series, order=(p, d, q), trend=trend).fit()
                        except (ValueError, np.linalg.LinAlgError):
                            continue
                        if math.isfinite(result.aic) and (best is None or result.aic < best[0]):
                            best = (result.aic, (p, d, q), trend, result)
        if best is None:
            raise ValueError("no ARIMA model could be fitted to this series")
        _, self.order, self.trend, self.result = best
        return self

    def describe(self) -> str:
        p, d, q = self.order
        season = f"(0,1,0)_{self.season}" if self.seasonal_difference else ""
        constant = {"n": "", "c": " + constant", "t": " + drift"}[self.trend]
        return f"ARIMA({p},{d},{q}){season}{constant}"

    def forecast_from(self, values, origins, horizon: int) -> np.ndarray:
        """The fitted parameters applied to the whole series (the Kalman filter uses only the
        past at each step), then an h-step forecast from each origin."""
        if self.result is None:
            raise ValueError("fit the ARIMA baseline before forecasting")
        origins = _check_origins(values, origins, horizon)
        values = np.asarray(values, np.float64)
        m = self.season if self.seasonal_difference else 0
        if origins.size and origins.min() < m:
            raise ValueError(f"seasonally differenced ARIMA needs {m} values before the first origin")
        with _quiet():
            applied = self.result.apply(self._transform(values))
            targets = origins - m + 1  # the first forecast's index in the transformed series
            if horizon == 1:  # the filter's one-step predictions, all in one call
                one_step = applied.get_prediction(start=0, end=len(values) - m).predicted_mean
                out = np.asarray(one_step)[targets][:, None]
            else:
                out = np.stack([applied.get_prediction(start=t, end=t + horizon - 1, dynamic=0).predicted_mean
                                for t in targets]) if len(targets) else np.empty((0, horizon))
        if m:
            for h in range(horizon):  # y^_{o+h+1} = w^ + y_{o+h+1-m} (a forecast itself when h+1 > m)
                out[:, h] += out[:, h - m] if h >= m else values[origins + h + 1 - m]
        return out


def standard_baselines(season: int) -> list:
    """The baselines every forecast is compared with: naive, seasonal naive, ETS, ARIMA, and for a
    seasonal series (m > 1) also ARIMA on the seasonal difference. Both ARIMA rows are shown
    rather than one chosen: AIC cannot compare differenced and undifferenced fits, and each
    other rule misleads somewhere (STL calls the 11-year sunspot cycle a season; a validation
    part holding the 2008 crash condemns seasonal differencing for elec_equip)."""
    baselines = [Naive(), SeasonalNaive(season), ETS(season), ARIMA(season)]
    if season > 1:
        baselines.append(ARIMA(season, seasonal=True))
    return baselines
