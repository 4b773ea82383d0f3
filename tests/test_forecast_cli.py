"""`rnnkit forecast train | predict | backtest` end to end on a small generated CSV, and every
bad input the issue lists: one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main

TINY = ["--window", "8", "--hidden", "8", "--ensemble", "2", "--steps", "80", "--eval-every", "20", "--lr", "0.01"]
PNG = b"\x89PNG\r\n\x1a\n"


def write_series(path: Path, length: int = 150, seed: int = 0, gaps: int = 0) -> Path:
    """Monthly dates, y = a season of 6 plus a response to the covariate x, and x."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(length)
    y = 5 + np.sin(2 * np.pi * np.arange(length) / 6) + 0.5 * np.concatenate([[0], x[:-1]]) \
        + 0.1 * rng.standard_normal(length)
    months = np.arange("2000-01", np.datetime64("2000-01") + length, dtype="datetime64[M]")
    rows = [f"{m}-01,{v:.4f},{c:.4f}" for m, v, c in zip(months, y, x)]
    for index in range(gaps):
        date, _, c = rows[10 + 7 * index].split(",")
        rows[10 + 7 * index] = f"{date},,{c}"
    path.write_text("date,y,x\n" + "\n".join(rows) + "\n")
    return path


def exit_code(argv: list[str]) -> int:
    """main's return code, or argparse's exit code for arguments it rejects itself."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forecast")
    csv = write_series(folder / "series.csv")
    out = folder / "run"
    assert main(["forecast", "train", str(csv), "--column", "y", "--time-column", "date", "--covariates", "x",
                 "--season", "6", *TINY, "--horizon", "3", "--out", str(out)]) == 0
    return csv, out


def test_train_writes_the_model_history_and_loss_curve(trained):
    _, out = trained
    history = json.loads((out / "history.json").read_text())
    assert any("val_mae" in record for record in history)
    assert (out / "model.safetensors").stat().st_size > 0
    assert (out / "loss_curve.png").read_bytes()[:8] == PNG


def test_backtest_prints_our_model_beside_the_baselines(trained, capsys):
    _, out = trained
    assert main(["forecast", "backtest", str(out / "model.safetensors"), "--horizon", "1",
                 "--plot", str(out / "bt.png")]) == 0
    printed = capsys.readouterr().out
    for name in ("2 x LSTM 1x8", "naive", "seasonal naive (m=6)", "ETS", "ARIMA(", ")(0,1,0)_6", "MASE", "coverage"):
        assert name in printed, name
    assert "2010-01-01" in printed  # the test part's time span, from the time column
    assert (out / "bt.png").read_bytes()[:8] == PNG


def test_predict_needs_future_covariates_beyond_one_step(trained, tmp_path, capsys):
    csv, out = trained
    model = str(out / "model.safetensors")
    assert exit_code(["forecast", "predict", model, "--horizon", "3"]) == 2
    assert "future covariates" in capsys.readouterr().err
    future = tmp_path / "future.csv"
    future.write_text("x\n0.1\n-0.2\n")
    assert main(["forecast", "predict", model, "--horizon", "3", "--future-covariates", str(future),
                 "--plot", str(tmp_path / "p.png")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["time", "forecast", "lower", "upper"]
    assert [line.split()[0] for line in lines[1:]] == ["2012-07-01", "2012-08-01", "2012-09-01"]
    for line in lines[1:]:
        mean, lower, upper = map(float, line.split()[1:4])
        assert lower < mean < upper
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG


def test_fill_interpolates_gaps_and_a_named_dataset_trains(tmp_path, capsys):
    csv = write_series(tmp_path / "gappy.csv", gaps=3)
    args = ["forecast", "train", str(csv), "--column", "y", *TINY, "--steps", "5", "--out", str(tmp_path / "r")]
    assert exit_code(args) == 2
    assert "3 missing (NaN)" in capsys.readouterr().err
    assert main(args + ["--fill"]) == 0
    assert main(["forecast", "train", "--dataset", "nile", *TINY, "--steps", "5", "--out", str(tmp_path / "n")]) == 0
    assert main(["forecast", "backtest", str(tmp_path / "n" / "model.safetensors"), "--no-baselines",
                 "--horizon", "2", "--samples", "10"]) == 0
    assert "1951 to 1970" in capsys.readouterr().out


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def short_series(d: Path) -> Path:
    return write(d / "short.csv", "y\n" + "\n".join(str(v) for v in range(10)) + "\n")


BAD_TRAIN = {
    "missing file": (lambda d: [str(d / "nope.csv"), "--column", "y"], "does not exist"),
    "missing column": (lambda d: [str(write_series(d / "s.csv")), "--column", "z"], "column 'z' is not in"),
    "missing covariate": (lambda d: [str(write_series(d / "s.csv")), "--column", "y", "--covariates", "x,w"],
                          "column 'w' is not in"),
    "no column given": (lambda d: [str(write_series(d / "s.csv"))], "needs --column"),
    "non-numeric": (lambda d: [str(write(d / "t.csv", "y\n1\n2\nabc\n4\n")), "--column", "y"],
                    "non-numeric value 'abc' on line 4"),
    "nan and inf": (lambda d: [str(write(d / "n.csv", "t,y\n1,1\n2,nan\n3,inf\n4,-inf\n5,5\n")), "--column", "y"],
                    "1 missing (NaN) and 2 infinite"),
    "shorter than window + horizon": (lambda d: [str(short_series(d)), "--column", "y", "--window", "8",
                                                 "--horizon", "3"], "fewer than --window 8 + --horizon 3"),
    "window zero": (lambda d: ["--dataset", "nile", "--window", "0"], "positive integer"),
    "window negative": (lambda d: ["--dataset", "nile", "--window", "-3"], "positive integer"),
    "horizon zero": (lambda d: ["--dataset", "nile", "--horizon", "0"], "positive integer"),
    "unknown dataset": (lambda d: ["--dataset", "airline"], "invalid choice"),
    "column with a dataset": (lambda d: ["--dataset", "nile", "--column", "y"], "applies to CSV files"),
    "seasonal without a season": (lambda d: ["--dataset", "nile", "--target", "seasonal"], "--season"),
    "no data": (lambda d: [], "--dataset"),
}


@pytest.mark.parametrize("case", sorted(BAD_TRAIN))
def test_bad_training_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    make_args, message = BAD_TRAIN[case]
    code = exit_code(["forecast", "train", *make_args(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err


BAD_USE = {
    "missing checkpoint": (lambda d, o: ["predict", str(d / "none.safetensors")], "does not exist"),
    "not a forecaster": (lambda d, o: ["predict", str(write(d / "x.safetensors", "hello" * 20))],
                         "not a readable checkpoint"),
    "horizon zero": (lambda d, o: ["predict", str(o / "model.safetensors"), "--horizon", "0"], "positive integer"),
    "horizon beyond the test part": (lambda d, o: ["backtest", str(o / "model.safetensors"), "--horizon", "40"],
                                     "fewer than the horizon 40"),
    "new data missing its covariate": (lambda d, o: ["predict", str(o / "model.safetensors"),
                                                     str(write(d / "y.csv", "date,y\n2000-01-01,1\n"))],
                                       "column 'x' is not in"),
}


@pytest.mark.parametrize("case", sorted(BAD_USE))
def test_bad_predict_and_backtest_input_is_one_line_and_exit_2(case, trained, tmp_path, capsys):
    make_args, message = BAD_USE[case]
    code = exit_code(["forecast", *make_args(tmp_path, trained[1])])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
