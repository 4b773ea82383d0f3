"""What layer normalisation and variational dropout cost per training step.

The character model's shape (embedding 64, one LSTM layer, batch 32, 64 steps, 65 symbols),
one Adam step per call, every configuration timed block by block in turn (`_common.interleaved`),
medians. The reference is the plain LSTM on the compiled kernels, measured in the same run; the
plain LSTM in NumPy (`use_kernels(False)`) shows how much of the difference is the kernels:
layer norm and recurrent dropout always run the NumPy loop.

    python benchmarks/bench_layer_norm.py [--hidden 128 256] [--repeats 15]
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext

import numpy as np
from _common import environment_report, interleaved, table

from rnnkit import kernels
from rnnkit.losses import softmax_cross_entropy
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam
from rnnkit.train import Trainer

VOCABULARY, EMBEDDING, BATCH, STEPS = 65, 64, 32, 64
CONFIGURATIONS = {  # name: (network options, compiled kernels allowed)
    "plain LSTM, compiled (reference)": ({}, True),
    "plain LSTM, NumPy": ({}, False),
    "layer_norm=True": ({"layer_norm": True}, True),
    "recurrent_dropout=0.25": ({"recurrent_dropout": 0.25}, True),
    "input_dropout=0.25": ({"input_dropout": 0.25}, True),
}


def runner(hidden: int, options: dict, compiled: bool, rng: np.random.Generator):
    config = NetworkConfig(VOCABULARY, VOCABULARY, hidden_size=hidden, input_kind="embedding",
                           embedding_size=EMBEDDING, **options)
    model = SequenceNetwork(config, rng=0)
    trainer = Trainer(model, Adam(model.parameters(), lr=2e-3), softmax_cross_entropy, clip_norm=5.0)
    tokens = rng.integers(0, VOCABULARY, (STEPS + 1, BATCH))

    def step():
        with nullcontext() if compiled else kernels.use_kernels(False):
            trainer.train_step(tokens[:-1], tokens[1:])

    return step


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    print("\n".join(environment_report()))
    rows = []
    for hidden in args.hidden:
        rng = np.random.default_rng(0)
        runners = {name: runner(hidden, options, compiled, rng) for name, (options, compiled) in CONFIGURATIONS.items()}
        medians = interleaved(runners, args.repeats)
        reference = medians["plain LSTM, compiled (reference)"]
        rows += [[hidden, name, f"{seconds * 1e3:.1f}", f"{seconds / reference:.2f}x"]
                 for name, seconds in medians.items()]
    print(table(["hidden", "configuration", "ms/step (median)", "vs compiled plain"], rows))


if __name__ == "__main__":
    main()
