"""Time series for forecasting: loading (a CSV file or a named dataset), checking, filling gaps,
the chronological split, the scaler and the sliding windows.

A series is a target y_1 .. y_N with optional covariates x_1 .. x_N (extra input columns). The
split is chronological, never shuffled, so that nothing from the future reaches training:

    train       y[0 : train_end]            fits the weights and the scaler
    validation  y[train_end : validation_end]   early stopping
    test        y[validation_end : N]       the rolling-origin backtest

A window ending at origin o is y[o-k+1 .. o] (k = window); its target is y[o+1]. A window belongs
to the part its *target* is in; its inputs may reach back into earlier parts (the past is known
at forecast time), never forward.

The named datasets ride inside `statsmodels` (the `forecast` extra); nothing is downloaded.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rnnkit.files import existing_file
from rnnkit.optional import require

__all__ = ["Series", "NAMED_SERIES", "load_series", "load_named", "read_csv", "check_finite",
           "interpolate_gaps", "Split", "chronological_split", "Scaler", "sliding_windows", "time_axis",
           "future_time_labels"]

MISSING_MARKERS = {"", "na", "nan", "n/a", "null", "none", "-"}


@dataclass(frozen=True)
class Series:
    """values (N,) float64: the target; covariates (N, C) float64; time (N,) labels (str) or
    None; season: the seasonal period m (1: none), used by seasonal naive, ETS, ARIMA and MASE."""

    name: str
    values: np.ndarray
    covariates: np.ndarray
    covariate_names: tuple[str, ...] = ()
    time: np.ndarray | None = None
    season: int = 1
    source: dict = field(default_factory=dict)  # how to load it again (saved in checkpoints)

    def __len__(self) -> int:
        return len(self.values)


# ------------------------------------------------------------------------- named datasets
@dataclass(frozen=True)
class NamedSeries:
    description: str
    season: int
    module: str  # statsmodels.datasets.<module>
    value_column: str | None  # None: the only column
    time_column: str | None  # None: the index (dates)


NAMED_SERIES = {
    "co2": NamedSeries("weekly Mauna Loa CO2 (ppm), 1958-2001, with 59 gaps", 52, "co2", "co2", None),
    "sunspots": NamedSeries("yearly sunspot activity, 1700-2008 (a cycle of about 11 years)", 11,
                            "sunspots", "SUNACTIVITY", "YEAR"),
    "elec_equip": NamedSeries("monthly euro-area electrical equipment orders index, 1995-2016", 12,
                              "elec_equip", None, None),
    "nile": NamedSeries("yearly flow of the Nile at Aswan, 1871-1970", 1, "nile", "volume", "year"),
}


def load_named(name: str) -> Series:
    """One of NAMED_SERIES, read from the files inside the statsmodels wheel (no download)."""
    if name not in NAMED_SERIES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(NAMED_SERIES)}")
    info = NAMED_SERIES[name]
    module = require(f"statsmodels.datasets.{info.module}", "forecast", "the named datasets (from statsmodels)")
    frame = module.load_pandas().data
    column = info.value_column or frame.columns[0]
    values = frame[column].to_numpy(dtype=np.float64)
    if info.time_column is None:
        time = np.array([str(stamp.date()) for stamp in frame.index])
    else:
        time = np.array([_format_number(v) for v in frame[info.time_column].to_numpy(dtype=np.float64)])
    return Series(name, values, np.zeros((len(values), 0)), (), time, info.season, {"dataset": name})


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# ------------------------------------------------------------------------------- CSV files
def read_csv(path: str | Path, column: str, *, time_column: str | None = None,
             covariates: tuple[str, ...] | list[str] = (), season: int = 1) -> Series:
    """The numeric `column` (and `covariates`) of a CSV file with a header row, one row per time
    step (blank lines are skipped). Empty cells and NA/NaN/null count as missing (NaN); 'inf' is
    infinite; both are allowed here and reported by `check_finite`. Anything else that is not a
    number raises ValueError with its line."""
    path = existing_file(path, "CSV file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            rows = list(csv.reader(file))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text; give a CSV file") from None
    except csv.Error as error:
        raise ValueError(f"{path} is not a readable CSV file: {error}") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError(f"CSV file {path} is empty; it needs a header row and one row per time step")
    header = [cell.strip() for cell in rows[0]]
    covariates = tuple(covariates)
    wanted = [column, *covariates] + ([time_column] if time_column else [])
    for name in wanted:
        if name not in header:
            raise ValueError(f"column {name!r} is not in {path}; its columns are: {', '.join(header)}")
    if column in covariates:
        raise ValueError(f"column {column!r} is the target; it cannot also be a covariate")
    body = [(line, row) for line, row in enumerate(rows[1:], start=2) if any(cell.strip() for cell in row)]
    if not body:
        raise ValueError(f"CSV file {path} has a header but no data rows")

    def numbers(name: str) -> np.ndarray:
        index = header.index(name)
        out = np.empty(len(body))
        for position, (line, row) in enumerate(body):
            cell = row[index].strip() if index < len(row) else ""
            if cell.lower() in MISSING_MARKERS:
                out[position] = math.nan
                continue
            try:
                out[position] = float(cell)
            except ValueError:
                raise ValueError(f"column {name!r} of {path} has a non-numeric value {cell!r} on line "
                                 f"{line}; give numbers only (empty or NA for a missing value)") from None
        return out

    values = numbers(column)
    extra = np.stack([numbers(name) for name in covariates], axis=1) if covariates else np.zeros((len(values), 0))
    time = None
    if time_column:
        index = header.index(time_column)
        time = np.array([row[index].strip() if index < len(row) else "" for _, row in body])
    source = {"csv": str(path.resolve()), "column": column, "time_column": time_column,
              "covariates": list(covariates)}
    return Series(path.stem, values, extra, covariates, time, season, source)


def load_series(source: dict, *, fill: bool = False, season: int | None = None) -> Series:
    """A series from a source description: {"dataset": name}, {"csv": path, "column": ...,
    "time_column": ..., "covariates": [...]}, or the values themselves ({"values": [...],
    "name", "time", "covariates", "covariate_names"}: a series given to the Python API);
    checked (and filled if asked) by `check_finite`."""
    if source.get("dataset"):
        series = load_named(source["dataset"])
    elif "values" in source:
        series = inline_series(source)
    else:
        series = read_csv(source["csv"], source["column"], time_column=source.get("time_column"),
                          covariates=source.get("covariates") or ())
    if season is not None:
        if season <= 0:
            raise ValueError(f"the seasonal period must be a positive integer, got {season}")
        series = Series(series.name, series.values, series.covariates, series.covariate_names, series.time,
                        season, series.source)
    return check_finite(series, fill=fill)


def inline_series(source: dict) -> Series:
    """The series a source of values describes (NaN stands for a missing value)."""
    values = np.array([math.nan if v is None else v for v in source["values"]], dtype=np.float64)
    names = tuple(source.get("covariate_names") or ())
    covariates = np.array(source.get("covariates") or np.zeros((len(values), 0)), dtype=np.float64)
    covariates = covariates.reshape(len(values), len(names))
    time = None if source.get("time") is None else np.array(source["time"])
    return Series(source.get("name") or "series", values, covariates, names, time, 1, source)


# ----------------------------------------------------------------------------- gaps, fill
def interpolate_gaps(values: np.ndarray) -> np.ndarray:
    """NaN and +-Inf replaced by linear interpolation between the nearest finite neighbours;
    leading and trailing gaps take the first / last finite value."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise ValueError("every value is missing; there is nothing to interpolate from")
    positions = np.arange(len(values))
    return np.interp(positions, positions[finite], values[finite])


