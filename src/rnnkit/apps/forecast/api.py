"""The forecaster in a notebook, in darts' and statsmodels' habits:

    from rnnkit.apps.forecast import RecurrentForecaster
    model = RecurrentForecaster(window=12, ensemble=1, steps=300).fit(series)   # a pandas Series
    model.predict(12)         # DataFrame: mean, lower, upper on the 12 steps after the index ends
    model.backtest()          # DataFrame: MAE, RMSE, MASE, coverage per model, the baselines beside
    model.plot()              # matplotlib axes: the history, the forecast and its interval

The settings are `rnnkit forecast train`'s (the same names, defaults and named datasets' presets;
`settings.py`), the training is `train_forecaster` (which the command calls too), and a saved
model is a checkpoint `rnnkit forecast predict` and `backtest` read (its series travels inside).
pandas is imported when a DataFrame is made, never at import.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnnkit.checks import check_arguments
from rnnkit.optional import require

from .backtest import run_backtest
from .config import TARGETS
from .model import Forecaster
from .series import NAMED_SERIES, Series, Split, future_time_labels
from .settings import DEFAULTS, load_checked, load_with_data, settings_from

__all__ = ["RecurrentForecaster", "train_forecaster"]

KINDS = {
    "window": "positive_int", "horizon": "positive_int", "season": "positive_int", "target": TARGETS,
    "loss": ("gaussian", "mse"), "cell": ("lstm", "gru", "rnn"), "hidden": "positive_int", "layers": "positive_int",
    "dropout": "fraction", "ensemble": "positive_int", "steps": "positive_int", "minutes": "positive_float",
    "batch": "positive_int", "lr": "positive_float", "clip": "non_negative_float", "eval_every": "positive_int",
    "patience": "positive_int", "seed": "non_negative_int", "val_frac": "fraction", "test_frac": "fraction",
    "fill": "bool", "forget_bias": "finite_float",
}


def train_forecaster(source: dict, settings: dict, *, on_start: Callable | None = None):
    """Load and check the series `source` describes, split it, build and fit a forecaster with
    `settings` (`settings.settings_from`): (forecaster, series, split). `on_start(forecaster,
    series, split)` runs before training (the command prints what it trains)."""
    series, split = load_checked(source, settings, settings["horizon"])
    if len(series) - split.test_start < settings["horizon"]:
        raise ValueError(f"the test part has {len(series) - split.test_start} values, fewer than --horizon "
                         f"{settings['horizon']}; use a larger --test-frac or a shorter --horizon")
    forecaster = Forecaster.build(settings["window"], target=settings["target"], season=settings["season"],
                                  probabilistic=settings["loss"] == "gaussian", covariates=series.covariate_names,
                                  cell=settings["cell"], hidden_size=settings["hidden"], num_layers=settings["layers"],
                                  dropout=settings["dropout"], members=settings["ensemble"], seed=settings["seed"],
                                  forget_bias=settings.get("forget_bias", 0.0))
    if on_start is not None:
        on_start(forecaster, series, split)
    forecaster.fit(series.values, series.covariates, train_end=split.train_end, validation_end=split.validation_end,
                   steps=settings["steps"], max_seconds=settings["minutes"] * 60 if settings["minutes"] else None,
                   batch_size=settings["batch"], lr=settings["lr"], clip_norm=settings["clip"] or None,
                   eval_every=settings["eval_every"], patience=settings["patience"], seed=settings["seed"])
    return forecaster, series, split


class RecurrentForecaster:
    """A recurrent forecaster with `rnnkit forecast train`'s settings (None: the default, or the
    named dataset's preset). `fit` splits the series in time (training | validation | test,
    `val_frac`, `test_frac`) exactly as the command does; `predict` forecasts after the end of
    the whole series, `backtest` over its test part."""

    def __init__(self, window: int | None = None, *, horizon: int | None = None, season: int | None = None,
                 target: str | None = None, loss: str | None = None, cell: str | None = None,
                 hidden: int | None = None, layers: int | None = None, dropout: float | None = None,
                 ensemble: int | None = None, steps: int | None = None, minutes: float | None = None,
                 batch: int | None = None, lr: float | None = None, clip: float | None = None,
                 eval_every: int | None = None, patience: int | None = None, seed: int | None = None,
                 val_frac: float | None = None, test_frac: float | None = None, fill: bool | None = None,
                 forget_bias: float | None = None):
        options = {k: v for k, v in locals().items() if k in DEFAULTS}
        check_arguments(options, KINDS)
        self.options = options
        self.forecaster: Forecaster | None = None
        self.settings: dict | None = None
        self.series: Series | None = None
        self.split: Split | None = None
        self.index = None  # the pandas index of the series (a RangeIndex for an array)

    # ------------------------------------------------------------------------------ fit
    def fit(self, series, covariates=None) -> RecurrentForecaster:
        """Train on `series`: a pandas Series (its index becomes the forecasts' time axis), a 1-D
        array or list, or the name of a dataset ("co2", "sunspots", "elec_equip", "nile", which
        brings its season and preset). `covariates`: a DataFrame or (N, C) array of extra inputs."""
        if isinstance(series, str):
            if covariates is not None:
                raise ValueError("a named dataset has no covariates; pass the series itself to add some")
            source, dataset = {"dataset": series}, series
            if series not in NAMED_SERIES:
                raise ValueError(f"unknown dataset {series!r}; choose one of {', '.join(NAMED_SERIES)} or pass "
                                 "a pandas Series or an array")
        else:
            source, dataset = inline_source(series, covariates), None
        settings = settings_from(self.options, dataset)
        self.forecaster, self.series, self.split = train_forecaster(source, settings)
        self.settings = settings
        self.index = series_index(self.series)
        return self

    def _fitted(self) -> Forecaster:
        if self.forecaster is None:
            raise ValueError("this forecaster has not been fitted yet; call fit(series) or load(path) first")
        return self.forecaster

    # --------------------------------------------------------------------------- predict
    def forecast(self, horizon: int | None = None, *, level: float = 0.9, samples: int = 100, seed: int = 0,
                 future_covariates=None):
        """The `Forecast` (arrays) of the `horizon` steps after the end of the series."""
        forecaster = self._fitted()
        check_arguments({"horizon": horizon, "level": level, "samples": samples, "seed": seed},
                        {"horizon": "positive_int", "level": "probability", "samples": "non_negative_int",
                         "seed": "non_negative_int"})
        horizon = horizon or self.settings["horizon"]
        future = None if future_covariates is None else np.asarray(future_covariates, dtype=np.float64)
        return forecaster.forecast(self.series.values, self.series.covariates, horizon=horizon, level=level,
                                   samples=samples, rng=seed, future_covariates=future)

    def predict(self, horizon: int | None = None, *, level: float = 0.9, samples: int = 100, seed: int = 0,
                future_covariates=None):
        """A DataFrame indexed by the `horizon` steps after the series' end: the forecast `mean` and
        the central `level` prediction interval `lower`, `upper` (absent with loss "mse").
        Beyond one step the interval comes from `samples` sample paths."""
        pd = require("pandas", "forecast", "a forecast as a DataFrame")
        forecast = self.forecast(horizon, level=level, samples=samples, seed=seed,
                                 future_covariates=future_covariates)
        columns = {"mean": forecast.mean[0]}
        if forecast.lower is not None:
            columns.update(lower=forecast.lower[0], upper=forecast.upper[0])
        frame = pd.DataFrame(columns, index=future_index(self.index, self.series, forecast.horizon))
        frame.attrs["level"] = level
        return frame

    def backtest(self, horizon: int | None = None, *, level: float = 0.9, samples: int = 100, seed: int = 0,
                 baselines: bool = True):
        """`rnnkit forecast backtest` as a DataFrame: one row per model (ours first, then naive,
        seasonal naive, ETS and ARIMA with `baselines`), columns MAE, RMSE, MASE, coverage, all
        forecasting `horizon` steps from every origin of the test part."""
        pd = require("pandas", "forecast", "a backtest as a DataFrame")
        forecaster = self._fitted()
        check_arguments({"horizon": horizon, "level": level, "samples": samples, "seed": seed},
                        {"horizon": "positive_int", "level": "probability", "samples": "non_negative_int",
                         "seed": "non_negative_int"})
        s = self.settings
        name = f"{s['cell'].upper()} {s['layers']}x{s['hidden']}" + (f" x {s['ensemble']}" if s["ensemble"] > 1 else "")
        report = run_backtest(forecaster, self.series, self.split, name=name, horizon=horizon or s["horizon"],
                              level=level, samples=samples, seed=seed, baselines=baselines)
        frame = pd.DataFrame([{"model": r.name, **{k: r.scores.get(k, np.nan) for k in ("MAE", "RMSE", "MASE",
                                                                                     "coverage")}}
                              for r in report.results]).set_index("model")
        frame.attrs.update(horizon=report.horizon, origins=len(report.origins), level=level)
        return frame

    @property
    def history(self):
        """The training history as a DataFrame (one row per step and ensemble member)."""
        pd = require("pandas", "forecast", "the history as a DataFrame")
        return pd.DataFrame(self._fitted().history)

    def plot(self, horizon: int | None = None, *, level: float = 0.9, ax=None, show_last: int | None = None):
        """The end of the series, the forecast of the next `horizon` steps and its interval, on `ax`
        (a new figure's axes by default); returns the axes."""
        import matplotlib.pyplot as plt

        frame = self.predict(horizon, level=level)
        if ax is None:
            _, ax = plt.subplots(figsize=(9, 4))
        shown = show_last or max(4 * len(frame), 3 * self.settings["window"])
        ax.plot(self.index[-shown:], self.series.values[-shown:], color="black", linewidth=1, label="history")
        ax.plot(frame.index, frame["mean"], color="tab:blue", linewidth=1.5, label="forecast")
        if "lower" in frame:
            ax.fill_between(frame.index, frame["lower"], frame["upper"], color="tab:blue", alpha=0.25, linewidth=0,
                            label=f"{level:.0%} interval")
        ax.set_title(f"{self.series.name}: {len(frame)}-step forecast")
        ax.legend(fontsize=8)
        return ax

    # ------------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> None:
        """A checkpoint `load` and `rnnkit forecast predict | backtest` read (the series inside)."""
        self._fitted().save(path, {"source": self.series.source, "settings": self.settings})

    @classmethod
    def load(cls, path: str | Path) -> RecurrentForecaster:
        """A forecaster saved by `save` or written by `rnnkit forecast train`, with its series."""
        forecaster, settings, series, split, _ = load_with_data(path)
        model = cls()
        model.options = {k: v for k, v in settings.items() if k in DEFAULTS}
        model.forecaster, model.settings, model.series, model.split = forecaster, settings, series, split
        model.index = series_index(series)
        return model


# ------------------------------------------------------------------------- series, index
def inline_source(series, covariates=None) -> dict:
    """A pandas Series, a 1-D array or a list as a source of values (`series.load_series`),
    with its index as time labels."""
    values = getattr(series, "to_numpy", lambda: series)()
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("a series must hold numbers; got values that are not") from None
    if values.ndim != 1:
        raise ValueError(f"a series must be 1-D, got shape {values.shape}; pass one column")
    source = {"values": [None if np.isnan(v) else float(v) for v in values], "name": str(getattr(series, "name", None)
                                                                                        or "series")}
    index = getattr(series, "index", None) if hasattr(series, "to_numpy") else None  # a pandas Series's
    if index is not None:
        source.update(time_labels(index))
    if covariates is not None:
        names = [str(c) for c in getattr(covariates, "columns", [])]
        table = np.asarray(getattr(covariates, "to_numpy", lambda: covariates)(), dtype=np.float64)
        table = table.reshape(len(table), -1)
        if len(table) != len(values):
            raise ValueError(f"the covariates have {len(table)} rows, the series {len(values)} values")
        source["covariate_names"] = names or [f"x{j}" for j in range(table.shape[1])]
        source["covariates"] = [[None if np.isnan(v) else float(v) for v in row] for row in table]
    return source


def time_labels(index) -> dict:
    """{"time": labels, "index": kind}: a pandas index as strings that `series.time_axis` reads."""
    kind = type(index).__name__
    if kind == "RangeIndex":
        return {"time": None, "index": "range", "start": int(index.start), "step": int(index.step)}
    if kind == "DatetimeIndex":
        daily = bool((index == index.normalize()).all())
        labels = [str(t.date()) if daily else t.isoformat() for t in index]
        return {"time": labels, "index": "datetime", "freq": index.freqstr}
    return {"time": [str(label) for label in index], "index": "labels"}


def series_index(series: Series):
    """The pandas index of a loaded series: a DatetimeIndex for dates, numbers for numbers, a
    RangeIndex without labels."""
    pd = require("pandas", "forecast", "the forecaster's Python API")
    source = series.source
    if source.get("index") == "range" or series.time is None:
        start, step = source.get("start", 0), source.get("step", 1)
        return pd.RangeIndex(start, start + step * len(series), step)
    labels = list(series.time)
    try:
        return pd.Index([float(v) for v in labels]).astype(int) if all(float(v).is_integer() for v in labels) \
            else pd.Index([float(v) for v in labels])
    except ValueError:
        pass
    try:
        index = pd.DatetimeIndex(pd.to_datetime(labels))
    except (ValueError, TypeError):
        return pd.Index(labels)
    freq = source.get("freq") or (pd.infer_freq(index) if len(index) >= 3 else None)
    return pd.DatetimeIndex(index, freq=freq) if freq else index


def future_index(index, series: Series, horizon: int):
    """The index of the `horizon` steps after the end: the date frequency or number step
    continued, else the labels `series.future_time_labels` finds, else "+1", "+2", ..."""
    pd = require("pandas", "forecast", "the forecaster's Python API")
    if isinstance(index, pd.DatetimeIndex) and index.freq is not None:
        return pd.date_range(index[-1], periods=horizon + 1, freq=index.freq)[1:]
    if isinstance(index, pd.RangeIndex):
        return pd.RangeIndex(index.stop, index.stop + index.step * horizon, index.step)
    if len(index) >= 2 and pd.api.types.is_numeric_dtype(index):
        step = index[-1] - index[-2]
        if np.allclose(np.diff(np.asarray(index, dtype=np.float64)), step):
            return pd.Index([index[-1] + step * (h + 1) for h in range(horizon)])
    labels = future_time_labels(series.time, horizon)
    if labels is not None:
        try:
            return pd.DatetimeIndex(pd.to_datetime(labels))
        except (ValueError, TypeError):
            return pd.Index(labels)
    return pd.Index([f"+{h}" for h in range(1, horizon + 1)])
