"""The study's three tasks, each small enough for CPU trials of seconds to minutes.

    adding   the adding problem (rnnkit.data.synthetic), T = `length` (100); a fixed training set
             and a fixed validation set; score: validation MSE at the last step (1/6 for a
             network that always answers 1). Also reported: the fraction of validation
             sequences answered within 0.04 ("solved" when it reaches 99 %).
    charlm   next-character prediction on a fixed slice of the Shakespeare corpus (the first
             `train_chars` characters for training, the next `validation_chars` for validation),
             one-hot inputs, char-rnn's parallel streams; score: validation nats per character.
    jsb      next-step prediction of Bach chorale piano rolls (chorales.py), one sigmoid
             per pitch; score: validation negative log-likelihood per time step (summed over the
             51 pitches), the measure Greff et al. report for JSB Chorales.

A task is split in two halves: `prepare(options)` loads or generates the data once, in the
process that runs the study (the arrays are then shared with every trial through Ray's object
store), and `Setup` turns that data into a trial's network, batches and loss. Every task scores
"lower is better".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from rnnkit.cells.lstm import VARIANTS as LSTM_VARIANTS
from rnnkit.data.batches import ExampleBatches, Padded, StreamBatches
from rnnkit.data.synthetic import ADDING_TOLERANCE, adding_problem
from rnnkit.losses import bce_with_logits, mse, softmax_cross_entropy
from rnnkit.network import NetworkConfig

__all__ = ["TASKS", "TASK_OPTIONS", "check_task_options", "prepare", "setup", "network_config"]

#: Each task's options and their defaults.
TASK_OPTIONS = {
    "adding": {"length": 100, "train_sequences": 10_000, "validation_sequences": 1_000, "data_seed": 0},
    "charlm": {"train_chars": 100_000, "validation_chars": 10_000, "offset": 0, "seq_len": 50},
    "jsb": {"split_seed": 0},
}
TASKS = tuple(TASK_OPTIONS)
METRICS = {"adding": "validation MSE", "charlm": "validation nats/char", "jsb": "validation NLL/step"}


def check_task_options(task: str, options: dict, where: str) -> None:
    """Every task also takes `steps`, its own budget of updates per trial (default: [budget]'s)."""
    defaults = {**TASK_OPTIONS[task], "steps": None}
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"{where}: [tasks.{task}] has unknown option(s) {', '.join(unknown)}; "
                         f"known: {', '.join(defaults) or 'none'}")
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (value == 0 and name != "offset"
                                                                                  and not name.endswith("seed")):
            raise ValueError(f"{where}: tasks.{task}.{name} must be a positive integer, got {value!r}")


CHARLM_VALIDATION = (32, 100)  # streams x steps of the character model's validation batches


def check_task_sizes(task: str, options: dict, largest_batch: int, where: str) -> None:
    """Data too small for the batches a trial may draw fails here, not in every trial."""
    o = _options(task, options)
    if task == "charlm":
        streams, steps = CHARLM_VALIDATION
        if o["validation_chars"] <= streams * steps:
            raise ValueError(f"{where}: tasks.charlm.validation_chars must exceed {streams * steps:,} "
                             f"({streams} validation streams of {steps} characters)")
        if o["train_chars"] <= largest_batch * o["seq_len"]:
            raise ValueError(f"{where}: tasks.charlm.train_chars must exceed batch_size x seq_len = "
                             f"{largest_batch} x {o['seq_len']}")


def _options(task: str, options: dict) -> dict:
    return {**TASK_OPTIONS[task], **{k: v for k, v in options.items() if k != "steps"}}


# ----------------------------------------------------------------------------------- data
def prepare(task: str, options: dict) -> dict:
    """The task's data as a dict of arrays (and small numbers)."""
    o = _options(task, options)
    if task == "adding":
        train_x, train_y = adding_problem(np.random.default_rng([o["data_seed"], 0]), o["train_sequences"], o["length"])
        val_x, val_y = adding_problem(np.random.default_rng([o["data_seed"], 1]), o["validation_sequences"],
                                      o["length"])
        return {"train_x": train_x.swapaxes(0, 1), "train_y": train_y.swapaxes(0, 1),
                "val_x": val_x.swapaxes(0, 1), "val_y": val_y.swapaxes(0, 1)}
    if task == "charlm":
        from rnnkit.data.corpora import load_corpus

        text = load_corpus("shakespeare")
        piece = text[o["offset"]:o["offset"] + o["train_chars"] + o["validation_chars"]]
        if len(piece) < o["train_chars"] + o["validation_chars"]:
            raise ValueError(f"the Shakespeare corpus has {len(text):,} characters, too few for the slice "
                             f"asked for in [tasks.charlm]")
        alphabet = np.array(sorted(set(piece)))
        ids = np.searchsorted(alphabet, np.array(list(piece))).astype(np.int64)
        return {"train": ids[:o["train_chars"]], "validation": ids[o["train_chars"]:], "vocabulary": len(alphabet),
                "seq_len": o["seq_len"]}
    if task == "jsb":
        from .chorales import chorale_split, load_chorales

        train, validation, _ = chorale_split(load_chorales(), o["split_seed"])
        return {**_padded_rolls(train, "train"), **_padded_rolls(validation, "val")}
    raise ValueError(f"unknown task {task!r}")


def _padded_rolls(rolls: list[np.ndarray], prefix: str) -> dict:
    """Inputs roll[:-1] and targets roll[1:], padded to the longest chorale, with the mask of
    real steps."""
    longest = max(len(r) for r in rolls) - 1
    n, pitches = len(rolls), rolls[0].shape[1]
    x = np.zeros((n, longest, pitches), np.float32)
    y = np.zeros((n, longest, pitches), np.float32)
    mask = np.zeros((n, longest), bool)
    for k, roll in enumerate(rolls):
        steps = len(roll) - 1
        x[k, :steps], y[k, :steps], mask[k, :steps] = roll[:-1], roll[1:], True
    return {f"{prefix}_x": x, f"{prefix}_y": y, f"{prefix}_mask": mask}


