"""Data-parallel training over MPI (mpi4py): N processes ("ranks"), one model each, one global batch.

Each rank trains its contiguous block of the global batch's streams or examples; after every
truncated-BPTT window the ranks add their gradients with one `Allreduce` over a single contiguous
buffer, so every rank takes the same optimizer step:

    buffer = [ n_r * g_r (every parameter, flattened) | n_r * loss_r | n_r ]   (n_r: rank r's counted positions)
    Allreduce(sum)  ->  g = sum_r n_r g_r / sum_r n_r,   loss = sum_r n_r loss_r / sum_r n_r

which is the gradient and loss of the whole batch in one process (every loss of `rnnkit.losses`
is a mean over counted positions), up to the order of the float additions. Clipping, the
divergence check and the optimizer run after it, on identical numbers. Rank 0 broadcasts the
initial weights; validation totals are summed the same way; rank 0 alone writes checkpoints,
gathering the carried stream state of every rank into them (so the checkpoint is that of one
process, and resuming hands each rank its block again).

Launch with `mpiexec -n N python -m mpi4py -m rnnkit ...`: `-m mpi4py` aborts every rank when one
raises, so no rank is left waiting in a collective. mpi4py is imported only here, and only when
a run is launched that way (`from_environment`).
"""

from __future__ import annotations

import os
import sys
import zlib

import numpy as np

from .tbptt import StreamHistory

__all__ = ["Communicator", "from_environment", "launched_by_mpi"]

# Environment variables a launcher sets: MPICH/Hydra and Intel MPI (PMI), Open MPI, PMIx, Slurm's srun.
LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def launched_by_mpi() -> bool:
    """Whether this process is one of several started by an MPI launcher (or under
    `python -m mpi4py`)."""
    if "mpi4py" in sys.modules:
        return True
    return any(int(os.environ.get(name, "1") or 1) > 1 for name in LAUNCHER_SIZE)


def from_environment(threads: int | None = 1) -> Communicator | None:
    """A communicator over MPI's COMM_WORLD when launched by MPI with more than one rank, else
    None (train in one process as always). `threads`: the BLAS threads per rank (one by default:
    N ranks on N cores), unless OMP_NUM_THREADS or OPENBLAS_NUM_THREADS says otherwise."""
    if not launched_by_mpi():
        return None
    from .optional import require

    MPI = require("mpi4py.MPI", "distributed", "training on several MPI processes")
    if MPI.COMM_WORLD.Get_size() < 2:
        return None
    if threads and not any(os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")):
        limit_threads(threads)
    return Communicator(MPI.COMM_WORLD)


def limit_threads(threads: int) -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=threads)  # every BLAS/OpenMP pool loaded in the process, from now on


class Communicator:
    """The collectives a data-parallel trainer needs, over an mpi4py communicator."""

    def __init__(self, comm):
        from mpi4py import MPI

        self.comm, self.MPI = comm, MPI
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self._buffer: np.ndarray | None = None
        self.allreduce_seconds = 0.0  # time spent in the gradient all-reduce (for the benchmarks)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def share(self, count: int) -> slice:
        """This rank's contiguous block of `count` items (np.array_split's blocks, in rank order)."""
        base, extra = divmod(count, self.size)
        begin = self.rank * base + min(self.rank, extra)
        return slice(begin, begin + base + (self.rank < extra))

    # --------------------------------------------------------------------- parameters
    def broadcast_parameters(self, params) -> None:
        """Every rank takes rank 0's parameter values."""
        flat = np.concatenate([p.value.ravel() for p in params]) if params else np.zeros(0)
        self.comm.Bcast(flat, root=0)
        self._unpack(flat, params, "value")

    def allreduce_gradients(self, params, loss: float, positions: int) -> tuple[float, int]:
        """Replace every rank's `.grad` by the batch's mean gradient (module docstring); returns
        the batch's mean loss and its counted positions. A rank with no position sends zeros."""
        import time

        sizes = sum(p.grad.size for p in params)
        dtype = params[0].grad.dtype
        if self._buffer is None or self._buffer.size != sizes + 2 or self._buffer.dtype != dtype:
            self._buffer = np.empty(sizes + 2, dtype=dtype)
        buffer, offset = self._buffer, 0
        for p in params:
            np.multiply(p.grad.ravel(), positions, out=buffer[offset:offset + p.grad.size])
            offset += p.grad.size
        buffer[-2:] = (loss * positions if positions else 0.0, positions)
        started = time.perf_counter()
        self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        self.allreduce_seconds += time.perf_counter() - started
        total = int(round(float(buffer[-1])))
        if total:
            buffer[:-2] /= total
        self._unpack(buffer, params, "grad")
        return (float(buffer[-2]) / total if total else 0.0), total

    @staticmethod
    def _unpack(flat: np.ndarray, params, attribute: str) -> None:
        offset = 0
        for p in params:
            target = getattr(p, attribute)
            target[...] = flat[offset:offset + target.size].reshape(target.shape)
            offset += target.size

    def checksums(self, params) -> list[int]:
        """Every rank's CRC-32 of its parameter bytes, in rank order."""
        crc = 0
        for p in params:
            crc = zlib.crc32(np.ascontiguousarray(p.value).tobytes(), crc)
        return self.comm.allgather(crc)

    # ---------------------------------------------------------------------- small values
    def sum(self, *values: float) -> list[float]:
        total = np.array(values, dtype=np.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, total, op=self.MPI.SUM)
        return total.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (e.g. rank 0's wall clock says stop)."""
        return bool(self.comm.allreduce(int(bool(flag)), op=self.MPI.MAX))

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int) -> None:
        """End every rank now (Ctrl-C: the last checkpoint stays as it was written)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)

    # --------------------------------------------------------------- the carried stream
    def gather_stream(self, carried: StreamHistory | None) -> StreamHistory | None:
        """Rank 0: the whole batch's carried stream, every rank's block joined along the batch
        axis (axis 1 of the state's arrays and of the kept inputs). Other ranks: None."""
        parts = self.comm.gather(carried, root=0)
        if not self.is_root or parts[0] is None:
            return None
        state = parts[0].state
        if state is not None:
            state = (np.concatenate([p.state for p in parts], axis=1) if isinstance(state, np.ndarray)
                     else tuple(np.concatenate(group, axis=1) for group in zip(*(p.state for p in parts))))
        inputs = None if parts[0].inputs is None else np.concatenate([p.inputs for p in parts], axis=1)
        return StreamHistory(state, inputs)

    def local_stream(self, carried: StreamHistory | None) -> StreamHistory | None:
        """This rank's block of a whole batch's carried stream (as read from a checkpoint)."""
        if carried is None or (carried.state is None and carried.inputs is None):
            return carried
        state, inputs = carried.state, carried.inputs
        width = (inputs if inputs is not None else state if isinstance(state, np.ndarray) else state[0]).shape[1]
        block = self.share(width)
        if isinstance(state, np.ndarray):
            state = state[:, block].copy()
        elif state is not None:
            state = tuple(part[:, block].copy() for part in state)
        return StreamHistory(state, None if inputs is None else inputs[:, block].copy())


def root_first(communicator: Communicator | None, work):
    """`work()` on rank 0, then on the others (e.g. preparing a cache they then read)."""
    if communicator is None:
        return work()
    result = work() if communicator.is_root else None
    communicator.barrier()
    return result if communicator.is_root else work()
