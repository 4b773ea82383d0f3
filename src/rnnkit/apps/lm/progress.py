"""What `rnnkit lm train` shows while it trains and when it ends: a progress bar, a short sample
every few hundred steps, and the run's history and loss curve.

Three losses appear, each named for what it is (nats per token): "train" is a running mean of
the training batches' losses (an exponential average, weight 0.05 per batch), "batch" one
batch's loss, "val" the loss on the whole validation text at the last evaluation."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from rnnkit.data.batches import StreamBatches
from rnnkit.train import Trainer

from .model import LanguageModel

__all__ = ["Progress", "Sampler", "finish"]


def finish(trainer: Trainer, out: Path, tokens: int, seconds: float, unit: str, *, finished: bool = True) -> None:
    """Write history.json and the loss curve and say how the run ended ("done", or "stopped"
    when it was interrupted or failed)."""
    from rnnkit.viz import plot_history

    history = trainer.state.history
    (out / "history.json").write_text(json.dumps(history, indent=1))
    if history:
        plot_history(history, out / "loss_curve.png", unit=f"nats/{unit}")
    best = trainer.state.best_loss
    validated = "validation " if any("val_loss" in r for r in history) else ""
    print(f"{'done' if finished else 'stopped'}: {trainer.state.step} steps, best {validated}"
          f"loss {best if best is None else f'{best:.4f}'} nats/{unit}, "
          f"{tokens / max(seconds, 1e-9):,.0f} tokens/s over {seconds:.0f} s; "
          f"checkpoints, history.json and loss_curve.png in {out}", file=sys.stderr)


class Progress:
    """A tqdm bar: the running-mean training loss, the last validation loss, tokens per second."""

    def __init__(self, settings: dict, batches: StreamBatches, show: bool = True):
        from tqdm import tqdm

        total = settings["steps"] or (settings["epochs"] * len(batches) if settings["epochs"] else None)
        self.bar = tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr,
                        disable=None if show else True)  # None: no bar when stderr is not a terminal
        self.tokens = settings["batch"] * settings["seq_len"]  # the global batch (all MPI processes)
        self.unit = "char" if settings["tokens"] == "chars" else "word"
        self.smoothed = None
        self.val = None
        self.started = time.perf_counter()
        self.first_step = None

    def update(self, trainer: Trainer, record: dict) -> None:
        if self.first_step is None:
            self.first_step = record["step"] - 1
        self.smoothed = record["loss"] if self.smoothed is None else 0.95 * self.smoothed + 0.05 * record["loss"]
        self.val = record.get("val_loss", self.val)
        rate = self.tokens * (record["step"] - self.first_step) / max(time.perf_counter() - self.started, 1e-9)
        postfix = {"train": f"{self.smoothed:.3f}", "tok/s": f"{rate:,.0f}"}
        if self.val is not None:
            postfix["val"] = f"{self.val:.3f}"
        self.bar.n = record["step"]
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()
        if self.bar.disable and "val_loss" in record:  # no bar: still report each evaluation
            print(f"step {record['step']}: train loss (running mean) {self.smoothed:.4f}, val loss {self.val:.4f} "
                  f"nats/{self.unit}, {rate:,.0f} tokens/s", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


class Sampler:
    """Every `sample_every` steps, a short sample: the lecture's "after 100, 300, 500
    iterations"."""

    def __init__(self, model: LanguageModel, settings: dict):
        self.model, self.settings = model, settings

    def maybe_sample(self, trainer: Trainer, record: dict) -> None:
        every = self.settings["sample_every"]
        if not every or record["step"] % every:
            return
        from tqdm import tqdm

        rng = np.random.default_rng([self.settings["seed"], record["step"]])
        prime = self.settings["prime"] or ""
        text = self.model.generate(self.settings["sample_length"], prime=prime, rng=rng)
        loss = (f"val loss {record['val_loss']:.3f}" if "val_loss" in record else f"batch loss {record['loss']:.3f}")
        tqdm.write(f"--- sample at step {record['step']} ({loss}) ---\n{prime}{text}\n", file=sys.stdout)
