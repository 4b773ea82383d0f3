"""Binary addition, bit by bit (the "anyone can code an LSTM" demonstration).

Two 8-bit numbers are fed one bit pair per step, least significant bit first; at every step the
network outputs one bit of the sum. Nine steps, so the last carry has a step of its own. The
network must learn the carry: a one-bit memory that the recurrent state holds from step to step.
It trains on a random quarter of all 65,536 pairs and is tested on pairs it never saw.

    python examples/binary_addition.py [--cell lstm|gru|rnn] [--hidden 16] [--steps 1500]
"""

import argparse

import numpy as np

from rnnkit.data import ExampleBatches
from rnnkit.losses import bce_with_logits
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam
from rnnkit.train import Trainer

BITS = 8


def to_bits(numbers: np.ndarray, width: int) -> np.ndarray:
    """(N,) integers -> (N, width) bits, least significant first."""
    return (numbers[:, None] >> np.arange(width)) & 1


def make_pairs(pairs: np.ndarray):
    """(N, 2) integer pairs -> inputs (N, 9, 2) and targets (N, 9, 1) as float32 bits."""
    a, b = pairs[:, 0], pairs[:, 1]
    inputs = np.stack([to_bits(a, BITS + 1), to_bits(b, BITS + 1)], axis=2).astype(np.float32)
    targets = to_bits(a + b, BITS + 1)[:, :, None].astype(np.float32)
    return inputs, targets


def accuracy(model, inputs, targets) -> float:
    """The fraction of pairs whose every sum bit is right."""
    model.eval()
    logits, _, _ = model.forward(inputs.swapaxes(0, 1))
    model.train()
    predicted = (logits.swapaxes(0, 1) > 0).astype(np.float32)
    return float(np.mean(np.all(predicted == targets, axis=(1, 2))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", default="lstm", choices=("lstm", "gru", "rnn"))
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    every_pair = np.stack(np.meshgrid(np.arange(256), np.arange(256)), axis=-1).reshape(-1, 2)
    order = rng.permutation(len(every_pair))
    train_inputs, train_targets = make_pairs(every_pair[order[:16384]])
    test_inputs, test_targets = make_pairs(every_pair[order[16384:]])

    config = NetworkConfig(input_size=2, output_size=1, cell=args.cell, hidden_size=args.hidden)
    model = SequenceNetwork(config, rng=args.seed)
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), bce_with_logits, clip_norm=1.0)
    batches = ExampleBatches(train_inputs, train_targets, strategy="minibatch", batch_size=64, seed=args.seed,
                             per_step=True)

    def report(trainer, record):
        if record["step"] % 250 == 0:
            print(f"step {record['step']:5d}  loss {record['loss']:.4f}")

    trainer.callbacks.append(report)
    trainer.fit(batches, steps=args.steps)
    print(f"held-out accuracy: {accuracy(model, test_inputs, test_targets):.2%} of "
          f"{len(test_inputs):,} pairs never seen in training (every bit of the sum right)")
    a, b = 201, 98
    inputs, _ = make_pairs(np.array([[a, b]]))
    logits, _, _ = model.forward(inputs.swapaxes(0, 1))
    bits = (logits[:, 0, 0] > 0).astype(int)
    print(f"{a} + {b} = {int(np.sum(bits << np.arange(BITS + 1)))} (bits, least significant first: "
          f"{''.join(map(str, bits))})")


if __name__ == "__main__":
    main()
