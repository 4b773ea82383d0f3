"""Training throughput of rnnkit against PyTorch's CPU RNN/LSTM/GRU, in one process.

One training step = forward over a (T, B, H) sequence, backward from a fixed random output
gradient (dL/dy), and one Adam step, float32, on both sides with the same weights; the input
requires a gradient on both sides (rnnkit always computes it). PyTorch's LSTM takes its oneDNN
path (aten::mkldnn_rnn_layer) here, its GRU and RNN have none.

Columns: tokens/s (B*T per step), GFLOP/s (the step's GEMM work: 6*T*B*G*H*(I+H) per layer, the
forward's 2 and the backward's 4), the ratio rnnkit/PyTorch, and "sgemm": NumPy's own GFLOP/s
on exactly the GEMM shapes of the step, each timed alone, with rnnkit's share of it.

Peak memory of a training step is measured the same way for both libraries, each in a fresh
subprocess: one step of a tiny model first (loads libraries and compiled code), then model,
data and Adam's moment buffers (torch's by one step on a zero gradient, which moves no
weight), then the peak resident set size of the first training step
(VmHWM, reset through /proc/self/clear_refs) minus the resident size before it. A first step,
because a second one would find the first one's freed small blocks still in the C heap and show
less than it uses. For rnnkit, tracemalloc's peak (NumPy reports every array to it) is printed
as well.

    python benchmarks/bench_train.py            # the full grid, a few minutes
    python benchmarks/bench_train.py --quick    # a smaller grid
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_train.py
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import statistics
import subprocess
import sys
import time

import _common  # noqa: F401  (sets up the path)
import numpy as np

CELLS = {"lstm": 4, "gru": 3, "rnn": 1}  # gate blocks G


def build(cell: str, batch: int, steps: int, hidden: int, layers: int, lib: str):
    """A training step of `lib` ("rnnkit" or "torch") as a zero-argument function."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    dy = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    import rnnkit
    from rnnkit.optim import Adam

    ours = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[cell](hidden, hidden, layers, rng=0)
    if lib == "rnnkit":
        optimizer = Adam(ours.parameters(), lr=1e-4)

        def step():
            ours.zero_grad()
            _, _, cache = ours.forward(x)
            ours.backward(dy, cache)
            optimizer.step()
        return step

    import torch

    theirs = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](hidden, hidden, layers)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    optimizer = torch.optim.Adam(theirs.parameters(), lr=1e-4)
    x_t = torch.from_numpy(x).requires_grad_(True)
    dy_t = torch.from_numpy(dy)

    def step():
        optimizer.zero_grad(set_to_none=True)
        x_t.grad = None
        y, _ = theirs(x_t)
        y.backward(dy_t)
        optimizer.step()
    step.optimizer = optimizer
    return step


def gemm_flops(cell: str, batch: int, steps: int, hidden: int, layers: int) -> float:
    rows = CELLS[cell] * hidden
    return 6.0 * steps * batch * rows * (hidden + hidden) * layers


def sgemm_reference(cell: str, batch: int, steps: int, hidden: int, layers: int) -> float:
    """Seconds NumPy's matmul takes for the step's GEMMs alone (contiguous operands, output
    buffers preallocated): per layer the input projection, T forward and T backward step GEMMs
    (each in the faster of the batch-major and the feature-major layout), dW_ih, dW_hh, dx."""
    rng = np.random.default_rng(1)
    rows, n = CELLS[cell] * hidden, steps * batch
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    x, a, w_ih, w_hh, w_hh_t = f32(n, hidden), f32(n, rows), f32(rows, hidden), f32(rows, hidden), f32(hidden, rows)
    a_t = np.ascontiguousarray(a.T)
    h, d, h_fm, d_fm = f32(batch, hidden), f32(batch, rows), f32(hidden, batch), f32(rows, batch)
    out_a, out_x = np.empty((n, rows), np.float32), np.empty((n, hidden), np.float32)
    out_w = np.empty((rows, hidden), np.float32)
    out_r, out_h = np.empty((batch, rows), np.float32), np.empty((batch, hidden), np.float32)
    out_r_fm, out_h_fm = np.empty((rows, batch), np.float32), np.empty((hidden, batch), np.float32)

    def best(run):
        run()
        return min(_common.time_block(run, 1) for _ in range(3))

    def loop(product):
        return lambda: [product() for _ in range(steps)]
    step_forward = min(best(loop(lambda: np.matmul(h, w_hh_t, out=out_r))),
                       best(loop(lambda: np.matmul(w_hh, h_fm, out=out_r_fm))))
    step_backward = min(best(loop(lambda: np.matmul(d, w_hh, out=out_h))),
                        best(loop(lambda: np.matmul(w_hh_t, d_fm, out=out_h_fm))))
    sequence = best(lambda: (np.matmul(x, w_ih.T, out=out_a), np.matmul(a_t, x, out=out_w),
                             np.matmul(a_t, x, out=out_w), np.matmul(a, w_ih, out=out_x)))
    return layers * (step_forward + step_backward + sequence)


