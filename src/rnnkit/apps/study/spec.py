"""What a study is: tasks x variants x trials, a random-search space and a budget per trial, read
from a TOML file.

    name = "odyssey"
    seed = 0
    trials = 8                          # random-search trials per variant and task
    variants = ["V", "NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG", "FGR", "GRU", "RNN"]
    optimizer = "sgd"                   # "sgd" (Nesterov momentum, as Greff et al.) or "adam"

    [budget]
    steps = 300                         # updates per trial
    max_seconds = 120                   # optional: a trial also stops after this much wall time

    [space]                             # one entry per hyperparameter: a distribution or a value
    learning_rate = { log_uniform = [1e-4, 1e-1] }
    hidden_size = { log_uniform_int = [20, 200] }
    momentum = { one_minus_log_uniform = [0.01, 1.0] }
    input_noise = { uniform = [0.0, 1.0] }
    batch_size = 32

    [tasks.adding]                      # a task runs with its own options (see rnnkit.apps.study.tasks)
    length = 100
    steps = 1500                        # any task may have its own budget
    [tasks.charlm]
    [tasks.jsb]

Trials are paired: trial k of a task has the same seed, (seed, task, k), for every variant, so
variants are compared on the same hyperparameters, data order and input noise, and a trial's
settings never depend on which other trials ran. Each random choice of a trial draws from its
own stream of that seed (`Trial.seed_for`), so no two of them are correlated.
"""

from __future__ import annotations

import math
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnkit.cells.lstm import VARIANTS as LSTM_VARIANTS
from rnnkit.files import existing_file
from rnnkit.init import as_generator

__all__ = ["StudySpec", "Trial", "load_study", "VARIANTS", "HYPERPARAMETERS", "DISTRIBUTIONS"]

#: Greff et al.'s vanilla LSTM and its eight variants, then two reference cells.
VARIANTS = LSTM_VARIANTS + ("GRU", "RNN")
OPTIMIZERS = ("sgd", "adam")
#: The hyperparameters a trial understands; learning_rate and hidden_size have no default.
HYPERPARAMETERS = {
    "learning_rate": None,
    "hidden_size": None,
    "momentum": 0.9,       # SGD: Nesterov momentum; Adam: beta1
    "input_noise": 0.0,    # standard deviation of Gaussian noise added to the inputs in training
    "batch_size": 32,
    "clip_norm": 0.0,      # 0: no clipping
}
INTEGER_HYPERPARAMETERS = ("hidden_size", "batch_size")
#: A trial's random streams, each seeded by (seed, task, k, position in this tuple).
STREAMS = ("hyperparameters", "weights", "data_order", "input_noise")


def _sample_log_uniform(rng, low, high):
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


#: name -> (needs positive bounds, draw(rng, low, high))
DISTRIBUTIONS = {
    "uniform": (False, lambda rng, low, high: float(rng.uniform(low, high))),
    "log_uniform": (True, _sample_log_uniform),
    "log_uniform_int": (True, lambda rng, low, high: int(round(_sample_log_uniform(rng, low, high)))),
    # Greff et al.'s momentum: 1 - x with x log-uniform, so values crowd towards 1.
    "one_minus_log_uniform": (True, lambda rng, low, high: 1.0 - _sample_log_uniform(rng, low, high)),
}


@dataclass(frozen=True)
class Dimension:
    name: str
    distribution: str | None  # None: a fixed value
    low: float = 0.0
    high: float = 0.0
    value: float | int | None = None

    def draw(self, rng: np.random.Generator | int):
        """One value: the fixed one, or a draw from the distribution with `rng` (a Generator or a seed)."""
        if self.distribution is None:
            return self.value
        value = DISTRIBUTIONS[self.distribution][1](as_generator(rng), self.low, self.high)
        return int(value) if self.name in INTEGER_HYPERPARAMETERS else value


@dataclass(frozen=True)
class Trial:
    """One run: a variant on a task with the hyperparameters of random-search trial `index`."""

    task: str
    variant: str
    index: int
    hyperparameters: dict = field(hash=False, compare=False)
    seed: tuple[int, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.task}/{self.variant}/{self.index}"

    def seed_for(self, purpose: str) -> tuple[int, ...]:
        """The seed of one of the trial's independent random streams."""
        return self.seed + (STREAMS.index(purpose),)


@dataclass(frozen=True)
class StudySpec:
    name: str
    seed: int
    trials: int
    variants: tuple[str, ...]
    optimizer: str
    steps: int
    max_seconds: float | None
    space: tuple[Dimension, ...]
    tasks: dict  # task name -> its options (a dict)
    source: dict = field(compare=False, repr=False)  # the TOML as read, stored with the results

    def steps_for(self, task: str) -> int:
        """A task's budget of updates per trial: its own `steps` option, else [budget]'s."""
        return int(self.tasks[task].get("steps", self.steps))

    def trial_list(self) -> list[Trial]:
        """Every trial of the study, task by task, trial index by index, variant by variant (so a
        partly finished study has results for every variant)."""
        trials = []
        for task in self.tasks:
            for index in range(self.trials):
                seed = (self.seed, zlib.crc32(task.encode()), index)
                rng = np.random.default_rng(seed + (STREAMS.index("hyperparameters"),))
                hyperparameters = {d.name: d.draw(rng) for d in self.space}
                for variant in self.variants:
                    trials.append(Trial(task, variant, index, hyperparameters, seed))
        return trials