def check_finite(series: Series, *, fill: bool = False) -> Series:
    """The series unchanged if every value is finite; with `fill`, gaps interpolated
    (`interpolate_gaps`); otherwise ValueError stating how many values are NaN and Inf."""
    columns = [(series.source.get("column") or series.name, series.values)]
    columns += [(name, series.covariates[:, j]) for j, name in enumerate(series.covariate_names)]
    problems = []
    for name, column in columns:
        nan, inf = int(np.isnan(column).sum()), int(np.isinf(column).sum())
        if nan == len(column):
            raise ValueError(f"column {name!r} of {series.name} has no values at all")
        if nan or inf:
            parts = [f"{nan} missing (NaN)"] * bool(nan) + [f"{inf} infinite"] * bool(inf)
            first = int(np.flatnonzero(~np.isfinite(column))[0])
            where = f"time {series.time[first]}" if series.time is not None else f"data row {first + 1}"
            problems.append(f"column {name!r} has {' and '.join(parts)} value(s), the first at {where}")
    if not problems:
        return series
    if not fill:
        raise ValueError(f"{series.name}: {'; '.join(problems)}; pass --fill (fill=True in Python) to interpolate "
                         "them linearly")
    covariates = (np.stack([interpolate_gaps(c) for c in series.covariates.T], axis=1)
                  if series.covariate_names else series.covariates)
    return Series(series.name, interpolate_gaps(series.values), covariates, series.covariate_names, series.time,
                  series.season, series.source)


# ----------------------------------------------------------------------------- the split
@dataclass(frozen=True)
class Split:
    """Chronological parts of a series of `length` values: train [0, train_end), validation
    [train_end, validation_end), test [validation_end, length)."""

    train_end: int
    validation_end: int
    length: int

    @property
    def test_start(self) -> int:
        return self.validation_end


