"""Pictures of forecasts: the history, the forecasts and their prediction intervals (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .series import time_axis

__all__ = ["plot_forecast", "plot_backtest"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def _future_axis(axis: np.ndarray, horizon: int) -> np.ndarray:
    """x positions of the steps after the last one, continuing the last spacing."""
    if len(axis) < 2:
        return np.arange(len(axis), len(axis) + horizon)
    return axis[-1] + (axis[-1] - axis[-2]) * np.arange(1, horizon + 1)


def plot_forecast(path: str | Path, values: np.ndarray, mean: np.ndarray, lower=None, upper=None, *,
                  time: np.ndarray | None = None, title: str = "", level: float = 0.9, show_last: int | None = None):
    """The last `show_last` observed values, then the forecast of the next len(mean) steps with
    its interval band."""
    plt = _pyplot()
    axis = time_axis(time, len(values))
    future = _future_axis(axis, len(mean))
    shown = slice(-show_last, None) if show_last else slice(None)
    figure, axes = plt.subplots(figsize=(9, 4), dpi=110)
    axes.plot(axis[shown], values[shown], color="black", linewidth=1, label="history")
    joined_x = np.concatenate([axis[-1:], future])
    axes.plot(joined_x, np.concatenate([values[-1:], mean]), color="tab:blue", linewidth=1.5, label="forecast")
    if lower is not None and upper is not None:
        axes.fill_between(future, lower, upper, color="tab:blue", alpha=0.25, linewidth=0,
                          label=f"{level:.0%} interval")
    _finish(plt, figure, axes, title, path, axis)


def plot_backtest(path: str | Path, values: np.ndarray, report, *, time: np.ndarray | None = None,
                  context: int | None = None):
    """The series around the test part, our forecasts `report.horizon` steps ahead from each
    origin with their interval band, and the baselines' (thin lines)."""
    plt = _pyplot()
    axis = time_axis(time, len(values))
    horizon = report.horizon
    targets = report.origins + horizon  # where the H-step-ahead forecasts land
    begin = max(0, report.insample - (context if context is not None else len(targets)))
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=110)
    axes.plot(axis[begin:], values[begin:], color="black", linewidth=1, label="actual")
    axes.axvline(axis[report.insample], color="gray", linestyle=":", linewidth=1)
    ours, *baselines = report.results
    for result, color in zip(baselines, ("tab:gray", "tab:olive", "tab:green", "tab:purple", "tab:brown", "tab:pink")):
        axes.plot(axis[targets], result.forecasts[:, -1], color=color, linewidth=0.8, alpha=0.8, label=result.name)
    if ours.lower is not None:
        axes.fill_between(axis[targets], ours.lower[:, -1], ours.upper[:, -1], color="tab:blue", alpha=0.25,
                          linewidth=0, label=f"{report.level:.0%} interval")
    axes.plot(axis[targets], ours.forecasts[:, -1], color="tab:blue", linewidth=1.5, label=ours.name)
    step = "one step" if horizon == 1 else f"{horizon} steps"
    _finish(plt, figure, axes, f"{report.series}: forecasts {step} ahead over the test part", path, axis)


def _finish(plt, figure, axes, title: str, path, axis: np.ndarray) -> None:
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    if np.issubdtype(axis.dtype, np.datetime64):
        figure.autofmt_xdate()
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
