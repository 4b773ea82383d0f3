"""The picture of `rnnkit gradients`: four panels in one PNG.

(a) ||dL_T/dh_{T-k}|| against the lag k at initialisation, one curve per cell (the LSTM's
    cell state c dashed); (b) the same after training; (c) the exploding Elman RNN's gradient
    at initialisation; (d) its training loss with and without gradient clipping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .experiment import CellRun, ExplodingRun, Settings

__all__ = ["draw"]

COLOURS = {"rnn": "tab:red", "gru": "tab:green", "lstm": "tab:blue"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def _positive(values: np.ndarray) -> np.ndarray:
    """Zeros (an LSTM's c at lag 0, underflow) cannot sit on a log scale: leave them out."""
    return np.where(values > 0, values, np.nan)


def _flow_panel(axes, runs: list[CellRun], which: str, title: str) -> None:
    for run in runs:
        norms = run.initial if which == "initial" else run.trained
        if norms is None:
            continue
        reference = run.trained is None  # PyTorch's LSTM, drawn for comparison at initialisation
        colour = "tab:purple" if reference else COLOURS.get(run.cell, "black")
        lags = np.arange(len(norms["h"]))
        label = run.label
        if which == "trained" and run.losses:  # did it learn the task? (guessing scores 0.167)
            label += f" (loss {np.mean(run.losses[-10:]):.3f})"
        axes.plot(lags, _positive(norms["h"]), color=colour, label=f"{label}: h", linewidth=1.6)
        if "c" in norms:
            axes.plot(lags, _positive(norms["c"]), color=colour, linestyle="--", label=f"{label}: c",
                      linewidth=1.2)
    axes.set_yscale("log")
    axes.set_xlabel("lag k (steps back from the loss at T)")
    axes.set_ylabel(r"$\|\partial L_T / \partial h_{T-k}\|$  (c: dashed)")
    axes.set_title(title)
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=7)


def draw(path: str | Path, runs: list[CellRun], exploding: ExplodingRun, settings: Settings) -> None:
    plt = _pyplot()
    figure, grid = plt.subplots(2, 2, figsize=(12, 8.5), dpi=90)
    _flow_panel(grid[0, 0], runs, "initial", f"(a) at initialisation, T = {settings.steps}")
    _flow_panel(grid[0, 1], runs, "trained",
                f"(b) after {settings.train_steps} Adam updates on the adding problem")
    lower, upper = grid[0, 0].get_ylim(), grid[0, 1].get_ylim()
    for axes in grid[0]:  # one scale for the two, so the eye compares them directly
        axes.set_ylim(min(lower[0], upper[0]), max(lower[1], upper[1]))

    axes = grid[1, 0]
    lags = np.arange(len(exploding.initial))
    axes.plot(lags, _positive(exploding.initial), color="tab:red", label="rnn: h")
    axes.set_yscale("log")
    axes.set_xlabel("lag k")
    axes.set_ylabel(r"$\|\partial L_T / \partial h_{T-k}\|$")
    axes.set_title(f"(c) Elman RNN with W_hh's spectral radius {exploding.radius:g}: the gradient grows")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=7)

    axes = grid[1, 1]
    axes.plot(np.arange(1, len(exploding.losses_unclipped) + 1), exploding.losses_unclipped, color="tab:red",
              label="no clipping" + (f" (diverged at update {exploding.diverged_at})" if exploding.diverged_at
                                     else ""))
    axes.plot(np.arange(1, len(exploding.losses_clipped) + 1), exploding.losses_clipped, color="tab:blue",
              label=f"global norm clipped at {settings.clip:g}")
    if exploding.diverged_at:
        axes.axvline(exploding.diverged_at, color="tab:red", linestyle=":", linewidth=1)
    if exploding.losses_unclipped or exploding.losses_clipped:
        axes.set_yscale("log")
    else:  # both overflowed at the first update: nothing finite to draw
        axes.text(0.5, 0.5, "the gradient overflowed at the first update,\nclipped or not", ha="center",
                  va="center", transform=axes.transAxes)
    axes.set_xlabel("SGD update")
    axes.set_ylabel("training loss (MSE at the last step)")
    axes.set_title(f"(d) the same RNN trained with SGD (lr {settings.explode_lr:g})")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
