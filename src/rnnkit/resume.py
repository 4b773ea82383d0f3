"""What a trainer writes to resume exactly, and how it reads it back: one safetensors file
(`rnnkit.checkpoint`) holding the model's parameters under their own (PyTorch) names, the
optimizer's arrays under `optimizer/<index>/<name>`, the carried stream (`StreamHistory`) as
the state where its kept steps begin under `trainer/state/<k>` and those steps' inputs under
`trainer/stream_inputs`, and, as JSON, the model's configuration, the optimizer's scalars, the
schedule, the trainer's `TrainState`, the dropout generators' states and the caller's metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .checkpoint import describe_difference, load_checkpoint, save_checkpoint
from .optim import Optimizer
from .tbptt import StreamHistory

__all__ = ["TrainState", "load_model_weights", "restore_training", "save_training"]


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint. A step is one batch; an update is one
    optimizer step, and truncated BPTT makes one per window, so a step makes several."""

    step: int = 0
    updates: int = 0  # optimizer updates so far (0 in checkpoints written before it was counted)
    epoch: int = 0
    position: int = 0  # batch index inside the epoch
    best_loss: float | None = None  # of the scheduled evaluations (the end-of-run one: see fit)
    evals_without_improvement: int = 0
    history: list[dict] = field(default_factory=list)
    # What the end-of-run evaluation added (the keys of the last record; whether it set the
    # first best), withdrawn before training continues: see `Trainer.fit`.
    end_evaluation: dict | None = None


def save_training(path: str | Path, model, optimizer: Optimizer, schedule, state: TrainState,
                  carried: StreamHistory | None, metadata: dict | None = None) -> None:
    """Write everything needed to resume exactly (the layout in the module docstring), atomically."""
    tensors = {name: p.value for name, p in model.named_parameters()}
    optimizer_state = optimizer.state_dict()
    for index, buffers in enumerate(optimizer_state.pop("state")):
        for name, array in buffers.items():
            tensors[f"optimizer/{index}/{name}"] = array
    tensors.update(_stream_tensors(carried))
    info = {
        "rnnkit_version": __version__,
        "model": _model_config(model),
        "optimizer": optimizer_state,
        "schedule": None if schedule is None else schedule.state_dict(),
        "trainer": {**state.__dict__, "carried_parts": len(_state_parts(carried))},
        "random": model.random_state(),
        "user": metadata or {},
    }
    save_checkpoint(path, tensors, json.loads(json.dumps(info, default=_json_default)))


def restore_training(path: str | Path, model, optimizer: Optimizer,
                     schedule) -> tuple[TrainState, StreamHistory | None, dict]:
    """Load a checkpoint written by `save_training` into the model, optimizer and schedule;
    returns (the trainer's state, the carried stream, the user metadata). A checkpoint of a
    different model configuration or optimizer raises ValueError saying what differs."""
    tensors, info = load_checkpoint(path)
    expected = _model_config(model)
    if expected is not None and info.get("model") is not None:
        difference = describe_difference(expected, _with_defaults(model, info["model"]))
        if difference:
            raise ValueError(f"checkpoint {path} was saved from a different model: {difference}")
    load_model_weights(model, tensors, path)
    optimizer_state = dict(info["optimizer"])
    optimizer_state["state"] = [
        {name: tensors[f"optimizer/{index}/{name}"] for name in _buffer_names(tensors, index)}
        for index in range(len(optimizer.params))
    ]
    optimizer.load_state_dict(optimizer_state)
    if (info["schedule"] is None) != (schedule is None):
        raise ValueError(f"checkpoint {path} was saved {'without' if info['schedule'] is None else 'with'} "
                         "a learning-rate schedule, but this trainer has the opposite")
    if schedule is not None:
        schedule.load_state_dict(info["schedule"])
    model.set_random_state(info["random"])
    trainer = dict(info["trainer"])
    parts = trainer.pop("carried_parts")
    return TrainState(**trainer), _stream_from_tensors(tensors, parts), info["user"]


def load_model_weights(model, tensors: dict, path) -> None:
    """Copy a model's parameters out of a checkpoint's tensors (other entries ignored)."""
    names = [name for name, _ in model.named_parameters()]
    missing = [name for name in names if name not in tensors]
    if missing:
        raise ValueError(f"checkpoint {path} lacks the model parameter(s) {', '.join(missing)}")
    model.load_state_dict({name: tensors[name] for name in names})


def _state_parts(carried: StreamHistory | None) -> list[np.ndarray]:
    state = None if carried is None else carried.state
    return [] if state is None else ([state] if isinstance(state, np.ndarray) else list(state))


def _stream_tensors(carried: StreamHistory | None) -> dict[str, np.ndarray]:
    tensors = {f"trainer/state/{index}": part for index, part in enumerate(_state_parts(carried))}
    if carried is not None and len(carried):
        tensors["trainer/stream_inputs"] = carried.inputs
    return tensors


def _stream_from_tensors(tensors: dict, parts: int) -> StreamHistory | None:
    """The carried stream of a checkpoint (one from before streams kept inputs has only the state)."""
    state = [tensors[f"trainer/state/{index}"] for index in range(parts)]
    inputs = tensors.get("trainer/stream_inputs")
    if not state and inputs is None:
        return None
    return StreamHistory(None if not state else (state[0] if len(state) == 1 else tuple(state)), inputs)


def _buffer_names(tensors: dict, index: int) -> list[str]:
    prefix = f"optimizer/{index}/"
    return sorted(name[len(prefix):] for name in tensors if name.startswith(prefix))


def _model_config(model) -> dict | None:
    config = getattr(model, "config", None)
    return config.to_dict() if config is not None else None


def _with_defaults(model, found: dict) -> dict:
    """The checkpoint's model configuration with the keys added since it was written (e.g.
    NetworkConfig's forget_bias, chrono_max_lag) at their defaults, which is how such a file
    loads; as written when the model's configuration class cannot read it."""
    try:
        return type(model.config).from_dict(found).to_dict()
    except (AttributeError, TypeError, ValueError):
        return found


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
