"""Pictures: the loss curve of a training run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_history"]


def plot_history(history: list[dict], path: str | Path, *, unit: str = "nats/char") -> None:
    """Training loss per step (faint) with its moving average, and the validation loss at each
    evaluation, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    steps = np.array([r["step"] for r in history])
    losses = np.array([r["loss"] for r in history])
    figure, axes = plt.subplots(figsize=(7, 4), dpi=120)
    if len(losses):
        axes.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8)
        window = max(1, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        axes.plot(steps[window - 1:], smooth, color="tab:blue", label="training")
    evaluated = [r for r in history if "val_loss" in r]
    if evaluated:
        axes.plot([r["step"] for r in evaluated], [r["val_loss"] for r in evaluated], "o-",
                  color="tab:orange", markersize=3, label="validation")
    axes.set_xlabel("step")
    axes.set_ylabel(f"loss ({unit})")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
