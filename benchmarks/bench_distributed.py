"""Data-parallel training of the main job's model (`rnnkit lm train`'s defaults: a 2 x 256 LSTM on
Shakespeare's characters, 883k parameters, global batch 32 x 64): tokens/s, and the time of the
gradient all-reduce per step.

    python benchmarks/bench_distributed.py                                   # 1 process (BLAS threads as set)
    mpiexec -n 2 python -m mpi4py benchmarks/bench_distributed.py            # 2 ranks, 1 thread each

Rank 0 prints one line: steps 1-5 are warm-up (Numba's compile, caches); the next `--steps` are
timed. The all-reduce line also times the bare `Allreduce` of a 3.5 MB buffer (the gradient's
size) in a loop, apart from training: the communication cost alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    import numpy as np

    from rnnkit.apps.lm import training
    from rnnkit.data.batches import StreamBatches
    from rnnkit.data.corpora import load_corpus
    from rnnkit.data.tokens import prepare_tokens
    from rnnkit.distributed import from_environment, root_first

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    communicator = from_environment()
    settings = dict(training.DEFAULTS)
    prepared = root_first(communicator, lambda: prepare_tokens("shakespeare", "chars", text=load_corpus("shakespeare"),
                                                               progress=False))
    batches = StreamBatches(prepared.ids, settings["batch"], settings["seq_len"])
    if communicator is not None:
        batches = batches.shard(communicator.rank, communicator.size)
    trainer, _ = training.build_trainer(settings, prepared.vocabulary, communicator)
    trainer.fit(batches, steps=5)
    reduced = communicator.allreduce_seconds if communicator else 0.0
    started = time.perf_counter()
    trainer.fit(batches, steps=5 + args.steps)
    seconds = time.perf_counter() - started
    ranks = 1 if communicator is None else communicator.size
    tokens = settings["batch"] * settings["seq_len"] * args.steps
    line = (f"{ranks} process(es): {tokens / seconds:,.0f} tokens/s ({seconds / args.steps * 1000:.0f} ms/step, "
            f"{trainer.model.num_parameters():,} parameters)")
    if communicator is not None:
        per_step = (communicator.allreduce_seconds - reduced) / args.steps
        buffer = np.zeros(trainer.model.num_parameters() + 2, dtype=np.float32)
        times = []
        for _ in range(50):
            communicator.barrier()
            begin = time.perf_counter()
            communicator.comm.Allreduce(communicator.MPI.IN_PLACE, buffer, op=communicator.MPI.SUM)
            times.append(time.perf_counter() - begin)
        line += (f"; all-reduce inside training {per_step * 1000:.2f} ms/step (waiting for the slower rank included), "
                 f"bare Allreduce of {buffer.nbytes / 1e6:.1f} MB median {statistics.median(times) * 1000:.2f} ms")
    if communicator is None or communicator.is_root:
        print(line, flush=True)


if __name__ == "__main__":
    main()
