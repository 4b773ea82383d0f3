"""`rnnkit forecast train | predict | backtest`: time-series forecasting with a recurrent network.
The arguments and what is printed; the settings' layers and the data live in `settings.py`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from rnnkit.argtypes import finite_float, fraction, non_negative_float, non_negative_int, positive_float, positive_int

from .api import train_forecaster
from .model import TARGETS
from .series import NAMED_SERIES, future_time_labels
from .settings import CSV_OPTIONS, DEFAULTS, data_source, load_with_data, settings_from


def add_parser(tasks) -> None:
    forecast = tasks.add_parser(
        "forecast", help="time-series forecasting: train, predict, backtest against classical baselines",
        description="Forecast a univariate time series (a CSV column or a named dataset) one or several steps "
                    "ahead with a recurrent network and a Gaussian head (prediction intervals), and compare it "
                    "with naive, seasonal naive, ETS and ARIMA on a rolling-origin backtest.")
    verbs = forecast.add_subparsers(dest="verb", metavar="VERB", required=True)
    add_train(verbs)
    add_predict(verbs)
    add_backtest(verbs)


def add_data_options(p, *, for_training: bool) -> None:
    data = p.add_argument_group("data")
    data.add_argument("csv_file", nargs="?", help="a CSV file with a header row" +
                      ("" if for_training else " (default: the data the model was trained on)"))
    data.add_argument("--dataset", choices=NAMED_SERIES, help="a named dataset shipped with statsmodels: " +
                      "; ".join(f"{name}: {info.description}" for name, info in NAMED_SERIES.items()))
    data.add_argument("--column", help="the CSV column to forecast" + (" (required with a CSV file)"
                                                                        if for_training else ""))
    data.add_argument("--time-column", help="a CSV column of time labels (dates or numbers), for tables and plots")
    data.add_argument("--covariates", type=column_list, help="extra input columns, comma-separated: a,b")
    data.add_argument("--fill", action="store_true", default=None,
                      help="interpolate missing (NaN) and infinite values linearly instead of refusing them")


def add_forecast_options(p) -> None:
    out = p.add_argument_group("forecasts")
    out.add_argument("--horizon", type=positive_int, help="steps ahead, predictions fed back (default: as trained)")
    out.add_argument("--level", type=fraction, default=0.9, help="probability of the prediction intervals "
                                                                  "(default: 0.9)")
    out.add_argument("--samples", type=non_negative_int, default=100,
                     help="sample paths for the intervals beyond one step; fewer is faster, 0 gives "
                          "intervals too narrow beyond one step (default: 100)")
    out.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sample paths (default: 0)")
    out.add_argument("--plot", help="PNG file for the plot (default: next to the checkpoint)")


def add_train(verbs) -> None:
    D = DEFAULTS
    p = verbs.add_parser(
        "train", help="train a forecaster on a CSV column or a named dataset",
        description="Train a recurrent forecaster: windows of --window values predict the next one. The series "
                    "is split in time: training, validation (early stopping) and test (kept for `backtest`); "
                    "scaling is fitted on the training part only. A named dataset brings its own season, target, "
                    "window and width (options given override them).",
        argument_default=None)
    add_data_options(p, for_training=True)
    split = p.add_argument_group("split")
    split.add_argument("--season", type=positive_int,
                       help=f"seasonal period m for seasonal naive, ETS, ARIMA and MASE (default: {D['season']}, or "
                            "the dataset's)")
    split.add_argument("--val-frac", type=fraction, help=f"validation fraction (default: {D['val_frac']})")
    split.add_argument("--test-frac", type=fraction, help=f"test fraction, at the end (default: {D['test_frac']})")
    model = p.add_argument_group("model")
    model.add_argument("--window", type=positive_int, help=f"values per forecast, k (default: {D['window']})")
    model.add_argument("--horizon", type=positive_int, help=f"default steps ahead for predict and backtest "
                                                            f"(default: {D['horizon']})")
    model.add_argument("--target", choices=TARGETS, help="what the network predicts: the next level, the change "
                                                         "from the last value, or the change from a season "
                                                         f"before (default: {D['target']})")
    model.add_argument("--loss", choices=("gaussian", "mse"), help="gaussian: mean and variance by negative "
                                                                   "log-likelihood (intervals); mse: the mean only "
                                                                   f"(default: {D['loss']})")
    model.add_argument("--cell", choices=("lstm", "gru", "rnn"), help=f"recurrent cell (default: {D['cell']})")
    model.add_argument("--forget-bias", type=finite_float,
                       help="added to the LSTM's forget-gate bias at initialisation; 1 starts the gate open "
                            f"(Gers et al. 2000) (default: {D['forget_bias']}, PyTorch's)")
    model.add_argument("--hidden", type=positive_int, help=f"hidden units per layer (default: {D['hidden']})")
    model.add_argument("--layers", type=positive_int, help=f"stacked layers (default: {D['layers']})")
    model.add_argument("--dropout", type=fraction, help=f"dropout before the head (default: {D['dropout']})")
    model.add_argument("--ensemble", type=positive_int, help="networks trained with seeds seed, seed+1, ... and "
                                                             f"pooled (default: {D['ensemble']})")
    train = p.add_argument_group("training")
    train.add_argument("--steps", type=positive_int, help=f"most training steps (default: {D['steps']})")
    train.add_argument("--minutes", type=positive_float, help="wall-clock budget")
    train.add_argument("--batch", type=positive_int, help=f"windows per batch (default: {D['batch']})")
    train.add_argument("--lr", type=positive_float, help=f"Adam's learning rate (default: {D['lr']})")
    train.add_argument("--clip", type=non_negative_float, help=f"gradient norm clip; 0 = off (default: {D['clip']})")
    train.add_argument("--eval-every", type=positive_int, help=f"validate every N steps (default: {D['eval_every']})")
    train.add_argument("--patience", type=positive_int, help="stop after N validations without a lower "
                                                             f"validation MAE (default: {D['patience']})")
    train.add_argument("--seed", type=non_negative_int, help=f"seed of the weights and batches (default: {D['seed']})")
    train.add_argument("--out", help="output folder (default: runs/forecast/<dataset or file name>)")
    p.set_defaults(run=run_train)


def add_predict(verbs) -> None:
    p = verbs.add_parser("predict", help="forecast the steps after the end of the series",
                         description="Forecast --horizon steps after the last value, with prediction intervals; "
                                     "prints a table and writes a plot.")
    p.add_argument("checkpoint", help="a model.safetensors written by `rnnkit forecast train`")
    add_data_options(p, for_training=False)
    add_forecast_options(p)
    p.add_argument("--future-covariates", help="CSV with the covariate columns for the next horizon - 1 steps")
    p.set_defaults(run=run_predict)


def add_backtest(verbs) -> None:
    p = verbs.add_parser("backtest", help="rolling-origin backtest on the test part, beside the baselines",
                         description="Forecast from every origin of the test part (the split saved at training), "
                                     "and score MAE, RMSE, MASE and interval coverage beside naive, seasonal "
                                     "naive, ETS and ARIMA fitted on the same past.")
    p.add_argument("checkpoint", help="a model.safetensors written by `rnnkit forecast train`")
    add_data_options(p, for_training=False)
    add_forecast_options(p)
    p.add_argument("--no-baselines", action="store_true", help="score the network only (skips the ETS/ARIMA fits)")
    p.set_defaults(run=run_backtest)


def column_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        import argparse

        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return names


# ------------------------------------------------------------------------------- train
def run_train(args) -> int:
    source = data_source(args.csv_file, args.dataset, csv_options(args))
    settings = settings_from(vars(args), args.dataset)
    count, cell = settings["ensemble"], settings["cell"].upper()

    def announce(forecaster, series, split) -> None:
        networks = f"{count} {cell}s" if count > 1 else f"an {cell}" if cell != "GRU" else "a GRU"
        print(f"training {networks} of {settings['layers']} x {settings['hidden']} on {series.name}: "
              f"{len(series)} values, train {split.train_end}, validation {split.validation_end - split.train_end}, "
              f"test {len(series) - split.test_start}; window {settings['window']}, target {settings['target']}, "
              f"{forecaster.network.num_parameters():,} parameters{' each' if count > 1 else ''}", file=sys.stderr)

    started = time.perf_counter()
    forecaster, series, _ = train_forecaster(source, settings, on_start=announce)
    history = forecaster.history
    out = Path(args.out or Path("runs/forecast") / series.name)
    out.mkdir(parents=True, exist_ok=True)
    forecaster.save(out / "model.safetensors", {"source": source, "settings": settings})
    (out / "history.json").write_text(json.dumps(history, indent=1))
    from rnnkit.viz import plot_history

    plot_history([r for r in history if r["member"] == 0], out / "loss_curve.png",
                 unit="NLL" if settings["loss"] == "gaussian" else "MSE")
    steps = [max(r["step"] for r in history if r["member"] == i) for i in range(count)]
    validated = (f", validation MAE one step ahead {forecaster.validation_mae:.4g}"
                 if forecaster.validation_mae is not None else "")
    print(f"done in {time.perf_counter() - started:.0f} s: {', '.join(map(str, steps))} steps{validated}; "
          f"model.safetensors, history.json and loss_curve.png in {out}\n"
          f"next: rnnkit forecast backtest {out / 'model.safetensors'}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------- predict, backtest
def csv_options(args) -> dict:
    """The CSV options the user typed: column, time_column, covariates."""
    return {k: getattr(args, k) for k in CSV_OPTIONS if getattr(args, k) is not None}


def load_for_use(args):
    """`predict` and `backtest`: the forecaster, its settings, the data and split, the horizon and
    the plot's path."""
    forecaster, settings, series, split, horizon = load_with_data(
        args.checkpoint, csv_file=args.csv_file, dataset=args.dataset, csv_options=csv_options(args),
        fill=bool(args.fill), horizon=args.horizon)
    plot = Path(args.plot) if args.plot else Path(args.checkpoint).with_name(f"{args.verb}.png")
    return forecaster, settings, series, split, horizon, plot