# --------------------------------------------------------------------------------- trials
def network_config(variant: str, input_size: int, output_size: int, hidden_size: int) -> NetworkConfig:
    """One recurrent layer of the variant and a dense head at every step."""
    if variant in LSTM_VARIANTS:
        cell = {"cell": "lstm", "variant": variant}
    elif variant == "GRU":
        cell = {"cell": "gru"}
    elif variant == "RNN":
        cell = {"cell": "rnn", "nonlinearity": "tanh"}
    else:
        raise ValueError(f"unknown variant {variant!r}")
    return NetworkConfig(input_size, output_size, hidden_size=hidden_size, **cell)


def per_step_bce(logits, targets, mask=None):
    """Negative log-likelihood per time step of independent Bernoulli pitches: the binary
    cross-entropy summed over pitches, averaged over the counted steps."""
    loss, grad = bce_with_logits(logits, targets, mask, reduction="sum")
    steps = float(np.sum(mask)) if mask is not None else float(np.prod(np.shape(logits)[:2]))
    steps = max(steps, 1.0)
    return loss / steps, grad / steps


@dataclass
class Setup:
    """What a trial of one task trains on: the network's shape, training and validation batches
    (time-major, with the inputs already as float features), the loss, and optional extra
    measurements of the trained model."""

    input_size: int
    output_size: int
    train: object
    validation: object
    loss: Callable
    extra: Callable | None = None  # extra(model) -> dict of numbers


def setup(task: str, data: dict, batch_size: int, noise: float, trial) -> Setup:
    """The task's batches for `trial` (its data order and input noise from the trial's own
    random streams)."""
    order = int(np.random.SeedSequence(trial.seed_for("data_order")).generate_state(1)[0])
    seed = trial.seed_for("input_noise")
    if task == "adding":
        last = np.zeros(data["train_x"].shape[:2], bool)
        last[:, -1] = True
        train = ExampleBatches(data["train_x"], data["train_y"], mask=last, batch_size=batch_size, seed=order)
        validation = ExampleBatches(data["val_x"], data["val_y"], mask=last[:1].repeat(len(data["val_x"]), 0),
                                    batch_size=250)
        return Setup(2, 1, NoisyInputs(train, noise, seed), validation, mse,
                     extra=lambda model: {"solved_fraction": _adding_solved(model, data)})
    if task == "charlm":
        size = int(data["vocabulary"])
        one_hot = np.eye(size, dtype=np.float32)
        train = StreamBatches(data["train"], batch_size, int(data["seq_len"]))
        validation = StreamBatches(data["validation"], *CHARLM_VALIDATION)
        return Setup(size, size, NoisyInputs(train, noise, seed, encode=one_hot.__getitem__),
                     NoisyInputs(validation, 0.0, seed, encode=one_hot.__getitem__), softmax_cross_entropy)
    if task == "jsb":
        pitches = data["train_x"].shape[2]
        train = ExampleBatches(data["train_x"], data["train_y"], mask=data["train_mask"],
                               padding=data["train_mask"], batch_size=batch_size, seed=order)
        validation = ExampleBatches(data["val_x"], data["val_y"], mask=data["val_mask"], padding=data["val_mask"],
                                    batch_size=len(data["val_x"]))
        return Setup(pitches, pitches, NoisyInputs(train, noise, seed), NoisyInputs(validation, 0.0, seed),
                     per_step_bce)
    raise ValueError(f"unknown task {task!r}")


def _adding_solved(model, data) -> float:
    model.eval()
    outputs, _, _ = model.forward(data["val_x"].swapaxes(0, 1))
    errors = np.abs(outputs[-1, :, 0] - data["val_y"][:, -1, 0])
    return float(np.mean(errors < ADDING_TOLERANCE))


class NoisyInputs:
    """A batch source whose training batches get Gaussian input noise of standard deviation
    `noise` (Greff et al.'s "input noise"), drawn from a generator seeded by (seed, epoch,
    position), so a trial is reproducible. `encode` turns token ids into features first (one-hot
    characters). Padded batches are cut to their longest real sequence, so a batch of short
    chorales does not pay for the longest one. Evaluation batches (`in_order`) get no noise."""

    def __init__(self, batches, noise: float, seed, encode: Callable | None = None):
        self.batches, self.noise, self.seed, self.encode = batches, float(noise), tuple(seed), encode
        self.carries_state = batches.carries_state

    def __len__(self) -> int:
        return len(self.batches)

    def batch(self, epoch: int, position: int):
        inputs, targets, mask = self._prepared(*self.batches.batch(epoch, position))
        if self.noise > 0:
            rng = np.random.default_rng(self.seed + (epoch, position))
            features = inputs.inputs if isinstance(inputs, Padded) else inputs
            noisy = features + rng.normal(0.0, self.noise, features.shape).astype(features.dtype)
            inputs = replace(inputs, inputs=noisy) if isinstance(inputs, Padded) else noisy
        return inputs, targets, mask

    def in_order(self):
        for inputs, targets, mask in self.batches.in_order():
            yield self._prepared(inputs, targets, mask)

    def _prepared(self, inputs, targets, mask):
        if self.encode is not None:
            inputs = self.encode(inputs)
        if isinstance(inputs, Padded):
            steps = int(np.flatnonzero(inputs.mask.any(axis=1)).max()) + 1
            inputs, targets = inputs[:steps], targets[:steps]
            mask = None if mask is None else mask[:steps]
        return inputs, targets, mask