def memory_child(args) -> None:
    """Run in a subprocess: the peak memory of the first training step, over what the model,
    its data and its optimizer state already hold."""
    import tracemalloc
    build(args.cell, 2, 3, 8, args.layers, args.lib)()  # load libraries, compile: not per-step memory
    step = build(args.cell, args.batch, args.steps, args.hidden, args.layers, args.lib)
    if args.lib == "torch":  # torch's Adam creates its state on the first step: create it now
        import torch
        for p in step.optimizer.param_groups[0]["params"]:
            p.grad = torch.zeros_like(p)
        step.optimizer.step()  # a zero gradient leaves the weights as they are
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key)) * 1024
    before = status("VmRSS:")
    traced = None
    if args.lib == "rnnkit":
        tracemalloc.start()
        step()
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        step()
    print(json.dumps({"rss_peak": status("VmHWM:") - before, "traced_peak": traced}))


def measure_memory(cell, batch, steps, hidden, layers) -> dict[str, dict]:
    result = {}
    for lib in ("rnnkit", "torch"):
        command = [sys.executable, __file__, "--memory-child", lib, "--cell", cell, "--batch", str(batch),
                   "--steps", str(steps), "--hidden", str(hidden), "--layers", str(layers)]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        result[lib] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller grid (B=32, T=64, H in 128, 512)")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks per library and shape")
    parser.add_argument("--cells", default="lstm,gru,rnn", help="comma-separated: lstm, gru, rnn")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--memory-child", choices=["rnnkit", "torch"], dest="lib", help=argparse.SUPPRESS)
    for name in ("cell", "batch", "steps", "hidden", "layers"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS, type=str if name == "cell" else int)
    args = parser.parse_args()
    if args.lib:
        memory_child(args)
        return

    cells = args.cells.split(",")
    batches, lengths, hiddens = ([32], [64], [128, 512]) if args.quick else ([32, 64], [64, 128], [128, 256, 512])
    print("\n".join(_common.environment_report()))
    for cell in cells:
        probe = build(cell, 2, 3, 8, 1, "torch")
        onednn = "aten::mkldnn_rnn_layer" in _common.torch_ops(probe)
        print(f"torch {cell}: oneDNN path (aten::mkldnn_rnn_layer) {'taken' if onednn else 'not taken'}")
    print()

    start = time.perf_counter()
    headers = ["cell", "L", "B", "T", "H", "rnnkit tok/s", "torch tok/s", "rnnkit GF/s", "torch GF/s",
               "ratio", "sgemm GF/s", "of sgemm"]
    rows, ratios, shares = [], {c: [] for c in cells}, []
    for cell, layers, batch, steps, hidden in itertools.product(cells, (1, 2), batches, lengths, hiddens):
        runners = {lib: build(cell, batch, steps, hidden, layers, lib) for lib in ("rnnkit", "torch")}
        seconds = _common.interleaved(runners, args.repeats)
        del runners
        flops = gemm_flops(cell, batch, steps, hidden, layers)
        reference = sgemm_reference(cell, batch, steps, hidden, layers)
        _common.pause()
        ratio = seconds["torch"] / seconds["rnnkit"]
        share = reference / seconds["rnnkit"]
        ratios[cell].append(ratio)
        if hidden >= 256:
            shares.append(share)
        tokens = batch * steps
        rows.append([cell, layers, batch, steps, hidden, f"{tokens / seconds['rnnkit']:,.0f}",
                     f"{tokens / seconds['torch']:,.0f}", f"{flops / seconds['rnnkit'] / 1e9:.0f}",
                     f"{flops / seconds['torch'] / 1e9:.0f}", f"{ratio:.2f}", f"{flops / reference / 1e9:.0f}",
                     f"{100 * share:.0f}%"])
        print(_common.table(headers, rows[-1:]).splitlines()[-1] if len(rows) > 1 else _common.table(headers, rows),
              flush=True)
    print()
    print(_common.table(headers, rows))
    print()
    for cell in cells:
        values = ratios[cell]
        print(f"{cell}: median ratio rnnkit/torch {statistics.median(values):.2f} "
              f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} shapes)")
    if shares:
        print(f"rnnkit's GFLOP/s as a share of NumPy sgemm's on the same GEMMs, H >= 256: median "
              f"{100 * statistics.median(shares):.0f}%, min {100 * min(shares):.0f}%")
    print(f"timing took {time.perf_counter() - start:.0f} s")

    if not args.no_memory:
        print("\npeak memory of one training step (RSS high-water mark minus RSS before the step, "
              "fresh process each; tracemalloc peak for rnnkit):")
        memory_shape = (32, 64, 512) if args.quick else (64, 128, 512)
        mem_rows = []
        for cell in cells:
            batch, steps, hidden = memory_shape
            result = measure_memory(cell, batch, steps, hidden, 2)
            ours, theirs = result["rnnkit"], result["torch"]
            mem_rows.append([cell, 2, batch, steps, hidden, f"{ours['rss_peak'] / 2**20:.1f}",
                             f"{ours['traced_peak'] / 2**20:.1f}", f"{theirs['rss_peak'] / 2**20:.1f}",
                             f"{ours['rss_peak'] / max(theirs['rss_peak'], 1):.2f}"])
        print(_common.table(["cell", "L", "B", "T", "H", "rnnkit RSS MiB", "rnnkit traced MiB",
                             "torch RSS MiB", "rnnkit/torch"], mem_rows))


if __name__ == "__main__":
    main()
