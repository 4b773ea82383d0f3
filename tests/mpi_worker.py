"""Run by tests/test_distributed.py, in one process or as every rank of `mpiexec -n N python -m
mpi4py tests/mpi_worker.py OUT MODE`: 20 steps of a 2-layer LSTM language model with the
Trainer (BPTT(8, 12) over char-rnn streams, so a window reaches into the previous batch, Adam,
clipping, a validation every 10 steps). MODE "resume" stops at step 10 with a checkpoint and
continues from it in a new trainer; a MODE that ends in "+dropout" adds dropout between the
layers and variational input and recurrent dropout (Gal & Ghahramani). Rank 0 writes
OUT/weights.npz and OUT/ranks.json (every rank's weight checksum and the size of its
shared-memory communicator, i.e. of its node)."""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import numpy as np

from rnnkit.data.batches import StreamBatches
from rnnkit.distributed import from_environment
from rnnkit.losses import softmax_cross_entropy
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam
from rnnkit.train import Trainer


def trainer_for(communicator, dropout: bool = False):
    masks = {"dropout": 0.3, "input_dropout": 0.2, "recurrent_dropout": 0.2} if dropout else {}
    config = NetworkConfig(input_size=20, output_size=20, cell="lstm", hidden_size=32, num_layers=2,
                           input_kind="embedding", embedding_size=8, **masks)
    model = SequenceNetwork(config, rng=0)
    return Trainer(model, Adam(model.parameters(), lr=0.01), softmax_cross_entropy, k1=8, k2=12, clip_norm=0.5,
                   communicator=communicator)


def main(out: Path, mode: str) -> None:
    communicator = from_environment()
    ids = np.random.default_rng(0).integers(0, 20, size=6000)
    train, validation = StreamBatches(ids[:5000], 8, 16), StreamBatches(ids[5000:], 4, 16)
    if communicator is not None:
        train = train.shard(communicator.rank, communicator.size)
        validation = validation.shard(communicator.rank, communicator.size)
    mode, _, dropout = mode.partition("+")
    trainer = trainer_for(communicator, dropout == "dropout")
    options = {"validation": validation, "eval_every": 10, "checkpoint_dir": out, "save_every": 10}
    if mode == "resume":
        trainer.fit(train, steps=10, **options)
        trainer = trainer_for(communicator, dropout == "dropout")
        trainer.restore(out / "last.safetensors")
    trainer.fit(train, steps=20, **options)
    weights = {name: p.value for name, p in trainer.model.named_parameters()}
    if communicator is None:
        checksums = [zlib.crc32(b"".join(np.ascontiguousarray(w).tobytes() for w in weights.values()))]
        nodes = [1]
    else:
        from mpi4py import MPI

        checksums = communicator.checksums(trainer.params)
        nodes = communicator.comm.allgather(communicator.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size())
    if communicator is None or communicator.is_root:
        np.savez(out / "weights.npz", **weights)
        history = [{k: r[k] for k in ("loss", "val_loss") if k in r} for r in trainer.state.history]
        (out / "ranks.json").write_text(json.dumps({"checksums": checksums, "shared_sizes": nodes,
                                                    "history": history}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