def load_study(path: str | Path) -> StudySpec:
    """Read and check a study file; every mistake is a ValueError naming the key."""
    path = existing_file(path, "study file")
    try:
        source = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a valid TOML file ({error}); see the README's study section") from None
    return study_from_dict(source, where=str(path))


def study_from_dict(source: dict, where: str = "study") -> StudySpec:
    from .tasks import TASKS, check_task_options, check_task_sizes

    known = {"name", "seed", "trials", "variants", "optimizer", "budget", "space", "tasks"}
    _no_unknown(source, known, where)
    name = source.get("name", "study")
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"{where}: name must be a non-empty string without '/', got {name!r}")
    seed = _integer(source.get("seed", 0), "seed", where, minimum=0)
    trials = _integer(source.get("trials", 1), "trials", where, minimum=1)
    variants = source.get("variants", list(VARIANTS))
    if not isinstance(variants, list) or not variants:
        raise ValueError(f"{where}: variants must be a non-empty list, e.g. [\"V\", \"NFG\", \"GRU\"]")
    normalised = []
    for variant in variants:
        upper = str(variant).upper()
        upper = "V" if upper == "VANILLA" else upper
        if upper not in VARIANTS:
            raise ValueError(f"{where}: unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        if upper in normalised:
            raise ValueError(f"{where}: variant {upper} is listed twice")
        normalised.append(upper)
    optimizer = source.get("optimizer", "sgd")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"{where}: optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")

    budget = source.get("budget", {})
    if not isinstance(budget, dict):
        raise ValueError(f"{where}: [budget] must be a table with steps (and optionally max_seconds)")
    _no_unknown(budget, {"steps", "max_seconds"}, f"{where} [budget]")
    if "steps" not in budget:
        raise ValueError(f"{where}: [budget] needs steps, the number of updates per trial")
    steps = _integer(budget["steps"], "budget.steps", where, minimum=1)
    max_seconds = budget.get("max_seconds")
    if max_seconds is not None and not (isinstance(max_seconds, (int, float)) and max_seconds > 0):
        raise ValueError(f"{where}: budget.max_seconds must be a positive number, got {max_seconds!r}")

    space = _space(source.get("space", {}), where)

    tasks = source.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise ValueError(f"{where}: name at least one task, e.g. [tasks.adding]; tasks: {', '.join(TASKS)}")
    for task, options in tasks.items():
        if task not in TASKS:
            raise ValueError(f"{where}: unknown task {task!r}; choose from {', '.join(TASKS)}")
        if not isinstance(options, dict):
            raise ValueError(f"{where}: [tasks.{task}] must be a table of options")
        check_task_options(task, options, where)
    batch = next(d for d in space if d.name == "batch_size")
    largest_batch = int(batch.value if batch.distribution is None else round(batch.high))
    for task, options in tasks.items():
        check_task_sizes(task, options, largest_batch, where)
    return StudySpec(name, seed, trials, tuple(normalised), optimizer, steps,
                     None if max_seconds is None else float(max_seconds), space, dict(tasks), source)


def _space(table, where: str) -> tuple[Dimension, ...]:
    if not isinstance(table, dict):
        raise ValueError(f"{where}: [space] must be a table of hyperparameters")
    _no_unknown(table, set(HYPERPARAMETERS), f"{where} [space]")
    dimensions = []
    for name, default in HYPERPARAMETERS.items():
        entry = table.get(name, default)
        if entry is None:
            raise ValueError(f"{where}: [space] needs {name} (a value or a distribution such as "
                             f"{{ log_uniform = [low, high] }})")
        dimensions.append(_dimension(name, entry, where))
    return tuple(dimensions)


def _dimension(name: str, entry, where: str) -> Dimension:
    if isinstance(entry, bool) or not isinstance(entry, (int, float, dict)):
        raise ValueError(f"{where}: space.{name} must be a number or a distribution table, got {entry!r}")
    if not isinstance(entry, dict):
        _check_value(name, entry, where)
        return Dimension(name, None, value=int(entry) if name in INTEGER_HYPERPARAMETERS else float(entry))
    if len(entry) != 1:
        raise ValueError(f"{where}: space.{name} must have exactly one distribution, one of "
                         f"{', '.join(DISTRIBUTIONS)}")
    (distribution, bounds), = entry.items()
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"{where}: space.{name}: unknown distribution {distribution!r}; choose one of "
                         f"{', '.join(DISTRIBUTIONS)}")
    if (not isinstance(bounds, list) or len(bounds) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
            or not bounds[0] <= bounds[1]):
        raise ValueError(f"{where}: space.{name}.{distribution} must be [low, high] with low <= high, got {bounds!r}")
    low, high = float(bounds[0]), float(bounds[1])
    if DISTRIBUTIONS[distribution][0] and low <= 0:
        raise ValueError(f"{where}: space.{name}.{distribution} needs positive bounds, got {bounds!r}")
    dimension = Dimension(name, distribution, low, high)
    for edge in (low, high):  # the values a draw can reach must be valid themselves
        _check_value(name, Dimension(name, distribution, edge, edge).draw(np.random.default_rng(0)), where)
    return dimension


def _check_value(name: str, value, where: str) -> None:
    valid = {
        "learning_rate": value > 0,
        "hidden_size": value >= 1,
        "batch_size": value >= 1,
        "momentum": 0 <= value < 1,
        "input_noise": value >= 0,
        "clip_norm": value >= 0,
    }[name]
    if not valid or not math.isfinite(value):
        raise ValueError(f"{where}: space.{name} cannot be {value}")


def _integer(value, name: str, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def _no_unknown(table: dict, known: set, where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