def chronological_split(length: int, validation_fraction: float, test_fraction: float) -> Split:
    """The last `test_fraction` of the values for testing, the `validation_fraction` before it
    for validation, the rest for training (rounded to whole steps)."""
    for name, value in (("validation", validation_fraction), ("test", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"the {name} fraction must be in [0, 1), got {value}")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(f"validation and test fractions ({validation_fraction} + {test_fraction}) leave no "
                         "training data; make them smaller")
    test = int(round(length * test_fraction))
    validation = int(round(length * validation_fraction))
    return Split(length - test - validation, length - test, length)


# ------------------------------------------------------------------------------ the scaler
@dataclass(frozen=True)
class Scaler:
    """Standardisation statistics, fitted on the training part only:

        level              z_t = (y_t - level_mean) / level_scale
        change             (y_{t+1} - y_t) / change_scale
        seasonal change    (y_t - y_{t-m} - seasonal_mean) / seasonal_scale     (season m > 1)
        covariate          (x_t - covariate_mean) / covariate_scale             (per column)

    A scale of zero (a constant column) is replaced by 1, so a constant maps to 0."""

    level_mean: float
    level_scale: float
    change_scale: float
    season: int = 1
    seasonal_mean: float = 0.0
    seasonal_scale: float = 1.0
    covariate_mean: tuple[float, ...] = ()
    covariate_scale: tuple[float, ...] = ()

    @classmethod
    def fit(cls, values: np.ndarray, covariates: np.ndarray | None = None, season: int = 1) -> Scaler:
        values = np.asarray(values, dtype=np.float64)
        if len(values) < 2:
            raise ValueError("the scaler needs at least two training values")
        if season > 1 and len(values) <= season + 1:
            raise ValueError(f"the scaler needs more than {season + 1} training values for a season of {season}")
        covariates = np.zeros((len(values), 0)) if covariates is None else np.asarray(covariates, np.float64)
        seasonal = values[season:] - values[:-season] if season > 1 else np.zeros(1)
        return cls(float(values.mean()), _nonzero(values.std()), _nonzero(np.diff(values).std()), int(season),
                   float(seasonal.mean()), _nonzero(seasonal.std()),
                   tuple(map(float, covariates.mean(axis=0))), tuple(map(_nonzero, covariates.std(axis=0))))

    def covariates(self, covariates: np.ndarray) -> np.ndarray:
        """(..., C) covariates standardised."""
        return (covariates - np.asarray(self.covariate_mean)) / np.asarray(self.covariate_scale)

    def to_dict(self) -> dict:
        return {**asdict(self), "covariate_mean": list(self.covariate_mean),
                "covariate_scale": list(self.covariate_scale)}

    @classmethod
    def from_dict(cls, values: dict) -> Scaler:
        return cls(**{**values, "covariate_mean": tuple(values["covariate_mean"]),
                      "covariate_scale": tuple(values["covariate_scale"])})


def _nonzero(scale: float) -> float:
    return float(scale) if scale > 1e-12 else 1.0


# ------------------------------------------------------------------------------ windows
def sliding_windows(array: np.ndarray, window: int, origins: np.ndarray) -> np.ndarray:
    """array[o-window+1 : o+1] for every origin o: (len(origins), window, ...). Every origin
    must have `window` values up to and including it."""
    if not isinstance(window, (int, np.integer)) or window <= 0:
        raise ValueError(f"the window must be a positive integer, got {window!r}")
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and (origins.min() < window - 1 or origins.max() >= len(array)):
        raise ValueError(f"origins must lie in [{window - 1}, {len(array) - 1}] for windows of {window}, "
                         f"got [{origins.min()}, {origins.max()}]")
    steps = origins[:, None] - window + 1 + np.arange(window)[None, :]
    return np.asarray(array)[steps]


# ------------------------------------------------------------------------------ time labels
def time_axis(labels: np.ndarray | None, length: int) -> np.ndarray:
    """Plottable x values for time labels: numbers, numpy datetimes, or positions 0..N-1."""
    if labels is None or len(labels) != length:
        return np.arange(length)
    try:
        return np.asarray(labels, dtype=np.float64)
    except ValueError:
        pass
    try:
        return np.asarray(labels, dtype="datetime64[D]")
    except ValueError:
        return np.arange(length)


def future_time_labels(labels: np.ndarray | None, horizon: int) -> list[str] | None:
    """Labels of the `horizon` steps after the last one when the time labels are regular:
    numbers with a constant step, dates a constant number of days or months apart; else None."""
    if labels is None or len(labels) < 2:
        return None
    axis = time_axis(labels, len(labels))
    steps = np.arange(1, horizon + 1)
    if np.issubdtype(axis.dtype, np.floating):
        step = np.diff(axis)
        if np.allclose(step, step[-1]):
            return [_format_number(v) for v in axis[-1] + step[-1] * steps]
        return None
    if np.issubdtype(axis.dtype, np.datetime64):
        days = np.diff(axis).astype(np.int64)
        if np.all(days == days[-1]):
            return [str(d) for d in axis[-1] + days[-1] * steps]
        months = axis.astype("datetime64[M]")
        month_step = np.diff(months).astype(np.int64)
        same_day = np.all(axis - months.astype("datetime64[D]") == axis[-1] - months[-1].astype("datetime64[D]"))
        if same_day and np.all(month_step == month_step[-1]) and month_step[-1] > 0:
            offset = axis[-1] - months[-1].astype("datetime64[D]")
            return [str((months[-1] + month_step[-1] * s).astype("datetime64[D]") + offset) for s in steps]
    return None
