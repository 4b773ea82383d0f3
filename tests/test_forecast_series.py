"""Time series data: CSV reading and its errors, gap filling, the named datasets, the split,
the scaler, the windows, and that nothing from the test part leaks into training."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.apps.forecast.model import Forecaster
from rnnkit.apps.forecast.series import (
    Scaler,
    check_finite,
    chronological_split,
    future_time_labels,
    interpolate_gaps,
    load_named,
    load_series,
    read_csv,
    sliding_windows,
)


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, row)) for row in rows]) + "\n")
    return path


def test_read_csv_reads_the_column_covariates_and_time(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["t", "y", "x"], [(2000, 1.5, 10), (2001, 2.5, 11), (2002, 3.5, 12)])
    series = read_csv(path, "y", time_column="t", covariates=["x"])
    np.testing.assert_array_equal(series.values, [1.5, 2.5, 3.5])
    np.testing.assert_array_equal(series.covariates, [[10], [11], [12]])
    assert list(series.time) == ["2000", "2001", "2002"] and series.covariate_names == ("x",)


def test_read_csv_errors_name_the_problem(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["y", "x"], [(1, 2), ("abc", 3)])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_csv(tmp_path / "none.csv", "y")
    with pytest.raises(ValueError, match="column 'z' is not in .*its columns are: y, x"):
        read_csv(path, "z")
    with pytest.raises(ValueError, match="non-numeric value 'abc' on line 3"):
        read_csv(path, "y")


def test_missing_and_infinite_values_are_counted_and_filled(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["t", "y"], [(1, 1), (2, ""), (3, "NA"), (4, 4), (5, "inf"), (6, 6)])
    series = read_csv(path, "y", time_column="t")
    with pytest.raises(ValueError, match=r"2 missing \(NaN\) and 1 infinite value.*first at time 2.*--fill"):
        check_finite(series)
    np.testing.assert_allclose(check_finite(series, fill=True).values, [1, 2, 3, 4, 5, 6])
    np.testing.assert_allclose(interpolate_gaps(np.array([np.nan, 2.0, np.nan, 4.0, np.nan])), [2, 2, 3, 4, 4])


def test_named_datasets_come_from_statsmodels():
    lengths = {"co2": 2284, "sunspots": 309, "elec_equip": 257, "nile": 100}
    for name, length in lengths.items():
        series = load_named(name)
        assert len(series) == length and series.time is not None and series.season >= 1
    with pytest.raises(ValueError, match="59 missing"):
        load_series({"dataset": "co2"})
    filled = load_series({"dataset": "co2"}, fill=True)
    assert np.isfinite(filled.values).all() and filled.season == 52


def test_future_time_labels_continue_years_weeks_and_months():
    assert future_time_labels(np.array(["1969", "1970"]), 2) == ["1971", "1972"]
    assert future_time_labels(np.array(["2001-12-22", "2001-12-29"]), 1) == ["2002-01-05"]
    assert future_time_labels(np.array(["2016-01-01", "2016-02-01", "2016-03-01"]), 2) == ["2016-04-01", "2016-05-01"]
    assert future_time_labels(np.array(["a", "b"]), 1) is None


def test_split_is_chronological():
    split = chronological_split(100, 0.15, 0.2)
    assert (split.train_end, split.validation_end, split.length) == (65, 80, 100)
    with pytest.raises(ValueError, match="leave no training data"):
        chronological_split(100, 0.5, 0.5)


def test_scaler_statistics():
    values = np.array([1.0, 3.0, 2.0, 6.0, 4.0, 8.0])
    scaler = Scaler.fit(values, season=2)
    assert scaler.level_mean == pytest.approx(values.mean()) and scaler.level_scale == pytest.approx(values.std())
    assert scaler.change_scale == pytest.approx(np.diff(values).std())
    seasonal = values[2:] - values[:-2]
    assert scaler.seasonal_mean == pytest.approx(seasonal.mean())
    assert Scaler.from_dict(scaler.to_dict()) == scaler
    assert Scaler.fit(np.ones(5)).level_scale == 1.0  # a constant does not divide by zero


def test_sliding_windows_end_at_their_origin():
    values = np.arange(10.0)
    windows = sliding_windows(values, 3, np.array([2, 5, 9]))
    np.testing.assert_array_equal(windows, [[0, 1, 2], [3, 4, 5], [7, 8, 9]])
    with pytest.raises(ValueError, match="origins must lie in"):
        sliding_windows(values, 3, np.array([1]))
    with pytest.raises(ValueError, match="positive integer"):
        sliding_windows(values, 0, np.array([1]))


@pytest.mark.parametrize("target", ["level", "change", "seasonal"])
def test_training_windows_and_targets_line_up(target):
    forecaster = Forecaster.build(4, target=target, season=3, hidden_size=4, dtype=np.float64)
    values = np.arange(20.0) ** 1.5
    forecaster.scaler = Scaler.fit(values[:12], season=3)
    origins = np.arange(3 + forecaster.config.lag, 11)
    inputs, targets, mask = forecaster.training_examples(values, np.zeros((20, 0)), origins)
    assert inputs.shape == (len(origins), 4, 1) and mask[:, -1].all() and not mask[:, :-1].any()
    center, scale = forecaster._target_frame(forecaster._windows(values, origins))
    np.testing.assert_allclose(center + scale * targets[:, -1, 0], values[origins + 1])  # the next value


def test_no_leakage_from_the_test_part():
    """Scaling and training read the training and validation parts only: changing the test
    part changes neither the scaler nor a single trained weight."""
    rng = np.random.default_rng(0)
    values = np.sin(np.arange(120) / 3) + 0.1 * rng.standard_normal(120)
    altered = values.copy()
    altered[100:] = 1e6  # absurd test values
    trained = []
    for series in (values, altered):
        forecaster = Forecaster.build(8, hidden_size=4, seed=1)
        forecaster.fit(series, train_end=80, validation_end=100, steps=20, eval_every=5)
        trained.append(forecaster)
    assert trained[0].scaler == trained[1].scaler == Scaler.fit(values[:80])
    for name, value in trained[0].network.state_dict().items():
        np.testing.assert_array_equal(value, trained[1].network.state_dict()[name], err_msg=name)
