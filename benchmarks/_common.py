"""What both benchmarks share: the environment report, interleaved timing, a table printer.

Both libraries run in one process, block by block, alternating which goes first, with a pause
between blocks: NumPy's OpenBLAS threads and PyTorch's OpenMP threads busy-wait after a call,
and on a 2-core machine the two pools slow each other down when one starts while the other
still spins (shared/PERF.md).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Run from a checkout without installing: put src/ first on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

PAUSE_S = 0.15


def environment_report() -> list[str]:
    """The CPU, Python, NumPy, PyTorch, the BLAS libraries in use (threadpoolctl) and the kernels."""
    import numpy as np
    import torch

    import rnnkit
    from rnnkit import kernels

    lines = [f"CPU: {cpu_model()}",
             f"python {sys.version.split()[0]}, numpy {np.__version__}, torch {torch.__version__}, "
             f"rnnkit {rnnkit.__version__}, {os.cpu_count()} CPUs"]
    lines.append(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
                 f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}")
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            lines.append(f"  {pool['internal_api']:>8} {pool.get('version') or '':<14} "
                         f"kernel={pool.get('architecture', '-')} threads={pool['num_threads']} "
                         f"{Path(pool['filepath']).name}")
    except ImportError:
        lines.append("  (pip install threadpoolctl to see which BLAS kernel runs)")
    lines.append(f"rnnkit kernels: {kernels.describe()}")
    load = os.getloadavg()[0]
    lines.append(f"load average {load:.2f}" + ("  (other processes are busy: run on an idle machine, or as root "
                                                "under `chrt -f 1`, which these numbers need)" if load > 1.5 else ""))
    lines.append(f"torch threads={torch.get_num_threads()} mkldnn available={torch.backends.mkldnn.is_available()} "
                 f"enabled={torch.backends.mkldnn.enabled}")
    return lines


def cpu_model() -> str:
    """The CPU as lscpu names it, its vendor, core count and vector extensions (issue 16: every speed
    figure names its CPU)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        flags = fields.get("Flags", "").split()
        extensions = [name for name in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if name in flags]
        return (f"{fields.get('Model name', '?').strip()} ({fields.get('Vendor ID', '?').strip()}), "
                f"{fields.get('CPU(s)', '?').strip()} CPUs, {' '.join(extensions)}")
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()


def torch_ops(run) -> set[str]:
    """Names of the aten operators `run()` calls (torch.autograd profiler)."""
    import torch

    with torch.autograd.profiler.profile() as prof:
        run()
    return {event.name for event in prof.function_events}


def pause() -> None:
    time.sleep(PAUSE_S)


def time_block(fn, iterations: int) -> float:
    """Seconds per call of fn over one block of `iterations` calls."""
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - start) / iterations


def interleaved(runners: dict[str, callable], repeats: int, min_block_s: float = 0.08) -> dict[str, float]:
    """Median seconds per call of each runner, measured block by block in turn (the order
    rotating every repeat), after one warm-up call each; a block is long enough to last about
    `min_block_s`."""
    names = list(runners)
    sizes = {}
    for name in names:
        first = time_block(runners[name], 1)  # warm-up (also allocates optimizer state)
        pause()
        sizes[name] = max(1, round(min_block_s / max(first, 1e-6)))
    samples = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            samples[name].append(time_block(runners[name], sizes[name]))
            pause()
    return {name: statistics.median(values) for name, values in samples.items()}


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])
