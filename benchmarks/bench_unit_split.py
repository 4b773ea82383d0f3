"""A measured lever, not a feature: the standard LSTM's forward loop with its hidden units split
between two threads, against the loop rnnkit runs (one thread, OpenBLAS's two threads inside
each step's product).

Per step t, the reference loop does

    a = W_hh h_{t-1}                      (4H, B): one GEMM, OpenBLAS on both cores
    i, f, g, o = sigma(a_i + x_i), sigma(a_f + x_f), tanh(a_g + x_g), sigma(a_o + x_o)
    c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)      (one core; the other spins in OpenBLAS)

The split loop gives thread k the units k*H/2 ... (k+1)*H/2: it multiplies only its own rows of
W_hh (its i, f, g and o rows, gathered once into one (2H, H) matrix) by the whole h_{t-1} on a
one-thread GEMM, does its units' elementwise work, writes its half of h_t and waits at a spin
barrier until the other half is written. Both threads' elementwise work then runs at once.

This is a standalone prototype (its own arrays and gate order, no backward): the library's
loops would need W's rows and the gate arrays in a per-thread order. It checks that both loops
give the same h bit for bit and prints each one's median time and the ratio.

    python benchmarks/bench_unit_split.py [--hidden 128 256 512] [--batch 32] [--steps 64]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np
from _common import cpu_model
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from threadpoolctl import threadpool_info, threadpool_limits

from rnnkit.kernels.activations import sigmoid, tanh
from rnnkit.kernels.blas import find_gemm, gemm


@intrinsic
def _load_acquire(typingctx, flags, index):
    """flags[index], an atomic load with acquire order (a plain load may be hoisted out of a spin loop)."""
    sig = types.int64(flags, index)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, signature.args[0], array, [args[1]])
        return builder.load_atomic(pointer, ordering="acquire", align=8)

    return sig, codegen


@intrinsic
def _store_release(typingctx, flags, index, value):
    """flags[index] = value, an atomic store with release order."""
    sig = types.void(flags, index, value)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, signature.args[0], array, [args[1]])
        builder.store_atomic(args[2], pointer, ordering="release", align=8)
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, error_model="numpy")
def _units(product, inputs, c, h_next, first_unit):
    """The elementwise step for len(product) // 4 units from first_unit on; product and inputs
    hold those units' rows in the order i, f, g, o."""
    count = product.shape[0] // 4
    for j in range(count):
        for b in range(product.shape[1]):
            i = sigmoid(product[j, b] + inputs[j, b])
            f = sigmoid(product[count + j, b] + inputs[count + j, b])
            g = tanh(product[2 * count + j, b] + inputs[2 * count + j, b])
            o = sigmoid(product[3 * count + j, b] + inputs[3 * count + j, b])
            cell = f * c[first_unit + j, b] + i * g
            c[first_unit + j, b] = cell
            h_next[first_unit + j, b] = o * tanh(cell)


@njit(nogil=True, error_model="numpy")
def reference_loop(address, w_hh, inputs, h, c, product):
    """rnnkit's form: one GEMM over all units per step, then every unit's elementwise work."""
    for t in range(inputs.shape[0]):
        gemm(address, w_hh, h[t], product, False, False, 0.0)
        _units(product, inputs[t], c, h[t + 1], 0)


@njit(nogil=True, error_model="numpy")
def half_loop(address, w_own, inputs_own, h, c, product, first_unit, flags, me, other):
    """One thread's share of the split loop; flags[me] counts the steps this thread finished."""
    for t in range(inputs_own.shape[0]):
        gemm(address, w_own, h[t], product, False, False, 0.0)
        _units(product, inputs_own[t], c, h[t + 1], first_unit)
        _store_release(flags, me, t + 1)
        while _load_acquire(flags, other) < t + 1:
            pass


def measure(hidden: int, batch: int, steps: int, repeats: int) -> tuple[float, float, float]:
    """(reference ms, split ms, largest |h difference|), medians over `repeats` runs."""
    rng = np.random.default_rng(0)
    w_hh = (rng.standard_normal((4 * hidden, hidden)) / np.sqrt(hidden)).astype(np.float32)
    inputs = rng.standard_normal((steps, 4 * hidden, batch)).astype(np.float32)
    h0 = rng.standard_normal((hidden, batch)).astype(np.float32)
    address, half = find_gemm(np.float32), hidden // 2
    rows = [np.concatenate([np.arange(q * hidden + k * half, q * hidden + (k + 1) * half) for q in range(4)])
            for k in range(2)]
    w_own = [np.ascontiguousarray(w_hh[r]) for r in rows]
    inputs_own = [np.ascontiguousarray(inputs[:, r]) for r in rows]

    def fresh():
        h = np.empty((steps + 1, hidden, batch), np.float32)
        h[0] = h0
        return h, np.zeros((hidden, batch), np.float32)

    def reference():
        h, c = fresh()
        reference_loop(address, w_hh, inputs, h, c, np.empty((4 * hidden, batch), np.float32))
        return h

    def split():
        h, c = fresh()
        flags = np.zeros(16, np.int64)  # two counters a cache line apart
        products = [np.empty((4 * half, batch), np.float32) for _ in range(2)]
        worker = threading.Thread(target=half_loop,
                                  args=(address, w_own[1], inputs_own[1], h, c, products[1], half, flags, 8, 0))
        worker.start()
        half_loop(address, w_own[0], inputs_own[0], h, c, products[0], 0, flags, 0, 8)
        worker.join()
        return h

    def median_ms(run):
        run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    with threadpool_limits(1, user_api="blas"):
        difference = float(np.abs(reference() - split()).max()) if hidden % 2 == 0 else float("nan")
    reference_ms, split_ms = [], []
    for _ in range(3):  # blocks in turn; OpenBLAS's pool goes back to two threads for the reference
        reference_ms.append(median_ms(reference))
        time.sleep(0.2)
        with threadpool_limits(1, user_api="blas"):
            split_ms.append(median_ms(split))
        time.sleep(0.2)
    return statistics.median(reference_ms), statistics.median(split_ms), difference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    if any(h % 2 for h in args.hidden):
        parser.error("--hidden sizes must be even (two halves)")
    print(f"CPU: {cpu_model()}")
    for pool in threadpool_info():
        print(f"  {pool.get('internal_api')} {pool.get('version')} kernel={pool.get('architecture')} "
              f"threads={pool.get('num_threads')}")
    print(f"forward loop only, float32, B={args.batch}, T={args.steps}")
    print(f"{'H':>5}  {'reference ms':>12}  {'split ms':>8}  {'speed-up':>8}  {'max |h diff|':>12}")
    for hidden in args.hidden:
        reference_ms, split_ms, difference = measure(hidden, args.batch, args.steps, args.repeats)
        print(f"{hidden:>5}  {reference_ms:>12.2f}  {split_ms:>8.2f}  {reference_ms / split_ms:>7.2f}x  "
              f"{difference:>12.1e}")


if __name__ == "__main__":
    main()
