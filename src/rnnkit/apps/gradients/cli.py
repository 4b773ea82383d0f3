"""`rnnkit gradients`: argparse, printing and exit codes around `experiment` and `figure`."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from rnnkit.argtypes import at_least_two, finite_float, non_negative_int, positive_float, positive_int

from .experiment import QUICK, Settings, measure_cells, measure_exploding
from .figure import draw

LAGS = (1, 10, 50, 100)
CELLS = ("rnn", "lstm", "gru")
D = Settings()


def cell_list(text: str) -> tuple[str, ...]:
    cells = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    unknown = [name for name in cells if name not in CELLS]
    if not cells or unknown:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(CELLS)}, got {text!r}")
    return tuple(dict.fromkeys(cells))


def sized(what: str, key: str) -> str:
    return f"{what} (default: {getattr(D, key)}; --quick: {QUICK[key]})"


def add_parser(tasks) -> None:
    p = tasks.add_parser(
        "gradients", help="the vanishing/exploding-gradient figure, measured with our own BPTT",
        description="Draw ||dL_T/dh_t|| against the lag T - t (log scale) for each cell, at initialisation and "
                    "after a short training on the adding problem, and an Elman RNN with spectral radius > 1 "
                    "trained with and without gradient clipping. Writes gradients.png and prints the norms "
                    "at lags 1, 10, 50 and 100.")
    p.add_argument("--cells", type=cell_list, default=D.cells,
                   help=f"comma-separated cells to draw (default: {','.join(D.cells)})")
    p.add_argument("--T", dest="steps", type=at_least_two, default=D.steps,
                   help=f"sequence length, the largest lag (default: {D.steps})")
    p.add_argument("--hidden", type=positive_int, help=f"hidden units (default: {D.hidden})")
    p.add_argument("--batch", type=positive_int, help=sized("sequences per update and in the measured batch", "batch"))
    p.add_argument("--train-steps", type=non_negative_int,
                   help=sized("Adam updates on the adding problem", "train_steps"))
    p.add_argument("--lr", type=positive_float, default=D.lr, help=f"Adam's learning rate (default: {D.lr})")
    p.add_argument("--forget-bias", type=finite_float, default=D.forget_bias,
                   help=f"the LSTM's forget-gate bias at initialisation; with a non-zero one PyTorch's b_f = 0 is "
                        f"drawn too (default: {D.forget_bias:g}: sigmoid(3) = 0.95 keeps c alive over 100 steps)")
    p.add_argument("--radius", type=positive_float, default=D.radius,
                   help=f"spectral radius of the exploding RNN's W_hh (default: {D.radius:g})")
    p.add_argument("--explode-steps", type=positive_int,
                   help=sized("SGD updates of the exploding RNN", "explode_steps"))
    p.add_argument("--explode-lr", type=positive_float, default=D.explode_lr,
                   help=f"its SGD learning rate (default: {D.explode_lr:g})")
    p.add_argument("--clip", type=positive_float, default=D.clip,
                   help=f"global gradient-norm clip of the clipped runs (default: {D.clip:g})")
    p.add_argument("--seed", type=non_negative_int, default=D.seed,
                   help=f"weights from seed, training data from seed + 1, the measured batch from seed + 2 "
                        f"(default: {D.seed})")
    p.add_argument("--quick", action="store_true", help="a small budget that runs in seconds: " +
                   ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()))
    p.add_argument("--out", default="runs/gradients", help="output folder (default: runs/gradients)")
    p.set_defaults(run=run)


def settings_from(args) -> Settings:
    sized = {**(QUICK if args.quick else {}),
             **{k: getattr(args, k) for k in ("hidden", "batch", "train_steps", "explode_steps")
                if getattr(args, k) is not None}}
    return replace(D, cells=args.cells, steps=args.steps, lr=args.lr, forget_bias=args.forget_bias,
                   radius=args.radius, explode_lr=args.explode_lr, clip=args.clip, seed=args.seed, **sized)


def run(args) -> int:
    settings = settings_from(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs = measure_cells(settings, report=print)
    print(f"training an Elman RNN with spectral radius {settings.radius:g} with and without clipping")
    exploding = measure_exploding(settings)
    lags = [k for k in LAGS if k <= settings.steps]
    print(f"\n||dL_T/d state_(T-k)|| at lag k (T = {settings.steps}, hidden {settings.hidden}, batch "
          f"{settings.batch}, seed {settings.seed}; after training: {settings.train_steps} Adam updates)")
    print(f"{'cell':<26}{'state':<7}{'when':<9}" + "".join(f"{'k = ' + str(k):>11}" for k in lags))
    for cell_run in runs:
        for when, norms in (("init", cell_run.initial), ("trained", cell_run.trained)):
            for name, values in (norms or {}).items():
                print(f"{cell_run.label:<26}{name:<7}{when:<9}" + "".join(f"{values[k]:>11.2e}" for k in lags))
        if cell_run.losses:
            last = cell_run.losses[-10:]
            print(f"{'':<26}loss {cell_run.losses[0]:.3f} -> {sum(last) / len(last):.3f} (mean of the last "
                  f"{len(last)}; guessing 1 scores 0.167)")
    print(f"{'rnn, radius ' + format(settings.radius, 'g'):<26}{'h':<7}{'init':<9}"
          + "".join(f"{exploding.initial[k]:>11.2e}" for k in lags))
    updates = settings.explode_steps
    print(f"without clipping its loss {outcome(exploding.losses_unclipped, updates)}; clipped at {settings.clip:g} "
          f"it {outcome(exploding.losses_clipped, updates)}")
    figure = out / "gradients.png"
    draw(figure, runs, exploding, settings)
    print(f"wrote {figure} ({time.perf_counter() - started:.0f} s)")
    return 0


def outcome(losses: list[float], updates: int) -> str:
    """What became of a training run's loss, in words (a run stops at its first non-finite loss)."""
    if not losses:
        return "was not finite from the first update on (the gradient overflowed)"
    if len(losses) < updates:
        return f"went from {losses[0]:.3g} to non-finite at update {len(losses) + 1}"
    return f"went from {losses[0]:.3g} to {losses[-1]:.3g}"
