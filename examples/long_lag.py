"""Long time lags (Hochreiter & Schmidhuber 1997): the problems LSTM was invented for.

- adding: T random numbers in [0, 1], two of them marked (one in the first ten steps, one in the
  second half); at the last step, output their sum. Solved when 99 % of 1,000 fresh test
  sequences are answered within 0.04.
- temporal-order (the paper's 6a): E, then noise symbols from {a, b, c, d} with two relevant
  symbols, each X or Y, at steps [10, 20] and [50, 60], then the trigger B; at the last step, say
  which of XX, XY, YX, YY occurred. temporal-order-3 (6b): three relevant symbols at [10, 20],
  [33, 43] and [66, 76], eight classes. Solved when 99 % of 1,000 fresh test sequences are
  classified right. (`rnnkit.data.synthetic`; positions scale with T.)

As in the paper, sequences are T to T + T/10 steps long: each batch draws one length (so no
padding is needed), and the test set is ten batches of 100, each of its own length. Every batch is
fresh (no sequence is seen twice). The test set is checked every `check_every` training sequences
(that check trains nothing), so a reported count is at most check_every - 1 above the first
moment the test would have been passed. One recipe (`RECIPE`: the same network, initialisation,
batch size and optimizer for every task, seed and cell) and, per task, a budget and a check
interval (`RECIPES`); an option given on the command line overrides it.

    python examples/long_lag.py --task adding --cell lstm --T 100
    python examples/long_lag.py --task temporal-order --seeds 5
"""

import argparse

import numpy as np

from rnnkit.argtypes import finite_float, positive_float, positive_int
from rnnkit.data.synthetic import ADDING_TOLERANCE, TEMPORAL_ORDER_SYMBOLS, adding_problem, temporal_order
from rnnkit.init import orthogonal
from rnnkit.losses import mse, softmax_cross_entropy
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam
from rnnkit.train import Trainer

SYMBOLS = len(TEMPORAL_ORDER_SYMBOLS)


def order(relevant):
    def generate(rng, n, steps, nominal):
        return temporal_order(rng, n, steps, relevant, nominal)
    return generate


def adding(rng, n, steps, nominal):
    return adding_problem(rng, n, steps)


def answered_within(out, target):
    return np.abs(out[:, 0] - target[:, 0]) < ADDING_TOLERANCE


def classified(out, target):
    return out.argmax(axis=1) == target


TASKS = {
    # name: (generator, input size, output size, loss, "answered right" at the last step)
    "adding": (adding, 2, 1, mse, answered_within),
    "temporal-order": (order(2), SYMBOLS, 4, softmax_cross_entropy, classified),
    "temporal-order-3": (order(3), SYMBOLS, 8, softmax_cross_entropy, classified),
}

#: The recipe (README, "Classic demonstrations"). init: "pytorch" (PyTorch's draw plus
#: forget_bias) or "chrono" (Tallec & Ollivier 2018, with T_max = T: b_f = log U(1, T - 1),
#: b_i = -b_f; `rnnkit.LSTM`'s chrono_max_lag). orthogonal: W_hh drawn orthogonal per gate block
#: (Saxe et al. 2014; `rnnkit.init.orthogonal`), for every cell.
RECIPE = dict(hidden=32, batch=8, lr=0.01, clip=1.0, init="chrono", orthogonal=True, forget_bias=1.0)
RECIPES = {  # the same recipe; a budget and a test-check interval per task
    "adding": {**RECIPE, "max_sequences": 300_000, "check_every": 1_024},
    "temporal-order": {**RECIPE, "max_sequences": 300_000, "check_every": 256},
    "temporal-order-3": {**RECIPE, "max_sequences": 600_000, "check_every": 256},
}


def last_step_mask(steps, n):
    mask = np.zeros((steps, n), bool)
    mask[-1] = True
    return mask


