"""Rolling-origin evaluation: a forecaster and the classical baselines, on the same origins,
scored by the same metrics.

For a test part y[s:N] and horizon H the origins are o = s-1, s, ..., N-1-H: from each, every
model forecasts y_{o+1} .. y_{o+H} knowing only y_0 .. y_o (and the covariates up to o+H-1), so
each forecast lands inside the test part and all models are scored on the same n = (N-s-H+1) H
numbers. Parameters stay as fitted before the test part; only the data they condition on rolls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnkit.metrics import forecast_metrics

from .baselines import standard_baselines
from .series import Series, Split

__all__ = ["rolling_origins", "actual_values", "BacktestReport", "run_backtest", "format_report"]


def rolling_origins(length: int, test_start: int, horizon: int) -> np.ndarray:
    count = length - test_start - horizon + 1
    if test_start <= 0 or count <= 0:
        raise ValueError(f"the test part has {length - test_start} values, fewer than the horizon {horizon}; "
                         "use a larger --test-frac or a shorter --horizon")
    return np.arange(count) + test_start - 1


def actual_values(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """y[o+1 .. o+H] for every origin: (O, H)."""
    return np.asarray(values)[origins[:, None] + np.arange(1, horizon + 1)[None, :]]


@dataclass
class ModelResult:
    name: str
    forecasts: np.ndarray  # (O, H)
    scores: dict[str, float]
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None


@dataclass
class BacktestReport:
    series: str
    origins: np.ndarray
    horizon: int
    actual: np.ndarray  # (O, H)
    season: int
    insample: int  # values before the test part (MASE's scale comes from them)
    level: float
    results: list[ModelResult] = field(default_factory=list)


def run_backtest(forecaster, series: Series, split: Split, *, name: str, horizon: int = 1, level: float = 0.9,
                 samples: int = 100, seed: int = 0, baselines: bool = True) -> BacktestReport:
    """Backtest `forecaster` (a fitted `rnnkit.apps.forecast.model.Forecaster`) over the test part of
    `series`, and (with `baselines`) naive, seasonal naive, ETS and ARIMA fitted on the values
    before it. `name` labels the forecaster in the report."""
    values, test_start = series.values, split.test_start
    origins = rolling_origins(len(values), test_start, horizon)
    actual = actual_values(values, origins, horizon)
    insample = values[:test_start]
    report = BacktestReport(series.name, origins, horizon, actual, series.season, test_start, level)
    ours = forecaster.backtest(values, series.covariates, test_start=test_start, horizon=horizon, level=level,
                               samples=samples, rng=seed)
    report.results.append(ModelResult(name, ours.mean, forecast_metrics(actual, ours.mean, insample, series.season,
                                                                        ours.lower, ours.upper),
                                      ours.lower, ours.upper))
    if baselines:
        for baseline in standard_baselines(series.season):
            baseline.fit(insample)
            forecasts = baseline.forecast_from(values, origins, horizon)
            label = baseline.describe() if hasattr(baseline, "describe") else baseline.name
            if baseline.name == "seasonal naive":
                label = f"seasonal naive (m={series.season})"
            report.results.append(ModelResult(label, forecasts,
                                              forecast_metrics(actual, forecasts, insample, series.season)))
    return report


def format_report(report: BacktestReport, time: np.ndarray | None = None) -> str:
    """The comparison as a text table, best MASE marked."""
    first, last = report.origins[0] + 1, report.origins[-1] + report.horizon
    span = f" ({time[first]} to {time[last]})" if time is not None else ""
    lines = [f"rolling-origin backtest of {report.series}: test values {first}..{last}{span}, "
             f"{len(report.origins)} origins, horizon {report.horizon}, {report.actual.size} forecasts scored",
             f"{'model':<44}{'MAE':>10}{'RMSE':>10}{'MASE':>8}{'coverage':>10}"]
    best = min(r.scores["MASE"] for r in report.results)
    for result in report.results:
        s = result.scores
        covered = f"{s['coverage']:.2f}" if "coverage" in s else "-"
        mark = "  <- best" if s["MASE"] == best else ""
        lines.append(f"{result.name[:43]:<44}{s['MAE']:>10.4g}{s['RMSE']:>10.4g}{s['MASE']:>8.3f}{covered:>10}{mark}")
    lines.append(f"MASE scale: in-sample MAE of seasonal naive (m={report.season}) over the {report.insample} values "
                 f"before the test part; coverage: of the {report.level:.0%} prediction intervals")
    return "\n".join(lines)
