"""What `rnnkit export` and `rnnkit import-torch` read: the model of a training checkpoint (a
network, or a classifier or regressor) and what its loader needs (a language model's
vocabulary, a classifier's vocabulary and labels), and a vocabulary file."""

from __future__ import annotations

import json
from pathlib import Path

from rnnkit.apps.caption.model import KIND as CAPTIONER
from rnnkit.apps.classify.model import KIND as CLASSIFIER
from rnnkit.apps.classify.model import SequenceClassifier, SequenceRegressor, load_model
from rnnkit.apps.lm.model import KIND as LANGUAGE_MODEL
from rnnkit.apps.seq2seq.model import KIND as SEQ2SEQ
from rnnkit.checkpoint import load_checkpoint
from rnnkit.data.text import Vocabulary, read_text
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.train import load_model_weights

__all__ = ["classifier_metadata", "language_model_metadata", "load_exportable", "load_network", "read_vocabulary"]

EXPORTABLE = "a language model, a classifier or regressor, a forecaster or another single network"
# What a classifier's user needs to encode a text and read the answer (not where the data came from).
CLASSIFIER_KEYS = ("kind", "task", "input", "labels", "vocabulary", "tokens", "lowercase", "max_length",
                   "feature_shape")


def load_exportable(path: str) -> tuple[SequenceNetwork | SequenceClassifier | SequenceRegressor, dict]:
    """The model of a training checkpoint, in eval mode, and the checkpoint's user metadata: a
    classifier or regressor for `rnnkit classify train`'s checkpoints, else the network; a
    one-line ValueError for the kinds export cannot write (encoder-decoders, ensembles)."""
    _, info = load_checkpoint(path)
    user = info.get("user") or {}
    kind = user.get("kind") or info.get("kind")
    if kind == CLASSIFIER:
        return load_model(path)
    if kind in (SEQ2SEQ, CAPTIONER):
        raise ValueError(f"{path} holds a {kind} (an encoder and a decoder), which rnnkit export cannot write; "
                         f"it writes {EXPORTABLE}")
    if int(info.get("members", 1)) > 1:
        raise ValueError(f"{path} holds an ensemble of {info['members']} networks, which rnnkit export cannot "
                         f"write; it writes {EXPORTABLE}")
    return load_network(path)


def load_network(path: str) -> tuple[SequenceNetwork, dict]:
    """The network of a training checkpoint, in eval mode, and the checkpoint's user metadata."""
    tensors, info = load_checkpoint(path)
    if not isinstance(info.get("model"), dict):
        raise ValueError(f"{path} is an rnnkit checkpoint without a network configuration; nothing to export")
    try:
        config = NetworkConfig.from_dict(info["model"])
    except (TypeError, ValueError):
        kind = (info.get("user") or {}).get("kind") or info.get("kind") or "of an unknown kind"
        raise ValueError(f"{path} holds a model rnnkit export cannot write ({kind}); it writes {EXPORTABLE}") from None
    network = SequenceNetwork(config)
    load_model_weights(network, tensors, path)
    network.eval()
    return network, info.get("user") or {}


def language_model_metadata(user: dict) -> dict | None:
    """What `LanguageModel.load` reads from a checkpoint's user metadata, if it is a language
    model: kind, vocabulary, and (word models) level and unknown token."""
    if user.get("kind") != LANGUAGE_MODEL:
        return None
    return {key: user[key] for key in ("kind", "vocabulary", "level", "unknown") if user.get(key) is not None}


def classifier_metadata(model, user: dict) -> dict | None:
    """What a user of an exported classifier or regressor needs, if `model` is one: the task,
    labels (class ids' names), input ("text" or "features"), for text the vocabulary (ids in
    order; "<pad>" is 0, "<unk>" 1) and tokenizer settings (tokens "words"/"chars", lowercase,
    max_length), for features their shape, and a regressor's target_mean and target_scale."""
    if not isinstance(model, (SequenceClassifier, SequenceRegressor)):
        return None
    metadata = {key: user[key] for key in CLASSIFIER_KEYS if user.get(key) is not None}
    metadata["task"] = model.config.task
    if model.config.task == "regression":
        metadata.update(target_mean=model.config.target_mean, target_scale=model.config.target_scale)
    return metadata


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
