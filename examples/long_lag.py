"""Long time lags (Hochreiter & Schmidhuber 1997): the problems LSTM was invented for.

- adding: T random numbers in [0, 1], two of them marked (one in the first ten steps, one in the
  first half); at the last step, output their sum. Solved when 99 % of 1,000 fresh test
  sequences are answered within 0.04.
- temporal-order: T random symbols from {a, b, c, d} with two relevant symbols, each X or Y,
  placed at random in [T/10, T/5] and [T/2, 3T/5]; at the last step, say which of XX, XY, YX, YY
  occurred. Solved when 99 % of 1,000 fresh test sequences are classified right.

Every batch is fresh (no sequence is seen twice). The script prints how many training sequences
it took to solve the task, or that it did not within the budget.

    python examples/long_lag.py --task adding --cell lstm --T 100
"""

import argparse

import numpy as np

from rnnkit.data.synthetic import ADDING_TOLERANCE, adding_problem
from rnnkit.losses import mse, softmax_cross_entropy
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam
from rnnkit.train import Trainer

SYMBOLS = "abcdXY"  # noise a-d, relevant X and Y; one-hot inputs


def temporal_order(rng, n, steps):
    """Inputs (steps, n, 6) one-hot symbols; target (steps, n) class ids, counted at the end."""
    symbols = rng.integers(0, 4, (n, steps))
    first = rng.integers(steps // 10, max(steps // 5, steps // 10 + 1) + 1, n)
    second = rng.integers(steps // 2, max(3 * steps // 5, steps // 2 + 1) + 1, n)
    which = rng.integers(0, 2, (n, 2))  # 0: X, 1: Y
    symbols[np.arange(n), first] = 4 + which[:, 0]
    symbols[np.arange(n), second] = 4 + which[:, 1]
    inputs = np.eye(len(SYMBOLS), dtype=np.float32)[symbols].swapaxes(0, 1)
    targets = np.zeros((steps, n), np.int64)
    targets[-1] = 2 * which[:, 0] + which[:, 1]
    return inputs, targets


TASKS = {
    # name: (generator, input size, output size, loss, "answered right" at the last step)
    "adding": (adding_problem, 2, 1, mse,
               lambda out, target: np.abs(out[:, 0] - target[:, 0]) < ADDING_TOLERANCE),
    "temporal-order": (temporal_order, len(SYMBOLS), 4, softmax_cross_entropy,
                       lambda out, target: out.argmax(axis=1) == target),
}


def last_step_mask(steps, n):
    mask = np.zeros((steps, n), bool)
    mask[-1] = True
    return mask


def solve(task, cell, steps, hidden=32, batch=64, max_sequences=300_000, lr=0.01, seed=0, check_every=50,
          forget_bias=1.0, report=print):
    """Train on fresh batches until solved; returns the number of training sequences used, or
    None if the budget ran out."""
    generate, inputs_size, outputs_size, loss_fn, correct = TASKS[task]
    rng = np.random.default_rng(seed)
    test_inputs, test_targets = generate(np.random.default_rng(seed + 1), 1000, steps)
    # The LSTM starts with its forget gate open (Gers et al. 2000): the cell remembers by default
    # and learns what to forget, instead of having to learn to remember at all.
    config = NetworkConfig(inputs_size, outputs_size, cell=cell, hidden_size=hidden,
                           forget_bias=forget_bias if cell == "lstm" else 0.0)
    model = SequenceNetwork(config, rng=seed)
    trainer = Trainer(model, Adam(model.parameters(), lr=lr), loss_fn, clip_norm=1.0)
    mask = last_step_mask(steps, batch)
    for update in range(1, max_sequences // batch + 1):
        inputs, targets = generate(rng, batch, steps)
        loss, _ = trainer.train_step(inputs, targets, mask)
        if update % check_every == 0:
            model.eval()
            outputs = model.forward(test_inputs)[0][-1]
            model.train()
            solved = float(np.mean(correct(outputs, test_targets[-1])))
            report(f"{update * batch:8,d} sequences  loss {loss:.4f}  test answered right {solved:.1%}")
            if solved >= 0.99:
                return update * batch
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="adding", choices=sorted(TASKS))
    parser.add_argument("--cell", default="lstm", choices=("lstm", "gru", "rnn"))
    parser.add_argument("--T", type=int, default=100, help="sequence length")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--max-sequences", type=int, default=300_000, help="training budget")
    parser.add_argument("--forget-bias", type=float, default=1.0, help="added to the LSTM's forget-gate bias")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    used = solve(args.task, args.cell, args.T, hidden=args.hidden, max_sequences=args.max_sequences, seed=args.seed,
                 forget_bias=args.forget_bias)
    if used is None:
        print(f"{args.cell} did not solve {args.task} with T={args.T} within {args.max_sequences:,} sequences")
    else:
        print(f"{args.cell} solved {args.task} with T={args.T} after {used:,} training sequences")


if __name__ == "__main__":
    main()
