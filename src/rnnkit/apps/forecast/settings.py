"""The settings and data of `rnnkit forecast`, in three layers as for `rnnkit lm train`: the
defaults below, then the named dataset's preset (its seasonal period and the window and encoding
that suit it), then whatever the user typed. `predict` and `backtest` read the data source, the
split and the settings from the checkpoint; a CSV file given to them replaces the data (same
columns unless told otherwise)."""

from __future__ import annotations

from .model import Forecaster
from .series import chronological_split, load_series

__all__ = ["CSV_OPTIONS", "DEFAULTS", "PRESETS", "data_source", "load_checked", "load_with_data", "settings_from"]

DEFAULTS = {
    "season": 1, "val_frac": 0.15, "test_frac": 0.2, "window": 24, "horizon": 1, "target": "level",
    "loss": "gaussian", "cell": "lstm", "hidden": 32, "layers": 1, "dropout": 0.0, "ensemble": 5, "steps": 2000,
    "minutes": None, "batch": 32, "lr": 3e-3, "clip": 1.0, "eval_every": 50, "patience": 10, "seed": 0, "fill": False,
    "forget_bias": 0.0,
}
# Each named dataset's seasonal period m, and the encoding, window and width that forecast its
# validation part best one step ahead (a small grid: target x window x hidden; the README's
# quality study).
PRESETS = {
    "co2": {"season": 52, "target": "change", "window": 60, "hidden": 32},
    "sunspots": {"season": 11, "target": "level", "window": 22, "hidden": 16},
    "elec_equip": {"season": 12, "target": "seasonal", "window": 12, "hidden": 32},
    "nile": {"season": 1, "target": "level", "window": 10, "hidden": 16},
}
CSV_OPTIONS = ("column", "time_column", "covariates")


def data_source(csv_file, dataset: str | None, typed: dict, saved: dict | None = None) -> dict:
    """{"dataset": name} or {"csv": path, "column", "time_column", "covariates"}: from what the
    user gave (a CSV file, a named dataset, the CSV options typed), else from the checkpoint's
    saved source (CSV columns default to the saved ones)."""
    if csv_file is not None and dataset is not None:
        raise ValueError("give either a CSV file or --dataset, not both")
    if dataset is not None or (csv_file is None and saved is None):
        if typed:
            raise ValueError(f"--{next(iter(typed)).replace('_', '-')} applies to CSV files, not to a named dataset")
        if dataset is None:
            raise ValueError("give a CSV file (with --column) or --dataset NAME")
        return {"dataset": dataset}
    if csv_file is None:
        if typed:
            raise ValueError("--column, --time-column and --covariates need a CSV file")
        return saved
    previous = saved if saved and "csv" in saved else {}
    source = {"csv": csv_file, "column": typed.get("column", previous.get("column")),
              "time_column": typed.get("time_column", previous.get("time_column")),
              "covariates": typed.get("covariates", previous.get("covariates") or [])}
    if source["column"] is None:
        raise ValueError("a CSV file needs --column, the column to forecast")
    return source


def load_checked(source: dict, settings: dict, horizon: int):
    """The series (validated, filled if asked) and its split, with the length checks."""
    series = load_series(source, fill=settings["fill"], season=settings["season"])
    window, lag = settings["window"], settings["season"] if settings["target"] == "seasonal" else 0
    if len(series) < window + lag + horizon:
        extra = f" + a season of {lag}" if lag else ""
        raise ValueError(f"{series.name} has {len(series)} values, fewer than --window {window}{extra} + --horizon "
                         f"{horizon} = {window + lag + horizon}; use a shorter window or horizon")
    split = chronological_split(len(series), settings["val_frac"], settings["test_frac"])
    return series, split


def settings_from(options: dict, dataset: str | None) -> dict:
    """The defaults, then the named dataset's preset, then the options the user typed (not None)."""
    typed = {k: v for k, v in options.items() if v is not None and k in DEFAULTS}
    settings = {**DEFAULTS, **PRESETS.get(dataset, {}), **typed}
    if settings["target"] == "seasonal" and settings["season"] < 2:
        raise ValueError("--target seasonal needs a seasonal period: give --season m (season=m in Python; m >= 2)")
    return settings


def load_with_data(checkpoint, *, csv_file=None, dataset: str | None = None, csv_options: dict | None = None,
                   fill: bool = False, horizon: int | None = None):
    """A trained forecaster with its data: (forecaster, settings, series, split, horizon). The
    data are those it was trained on unless a CSV file or a dataset is given; the horizon is
    the trained one unless given."""
    forecaster, saved = Forecaster.load(checkpoint)
    if "settings" not in saved or "source" not in saved:
        raise ValueError(f"{checkpoint} has no data settings; was it written by `rnnkit forecast train`?")
    settings = {**saved["settings"], "fill": fill or saved["settings"]["fill"]}
    source = data_source(csv_file, dataset, csv_options or {}, saved["source"])
    horizon = horizon or settings["horizon"]
    series, split = load_checked(source, settings, horizon)
    if series.covariate_names != forecaster.config.covariates:
        raise ValueError(f"the model reads the covariates {list(forecaster.config.covariates)}, the data gives "
                         f"{list(series.covariate_names)}")
    return forecaster, settings, series, split, horizon
