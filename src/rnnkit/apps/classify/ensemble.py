"""A seed ensemble: models of one data set trained alike from different seeds (initialisation,
dropout, batch order), whose answer is the mean of theirs:

    classifier      P(k | x) = (1/M) sum_m P_m(k | x),   prediction argmax_k P(k | x)
    regressor       t_hat = (1/M) sum_m t_hat_m

`rnnkit classify train --ensemble M` writes each member's checkpoint into `seed-<s>/` of the
output folder and lists them in `ensemble.json`; `load_predictor` reads such a folder (or one
checkpoint) for `eval` and `predict`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .model import load_model

__all__ = ["MANIFEST", "Ensemble", "load_predictor", "write_manifest"]

MANIFEST = "ensemble.json"


class Ensemble:
    """Trained members with one task, one vocabulary and one set of labels; predicts as one model."""

    def __init__(self, members: list):
        if not members:
            raise ValueError("an ensemble needs at least one model")
        tasks = {m.config.task for m in members}
        outputs = {m.config.network.output_size for m in members}
        if len(tasks) > 1 or len(outputs) > 1:
            raise ValueError("the models of an ensemble must share one task and one number of outputs")
        self.members = list(members)
        self.config = members[0].config

    def predict_proba(self, inputs, real_steps=None) -> np.ndarray:
        return np.mean([m.predict_proba(inputs, real_steps) for m in self.members], axis=0)

    def predict(self, inputs, real_steps=None) -> np.ndarray:
        if self.config.task == "regression":
            return np.mean([m.predict(inputs, real_steps) for m in self.members], axis=0)
        return np.argmax(self.predict_proba(inputs, real_steps), axis=1)


def write_manifest(folder: Path, members: list[Path]) -> Path:
    """ensemble.json in `folder`: the members' checkpoints, relative to it."""
    path = Path(folder) / MANIFEST
    path.write_text(json.dumps({"members": [str(Path(m).relative_to(folder)) for m in members]}, indent=1))
    return path


def load_predictor(path: str | Path):
    """(a model, its checkpoint's metadata) from a checkpoint, or (an Ensemble, its first member's
    metadata) from a folder holding ensemble.json. ValueError for a folder without one, or
    members trained on different vocabularies or labels."""
    path = Path(path)
    if not path.is_dir():
        return load_model(path)
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise ValueError(f"{path} is a folder without {MANIFEST}; give a checkpoint (best.safetensors) or the "
                         "output folder of `rnnkit classify train --ensemble`")
    try:
        members = json.loads(manifest.read_text())["members"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{manifest} is not an ensemble manifest ({error})") from None
    loaded = [load_model(path / member) for member in members]
    metadata = loaded[0][1]
    for member, (_, other) in zip(members, loaded):
        if any(other.get(key) != metadata.get(key) for key in ("vocabulary", "labels", "tokens", "lowercase")):
            raise ValueError(f"{path / member} reads other words or labels than {path / members[0]}; an ensemble's "
                             "models must be trained on one data set")
    return Ensemble([model for model, _ in loaded]), metadata
