"""The measurements behind `rnnkit gradients`: networks on the adding problem, their gradient flow
before and after a short training, and the exploding Elman RNN with and without clipping.

Every network is a `SequenceNetwork` (2 features -> one recurrent layer -> a number at every
step), and every loss is L_T = MSE of the last step's output against the sum of the two marked
numbers (`rnnkit.data.synthetic.adding_problem`). The flow is measured on one fixed batch with
`rnnkit.gradient_flow` (the hand-derived BPTT, not finite differences).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rnnkit.data.synthetic import adding_problem
from rnnkit.gradient_flow import GradientFlow, gradient_flow
from rnnkit.losses import mse
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import SGD, Adam, clip_grad_norm

__all__ = ["Settings", "CellRun", "ExplodingRun", "QUICK", "measure_cells", "measure_exploding"]


@dataclass(frozen=True)
class Settings:
    """steps: T; hidden: units; batch: sequences per update (and in the measured batch);
    train_steps: Adam updates on fresh adding problems; forget_bias: the LSTM's (with a
    non-zero one, PyTorch's b_f = 0 is drawn too, at initialisation, for comparison);
    radius: the exploding RNN's spectral radius of W_hh; explode_steps / explode_lr: its SGD
    run; clip: the global gradient-norm clip of every clipped run."""

    cells: tuple[str, ...] = ("rnn", "lstm", "gru")
    steps: int = 100
    hidden: int = 32
    batch: int = 64
    train_steps: int = 300
    lr: float = 0.01
    forget_bias: float = 3.0
    radius: float = 3.0
    explode_steps: int = 150
    explode_lr: float = 0.05
    clip: float = 1.0
    seed: int = 0


QUICK = {"batch": 16, "train_steps": 40, "explode_steps": 40}


@dataclass
class CellRun:
    """One network's gradient norms by lag, (T + 1,) per state ("h", and "c" for the LSTM), at
    initialisation and after training (None when it was not trained), and its training losses."""

    label: str
    cell: str
    initial: dict[str, np.ndarray]
    trained: dict[str, np.ndarray] | None = None
    losses: list[float] = field(default_factory=list)


@dataclass
class ExplodingRun:
    """The Elman RNN with W_hh's spectral radius set to `radius`: its gradient norms by lag at
    initialisation, and the training loss per update without and with clipping (the first run
    stops where its loss or gradient stops being finite)."""

    radius: float
    initial: np.ndarray
    losses_unclipped: list[float]
    losses_clipped: list[float]
    diverged_at: int | None


def adding_network(cell: str, settings: Settings, forget_bias: float = 0.0) -> SequenceNetwork:
    config = NetworkConfig(input_size=2, output_size=1, cell=cell, hidden_size=settings.hidden,
                           forget_bias=forget_bias if cell == "lstm" else 0.0)
    return SequenceNetwork(config, rng=settings.seed)


def last_step_flow(model: SequenceNetwork, inputs: np.ndarray, targets: np.ndarray) -> GradientFlow:
    """The flow of L_T = MSE(output_T, target_T) over the batch."""
    outputs, _, _ = model.forward(inputs)
    _, d_last = mse(outputs[-1], targets[-1])
    return gradient_flow(model, inputs, d_last)


def by_lag(flow: GradientFlow) -> dict[str, np.ndarray]:
    return {name: flow.by_lag(name) for name in flow.gradients["l0"]}


def train(model: SequenceNetwork, optimizer, settings: Settings, updates: int, clip: float | None) -> list[float]:
    """Updates on fresh adding problems (generator seed + 1); the loss of each. Stops early when
    the loss or the gradient is no longer finite (the update is then not applied)."""
    rng = np.random.default_rng(settings.seed + 1)
    losses = []
    for _ in range(updates):
        inputs, targets = adding_problem(rng, settings.batch, settings.steps)
        with np.errstate(over="ignore", invalid="ignore"):
            outputs, _, cache = model.forward(inputs)
            loss, d_last = mse(outputs[-1], targets[-1])
            d_outputs = np.zeros_like(outputs)
            d_outputs[-1] = d_last
            model.zero_grad()
            model.backward(d_outputs, cache)
            norm = clip_grad_norm(model.parameters(), clip) if clip else math.sqrt(
                sum(float(np.vdot(p.grad, p.grad)) for p in model.parameters()))
        if not (math.isfinite(loss) and math.isfinite(norm)):
            break
        losses.append(loss)
        optimizer.step()
    return losses


def measured_batch(settings: Settings):
    return adding_problem(settings.seed + 2, settings.batch, settings.steps)


def measure_cells(settings: Settings, report=lambda line: None) -> list[CellRun]:
    """Each cell at initialisation and after `train_steps` Adam updates (clipped at `clip`);
    with a non-zero forget bias, also the LSTM at PyTorch's initialisation (untrained)."""
    inputs, targets = measured_batch(settings)
    runs = []
    for cell in settings.cells:
        forget_bias = settings.forget_bias if cell == "lstm" else 0.0
        if cell == "lstm" and forget_bias:
            runs.append(CellRun("lstm, b_f = 0 (PyTorch)", cell, by_lag(last_step_flow(
                adding_network(cell, settings), inputs, targets))))
        model = adding_network(cell, settings, forget_bias)
        label = f"lstm, b_f = {forget_bias:g}" if cell == "lstm" and forget_bias else cell
        run = CellRun(label, cell, by_lag(last_step_flow(model, inputs, targets)))
        report(f"training {label} for {settings.train_steps} updates on the adding problem (T = {settings.steps})")
        run.losses = train(model, Adam(model.parameters(), lr=settings.lr), settings, settings.train_steps,
                           settings.clip)
        run.trained = by_lag(last_step_flow(model, inputs, targets))
        runs.append(run)
    return runs


def measure_exploding(settings: Settings) -> ExplodingRun:
    """An Elman RNN whose W_hh is rescaled to spectral radius `radius`, trained by plain SGD
    twice from the same weights: without clipping, and with the global norm clipped at `clip`."""
    inputs, targets = measured_batch(settings)

    def exploding_network() -> SequenceNetwork:
        model = adding_network("rnn", settings)
        weight = model.rnn.weight_hh_l0.value
        weight *= settings.radius / np.max(np.abs(np.linalg.eigvals(weight)))
        return model

    model = exploding_network()
    initial = last_step_flow(model, inputs, targets).by_lag("h")
    unclipped = train(model, SGD(model.parameters(), lr=settings.explode_lr), settings, settings.explode_steps, None)
    model = exploding_network()
    clipped = train(model, SGD(model.parameters(), lr=settings.explode_lr), settings, settings.explode_steps,
                    settings.clip)
    diverged = len(unclipped) + 1 if len(unclipped) < settings.explode_steps else None
    return ExplodingRun(settings.radius, initial, unclipped, clipped, diverged)