def run_predict(args) -> int:
    forecaster, settings, series, _, horizon, plot = load_for_use(args)
    future = None
    if args.future_covariates:
        from .series import read_csv

        names = list(forecaster.config.covariates)
        if not names:
            raise ValueError("--future-covariates given, but the model reads no covariates")
        future = read_csv(args.future_covariates, names[0], covariates=names[1:])
        future = np.column_stack([future.values, future.covariates])[:horizon - 1]
        if len(future) < horizon - 1 or not np.isfinite(future).all():
            raise ValueError(f"--future-covariates needs {horizon - 1} complete rows of {', '.join(names)}")
    forecast = forecaster.forecast(series.values, series.covariates, horizon=horizon, level=args.level,
                                   samples=args.samples, rng=args.seed, future_covariates=future)
    labels = future_time_labels(series.time, horizon) or [f"+{h}" for h in range(1, horizon + 1)]
    interval = forecast.lower is not None
    print(f"{'time':<12}{'forecast':>12}" + (f"{'lower':>12}{'upper':>12}  ({args.level:.0%} interval)"
                                             if interval else ""))
    for h in range(horizon):
        row = f"{labels[h]:<12}{forecast.mean[0, h]:>12.5g}"
        if interval:
            row += f"{forecast.lower[0, h]:>12.5g}{forecast.upper[0, h]:>12.5g}"
        print(row)
    from .plot import plot_forecast

    plot_forecast(plot, series.values, forecast.mean[0], None if not interval else forecast.lower[0],
                  None if not interval else forecast.upper[0], time=series.time, level=args.level,
                  title=f"{series.name}: {horizon}-step forecast", show_last=max(4 * horizon, 3 * settings["window"]))
    print(f"plot: {plot}", file=sys.stderr)
    return 0


def run_backtest(args) -> int:
    from . import backtest as backtesting
    from .plot import plot_backtest

    forecaster, settings, series, split, horizon, plot = load_for_use(args)
    members = f"{settings['ensemble']} x " if settings["ensemble"] > 1 else ""
    name = (f"{members}{settings['cell'].upper()} {settings['layers']}x{settings['hidden']}, {settings['target']}, "
            f"window {settings['window']}")
    report = backtesting.run_backtest(forecaster, series, split, name=name, horizon=horizon, level=args.level,
                                      samples=args.samples, seed=args.seed, baselines=not args.no_baselines)
    print(backtesting.format_report(report, series.time))
    plot_backtest(plot, series.values, report, time=series.time)
    print(f"plot: {plot}", file=sys.stderr)
    return 0