def draw_length(rng, T):
    return int(rng.integers(T, T + T // 10 + 1))


def solve(task, cell="lstm", T=100, seed=0, report=print, **overrides):
    """Train on fresh batches until solved; returns the number of training sequences used, or
    None if the budget ran out. `overrides` replace entries of the task's recipe."""
    unknown = set(overrides) - set(RECIPES[task])
    if unknown:
        raise ValueError(f"unknown recipe setting(s): {', '.join(sorted(unknown))}")
    recipe = {**RECIPES[task], **{k: v for k, v in overrides.items() if v is not None}}
    generate, inputs_size, outputs_size, loss_fn, correct = TASKS[task]
    train_rng, test_rng, init_rng = (np.random.default_rng([seed, k]) for k in range(3))
    test = []
    for _ in range(10):
        test.append(generate(test_rng, 100, draw_length(test_rng, T), T))
    init = recipe["init"] if cell == "lstm" else None  # the initialisations are the LSTM's
    config = NetworkConfig(inputs_size, outputs_size, cell=cell, hidden_size=recipe["hidden"],
                           forget_bias=recipe["forget_bias"] if init == "pytorch" else 0.0,
                           chrono_max_lag=T if init == "chrono" else 0)
    model = SequenceNetwork(config, rng=seed)
    if recipe["orthogonal"]:
        weight, H = model.rnn.weight_hh_l0.value, recipe["hidden"]
        for block in range(len(weight) // H):
            weight[block * H:(block + 1) * H] = orthogonal(init_rng, (H, H))
    trainer = Trainer(model, Adam(model.parameters(), lr=recipe["lr"]), loss_fn, clip_norm=recipe["clip"])
    batch, check_every = recipe["batch"], max(recipe["check_every"] // recipe["batch"], 1)
    for update in range(1, recipe["max_sequences"] // batch + 1):
        steps = draw_length(train_rng, T)
        inputs, targets = generate(train_rng, batch, steps, T)
        loss, _ = trainer.train_step(inputs, targets, last_step_mask(steps, batch))
        if update % check_every == 0:
            model.eval()
            right = [correct(model.forward(x)[0][-1], y[-1]) for x, y in test]
            model.train()
            solved = float(np.mean(np.concatenate(right)))
            report(f"{update * batch:8,d} sequences  loss {loss:.4f}  test answered right {solved:.1%}")
            if solved >= 0.99:
                return update * batch
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="adding", choices=sorted(TASKS))
    parser.add_argument("--cell", default="lstm", choices=("lstm", "gru", "rnn"))
    parser.add_argument("--T", type=positive_int, default=100,
                        help="nominal sequence length (sequences are T to T + T/10)")
    parser.add_argument("--seed", type=int, default=0, help="the (first) seed")
    parser.add_argument("--seeds", type=positive_int, default=1, help="run seeds seed .. seed + N - 1 and summarise")
    parser.add_argument("--quiet", action="store_true", help="print only each seed's result")
    recipe = parser.add_argument_group("recipe overrides (default: the task's recipe)")
    recipe.add_argument("--hidden", type=positive_int)
    recipe.add_argument("--batch", type=positive_int, help="sequences per update")
    recipe.add_argument("--lr", type=positive_float, help="Adam's learning rate")
    recipe.add_argument("--clip", type=positive_float, help="global gradient-norm clip")
    recipe.add_argument("--forget-bias", type=finite_float, help="added to the LSTM's forget-gate bias (init pytorch)")
    recipe.add_argument("--init", choices=("pytorch", "chrono"), help="LSTM initialisation")
    recipe.add_argument("--orthogonal", action=argparse.BooleanOptionalAction, help="orthogonal W_hh blocks")
    recipe.add_argument("--max-sequences", type=positive_int, help="training budget")
    recipe.add_argument("--check-every", type=positive_int, help="training sequences between test checks")
    args = parser.parse_args(argv)
    overrides = {name: getattr(args, name) for name in RECIPES[args.task]}
    results = []
    for seed in range(args.seed, args.seed + args.seeds):
        used = solve(args.task, args.cell, args.T, seed=seed, report=(lambda line: None) if args.quiet else print,
                     **overrides)
        budget = overrides["max_sequences"] or RECIPES[args.task]["max_sequences"]
        if used is None:
            print(f"seed {seed}: {args.cell} did not solve {args.task} with T={args.T} within {budget:,} sequences")
        else:
            print(f"seed {seed}: {args.cell} solved {args.task} with T={args.T} after {used:,} training sequences")
        results.append(used)
    solved = [used for used in results if used is not None]
    if args.seeds > 1:
        summary = f"mean {np.mean(solved):,.0f}, min {min(solved):,}, max {max(solved):,}" if solved else "none solved"
        print(f"{args.cell} {args.task} T={args.T}: {len(solved)}/{len(results)} seeds solved; {summary}; "
              f"{len(results) - len(solved)} failures")


if __name__ == "__main__":
    main()
