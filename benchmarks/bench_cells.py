"""One training step of every cell option against the standard compiled cell of its family.

Issue 16's table: for each option, one forward and one backward (from a fixed random dL/dy,
weight gradients included, no optimizer) of a one-layer float32 layer with input size H, at
B = 32, T = 64, H = 128 and 256, timed block by block in turn with the standard compiled LSTM
(`_common.interleaved`'s scheme: warm-up first, then blocks in turn). The ratio is the option's
median time over the standard cell's, measured in the same run (the ratio of the minima beside
it: on a shared machine the steadier of the two; NP, which *is* the standard cell, shows the
noise); the goal is <= 1.15x (FGR <= 1.6x,
layer norm <= 1.4x). A bidirectional layer does two directions' work: its ratio is per
direction. B = 1 is compared with the standard step at B = 32 per step, not per token: it says
what one sequence costs, not how well it is compiled. Each row says which path ran (the
compiled kernel or the NumPy loop).

    python benchmarks/bench_cells.py [--hidden 128 256] [--repeats 9] [--block 0.25] [--only peephole,CIFG]
"""

from __future__ import annotations

import argparse
import statistics
from contextlib import nullcontext

import numpy as np
from _common import environment_report, pause, table, time_block

import rnnkit
from rnnkit import kernels

BATCH, STEPS = 32, 64
GOALS = {"FGR": 1.6, "layer norm": 1.4}
GOAL = 1.15
# name: (layer class, options, forward keywords, batch, kernels on); the first row of each family
# is its reference.
LSTM_OPTIONS = {
    "standard LSTM (reference)": {},
    "standard LSTM, NumPy loop": {"kernels": False},
    "peephole (V)": {"variant": "V"},
    "NP": {"variant": "NP"},
    "NIG": {"variant": "NIG"},
    "NFG": {"variant": "NFG"},
    "NOG": {"variant": "NOG"},
    "CIFG": {"variant": "CIFG"},
    "NIAF": {"variant": "NIAF"},
    "NOAF": {"variant": "NOAF"},
    "FGR": {"variant": "FGR"},
    "peephole=True (PyTorch gates)": {"peephole": True},
    "cell_activation=relu": {"cell_activation": "relu"},
    "gate_activation=tanh": {"gate_activation": "tanh"},
    "masked (padded) batch": {"masked": True},
    "recurrent_dropout=0.25": {"recurrent_dropout": 0.25},
    "input_dropout=0.25": {"input_dropout": 0.25},
    "layer norm": {"layer_norm": True},
    "bidirectional (per direction)": {"bidirectional": True},
    "B=1 (per step, vs B=32)": {"batch": 1},
    "B=1, NumPy loop": {"batch": 1, "kernels": False},
}
GRU_OPTIONS = {
    "PyTorch GRU (reference)": {},
    "textbook GRU (reset_after=False)": {"reset_after": False},
}


def runner(cls, hidden: int, options: dict):
    """A training step (forward + backward) as a zero-argument function, and the path it takes."""
    options = dict(options)
    compiled = options.pop("kernels", True)
    masked = options.pop("masked", False)
    batch = options.pop("batch", BATCH)
    layer = cls(hidden, hidden, 1, rng=0, dtype=np.float32, **options)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((STEPS, batch, hidden)).astype(np.float32)
    dy = rng.standard_normal((STEPS, batch, hidden * layer.num_directions)).astype(np.float32)
    mask = None
    if masked:  # lengths from T/2 to T, padding at the end
        lengths = rng.integers(STEPS // 2, STEPS + 1, batch)
        mask = np.arange(STEPS)[:, None] < lengths[None, :]

    def step():
        with nullcontext() if compiled else kernels.use_kernels(False):
            layer.zero_grad()
            _, _, cache = layer.forward(x, mask=mask)
            layer.backward(dy, cache)

    cell = layer._cells[0][0]
    with nullcontext() if compiled else kernels.use_kernels(False):
        fused = cell.fused()
    numpy_loop = fused is None  # the time loop's rule (rnnkit.timeloop)
    return step, ("NumPy loop" if numpy_loop else f"compiled ({fused.__name__.rsplit('.', 1)[-1]})")


def interleaved(runners: dict, repeats: int, min_block_s: float) -> dict[str, list[float]]:
    """Seconds per call of each runner in every repeat: `_common.interleaved`'s blocks in turn
    (order rotating, a warm-up call each, a pause between blocks), every sample kept, so that
    both the median and the minimum can be read (on a shared VM the minimum is the steadier)."""
    names = list(runners)
    sizes = {}
    for name in names:
        first = time_block(runners[name], 1)
        pause()
        sizes[name] = max(1, round(min_block_s / max(first, 1e-6)))
    samples = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            samples[name].append(time_block(runners[name], sizes[name]))
            pause()
    return samples


def family_rows(hidden: int, cls, options: dict[str, dict], repeats: int, block_s: float) -> list[list[str]]:
    built = {name: runner(cls, hidden, opts) for name, opts in options.items()}
    samples = interleaved({name: step for name, (step, _) in built.items()}, repeats, block_s)
    reference_name = next(iter(options))
    reference = {"median": statistics.median(samples[reference_name]), "min": min(samples[reference_name])}
    rows = []
    for name, values in samples.items():
        per = 2 if options[name].get("bidirectional") else 1
        median, best = statistics.median(values), min(values)
        ratio, ratio_min = median / reference["median"] / per, best / reference["min"] / per
        goal = GOALS.get(name, GOAL)
        verdict = "" if name == reference_name or "NumPy loop" in name or "B=1" in name else (
            "met" if ratio <= goal else f"missed (goal {goal:.2f}x)")
        rows.append([hidden, name, built[name][1], f"{median * 1e3:.2f}", f"{ratio:.2f}x", f"{ratio_min:.2f}x",
                     verdict])
    return rows


def _chosen(options: dict[str, dict], wanted: set[str]) -> dict[str, dict]:
    """A family's options named in `wanted` (by full name or first word), its reference first;
    all of them when nothing is wanted."""
    if not wanted:
        return options
    return {name: opts for k, (name, opts) in enumerate(options.items())
            if k == 0 or name in wanted or name.split(" ")[0] in wanted}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 256], help="hidden sizes to time")
    parser.add_argument("--repeats", type=int, default=9, help="timed blocks per option and size")
    parser.add_argument("--block", type=float, default=0.25, help="seconds a timed block lasts (about)")
    parser.add_argument("--only", default="", help="comma-separated option names to time, LSTM or GRU (default: all)")
    args = parser.parse_args(argv)
    print("\n".join(environment_report()))
    print(f"one training step (forward + backward, float32), B={BATCH}, T={STEPS}, one layer, input size = H\n")
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    families = [(rnnkit.LSTM, _chosen(LSTM_OPTIONS, wanted)), (rnnkit.GRU, _chosen(GRU_OPTIONS, wanted))]
    rows = []
    for hidden in args.hidden:
        for cls, options in families:
            if len(options) > 1:
                rows += family_rows(hidden, cls, options, args.repeats, args.block)
    print(table(["H", "option", "path", "ms/step (median)", "x standard", "x (minima)", "goal (median)"], rows))


if __name__ == "__main__":
    main()
