"""What `rnnkit export` and `rnnkit import-torch` read: the network of a training checkpoint
(and, for a language model, what its loader needs), and a vocabulary file."""

from __future__ import annotations

import json
from pathlib import Path

from rnnkit.apps.lm.model import KIND as LANGUAGE_MODEL
from rnnkit.checkpoint import load_checkpoint
from rnnkit.data.text import Vocabulary, read_text
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.train import load_model_weights

__all__ = ["language_model_metadata", "load_network", "read_vocabulary"]


def load_network(path: str) -> tuple[SequenceNetwork, dict]:
    """The network of a training checkpoint, in eval mode, and the checkpoint's user metadata."""
    tensors, info = load_checkpoint(path)
    if not isinstance(info.get("model"), dict):
        raise ValueError(f"{path} is an rnnkit checkpoint without a network configuration; nothing to export")
    network = SequenceNetwork(NetworkConfig.from_dict(info["model"]))
    load_model_weights(network, tensors, path)
    network.eval()
    return network, info.get("user") or {}


def language_model_metadata(user: dict) -> dict | None:
    """What `LanguageModel.load` reads from a checkpoint's user metadata, if it is a language
    model: kind, vocabulary, and (word models) level and unknown token."""
    if user.get("kind") != LANGUAGE_MODEL:
        return None
    return {key: user[key] for key in ("kind", "vocabulary", "level", "unknown") if user.get(key) is not None}


def read_vocabulary(path: str) -> Vocabulary:
    if Path(path).suffix.lower() == ".json":
        try:
            tokens = json.loads(read_text(path))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error})") from None
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            raise ValueError(f"{path} must hold a JSON list of strings (the tokens in id order)")
        return Vocabulary(tokens)
    return Vocabulary.from_text(read_text(path))
