"""Many-to-one: read a whole sequence, answer once (the lectures' sequence classification and
regression: the sentiment of a review, the rating of a text, the class of a time series).

    e_t = Embed(x_t)  or  x_t                       token ids, or feature vectors   (T, B, E)
    h^l_t = RNN/LSTM/GRU stack, both directions when bidirectional, state held on padding
    z = [h^L_fwd(n_b) ; h^L_rev(1)]                  the top layer's final h        (B, D*H)
        or pool_t y_t                                mean or max of the top layer's outputs
                                                     over the real steps (`rnnkit.pooling`)
    y = W_head dropout(z) + b_head                   (B, K)

Sequences of different lengths share a batch padded at the end, with a mask of the real steps
(`rnnkit.data.batches.Padded`). The recurrent layers hold the state still on padded steps, so
the forward direction's final state is its state at the sequence's last real step n_b, and the
reverse direction, which reads the padding first, starts on x_{n_b} from the zero state: the
final state *is* the last valid state, in both directions, and padding never reaches z, the loss
or a gradient. (Steps after the batch's longest sequence are cut off first; they are padding
everywhere and would only cost time.)

Heads and losses:
    classification   P(class k | x) = softmax(y)_k,   loss = -log P(true class)    (K classes)
    regression       y is the standardised target:    loss = (y - (t - mu) / sigma)^2,
                     prediction t_hat = mu + sigma y  (mu, sigma: the training targets' mean and
                     standard deviation, kept in the configuration)

Backward, with dy = dloss/dy (B, K):
    dz = dropout'(W_head^T dy)                       (Linear and Dropout backward)
    dL/d(final state) = dz in the top layer's h rows (fwd, rev), zero elsewhere (c, lower layers)
    BPTT from the final state only: rnn.backward(None, cache, dstate) -> dL/de, then Embedding
    (pooled: dL/dy_t = pool_backward(dz) at every step, and BPTT from those)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from rnnkit.checkpoint import load_checkpoint
from rnnkit.data.batches import Padded
from rnnkit.init import as_generator
from rnnkit.layers import Dropout, Embedding, Linear
from rnnkit.losses import mse, softmax_cross_entropy
from rnnkit.module import Module, runs_in_eval_mode
from rnnkit.network import CELLS, NetworkConfig
from rnnkit.pooling import POOLS, pool_backward, pool_forward
from rnnkit.train import load_model_weights

__all__ = ["ClassifierConfig", "KIND", "SequenceClassifier", "SequenceRegressor", "TASKS", "build_model",
           "describe_model", "load_model"]

KIND = "classifier"
TASKS = ("classification", "regression")
READOUTS = ("last",) + POOLS  # what the head reads: the final state, or a pool of every step's output
CHUNK = 256  # sequences per forward pass at inference
# Embeddings start at N(0, 0.1^2), not torch.nn.Embedding's N(0, 1): with 128 unit-variance
# inputs the gates saturate from the first step, and on the movie reviews the small start scored
# 5 points higher (test accuracy 73.1 % -> 78.6 %, `rnnkit classify train`'s defaults otherwise).
EMBEDDING_SCALE = 0.1


@dataclass(frozen=True)
class ClassifierConfig:
    """network: the encoder and head sizes (`NetworkConfig`: input_size is the vocabulary size
    or the features per step, output_size the number of classes, 1 for regression); task:
    "classification" or "regression"; target_mean / target_scale: mu and sigma of a regression
    target (1 and 0 do nothing); pool: what the head reads, "last" (the final state, the
    only read-out before the option, so an older checkpoint reads as it), "mean" or "max" over
    every real step's top-layer output."""

    network: NetworkConfig
    task: str = "classification"
    target_mean: float = 0.0
    target_scale: float = 1.0
    pool: str = "last"

    def __post_init__(self):
        if self.pool not in READOUTS:
            raise ValueError(f"unknown pooling {self.pool!r}; choose one of {', '.join(READOUTS)}")
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.task == "regression" and self.network.output_size != 1:
            raise ValueError(f"a regressor has one output, got output_size {self.network.output_size}")
        if self.task == "classification" and self.network.output_size < 2:
            raise ValueError(f"a classifier needs at least two classes, got {self.network.output_size}")
        if not self.target_scale > 0:
            raise ValueError(f"the target scale must be positive, got {self.target_scale}")
        if self.network.tie_weights:
            raise ValueError("a many-to-one head cannot share the embedding's weights")

    def to_dict(self) -> dict:
        return {"network": self.network.to_dict(), "task": self.task, "target_mean": float(self.target_mean),
                "target_scale": float(self.target_scale), "pool": self.pool}

    @classmethod
    def from_dict(cls, values: dict) -> ClassifierConfig:
        values = dict(values)
        return cls(NetworkConfig.from_dict(values.pop("network")), **values)


class _ManyToOne(Module):
    """The encoder, the last-state read-out and the head shared by classifier and regressor."""

    task = "classification"

    def __init__(self, config: ClassifierConfig | NetworkConfig, *, dtype=np.float32,
                 rng: np.random.Generator | int | None = 0):
        if isinstance(config, NetworkConfig):
            config = ClassifierConfig(config, task=self.task)
        if config.task != self.task:
            raise ValueError(f"a {type(self).__name__} needs a {self.task} configuration, got {config.task}")
        rng = as_generator(rng)
        network = config.network
        self.config = config
        self.dtype = np.dtype(dtype)
        rnn_input = network.input_size
        if network.input_kind == "embedding":
            self.embedding = Embedding(network.input_size, network.embedding_size, dtype=dtype, rng=rng)
            self.embedding.weight.value *= EMBEDDING_SCALE
            rnn_input = network.embedding_size
        self.rnn = CELLS[network.cell](rnn_input, network.hidden_size, network.num_layers,
                                       dropout=network.dropout, bidirectional=network.bidirectional,
                                       dtype=dtype, rng=rng, **network.cell_options())
        self.dropout = Dropout(network.dropout, rng=rng)
        self.head = Linear(network.hidden_size * self.rnn.num_directions, network.output_size, dtype=dtype, rng=rng)

    def initial_state(self, batch_size: int):
        return self.rnn.initial_state(batch_size)

    # --------------------------------------------------------------------------- forward
    def _encode(self, inputs: np.ndarray):
        kind = self.config.network.input_kind
        if kind == "features":
            return np.asarray(inputs, dtype=self.dtype), None
        ids = np.asarray(inputs)
        if not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 2:
            raise ValueError(f"this model reads token ids, a (time, batch) integer array; got {ids.dtype} {ids.shape}")
        if kind == "embedding":
            return self.embedding.forward(ids)
        size = self.config.network.input_size
        if ids.size and (ids.min() < 0 or ids.max() >= size):
            raise ValueError(f"token id out of range [0, {size})")
        return np.eye(size, dtype=self.dtype)[ids], None

    def forward(self, inputs, state=None):
        """inputs: (T, B) ids or (T, B, F) features, or `Padded(inputs, mask (T, B))`. Returns
        (outputs (B, K), final state of the recurrent stack, cache)."""
        mask, steps = None, None
        if isinstance(inputs, Padded):
            inputs, mask = inputs.inputs, np.asarray(inputs.mask, dtype=bool)
            steps = len(inputs)
            if not mask.any(axis=0).all():
                raise ValueError("every sequence of a batch needs at least one real step (its mask is all false)")
            used = int(np.flatnonzero(mask.any(axis=1))[-1]) + 1  # the steps after it are padding everywhere
            inputs, mask = inputs[:used], mask[:used]
            if self.config.network.input_kind != "features":
                inputs = np.where(mask, inputs, 0)  # padding ids may be anything
        encoded, embed_cache = self._encode(inputs)
        hidden, final, rnn_cache = self.rnn.forward(encoded, state, mask)  # hidden (T, B, D*H)
        pool_cache = None
        if self.config.pool == "last":
            summary = self._top_hidden(final)  # (B, D*H)
        else:
            summary, pool_cache = pool_forward(self.config.pool, hidden, mask)
        dropped, drop_cache = self.dropout.forward(summary)
        outputs, head_cache = self.head.forward(dropped)
        cache = SimpleNamespace(embed=embed_cache, rnn=rnn_cache, drop=drop_cache, head=head_cache,
                                final=final, steps=steps, pool=pool_cache)
        return outputs, final, cache

    __call__ = forward

    def _top_hidden(self, final) -> np.ndarray:
        """[h_fwd ; h_rev] of the top layer from a final state (h, or (h, c, ...))."""
        h = final[0] if isinstance(final, tuple) else final  # (L*D, B, H)
        directions = self.rnn.num_directions
        top = h[(self.rnn.num_layers - 1) * directions:]  # (D, B, H)
        return np.concatenate(list(top), axis=1)

    # -------------------------------------------------------------------------- backward
    def backward(self, d_outputs: np.ndarray, cache, d_state=None):
        """d_outputs: dloss/d outputs (B, K); d_state: an extra gradient on the final state
        (None: none). Adds every parameter's gradient; returns (dL/d inputs for features, padded
        back to the input's length, or None for ids; dL/d initial state)."""
        d_dropped = self.head.backward(d_outputs, cache.head)
        d_last = self.dropout.backward(d_dropped, cache.drop)  # (B, D*H)
        components = [np.array(c) for c in (cache.final if isinstance(cache.final, tuple) else (cache.final,))]
        extra = None if d_state is None else (d_state if isinstance(d_state, tuple) else (d_state,))
        for index, component in enumerate(components):
            component[...] = 0.0 if extra is None else extra[index]
        d_hidden = None  # dL/dy at every step: only a pooled read-out has one
        if cache.pool is None:
            hidden, directions = self.rnn.hidden_size, self.rnn.num_directions
            for direction in range(directions):
                row = (self.rnn.num_layers - 1) * directions + direction
                components[0][row] += d_last[:, direction * hidden:(direction + 1) * hidden]
        else:
            d_hidden = pool_backward(d_last, cache.pool)
        d_final = tuple(components) if isinstance(cache.final, tuple) else components[0]
        d_encoded, d_state0 = self.rnn.backward(d_hidden, cache.rnn, d_final)
        kind = self.config.network.input_kind
        if kind == "embedding":
            self.embedding.backward(d_encoded, cache.embed)
        if kind != "features":
            return None, d_state0
        if cache.steps is not None and cache.steps > len(d_encoded):
            pad = np.zeros((cache.steps - len(d_encoded),) + d_encoded.shape[1:], dtype=d_encoded.dtype)
            d_encoded = np.concatenate([d_encoded, pad])
        return d_encoded, d_state0

    # ------------------------------------------------------------------------- inference
    @runs_in_eval_mode()
    def outputs(self, inputs: np.ndarray, real_steps: np.ndarray | None = None, batch_size: int = CHUNK) -> np.ndarray:
        """Eval-mode outputs (N, K) of batch-major inputs (N, T) ids or (N, T, F) features.
        `real_steps` (N, T) is True on each sequence's real steps and False on its padding at the
        end (None: no padding). (Not a loss mask: `ExampleBatches(mask=)` says which steps count
        in the loss.) Sequences go through in chunks of similar length."""
        inputs = np.asarray(inputs)
        lengths = np.full(len(inputs), inputs.shape[1]) if real_steps is None else np.asarray(real_steps).sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        result = np.empty((len(inputs), self.config.network.output_size), dtype=self.dtype)
        for begin in range(0, len(inputs), batch_size):
            rows = order[begin:begin + batch_size]
            chunk = np.swapaxes(inputs[rows], 0, 1)
            if real_steps is not None:
                chunk = Padded(chunk, np.swapaxes(np.asarray(real_steps)[rows], 0, 1))
            result[rows] = self.forward(chunk)[0]
        return result


class SequenceClassifier(_ManyToOne):
    """Sequence in, one of K classes out (softmax head, cross-entropy)."""

    task = "classification"

    @staticmethod
    def loss(outputs: np.ndarray, targets: np.ndarray, mask=None):
        """The Trainer's loss_fn: mean cross-entropy of logits (B, K) against class ids (B,)."""
        return softmax_cross_entropy(outputs, targets)

    def predict_proba(self, inputs, real_steps=None) -> np.ndarray:
        """P(class | sequence), (N, K); `real_steps` as in `outputs`."""
        logits = self.outputs(inputs, real_steps).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict(self, inputs, real_steps=None) -> np.ndarray:
        """The likeliest class id of each sequence, (N,); `real_steps` as in `outputs`."""
        return np.argmax(self.outputs(inputs, real_steps), axis=1)


class SequenceRegressor(_ManyToOne):
    """Sequence in, one number out (linear head on the standardised target, squared error)."""

    task = "regression"

    def loss(self, outputs: np.ndarray, targets: np.ndarray, mask=None):
        """The Trainer's loss_fn: mean of (y - (t - mu)/sigma)^2 over the batch; outputs (B, 1),
        targets (B,) in the data's own units."""
        scaled = (np.asarray(targets, dtype=np.float64) - self.config.target_mean) / self.config.target_scale
        loss, grad = mse(outputs[:, 0], scaled.astype(outputs.dtype))
        return loss, grad[:, None]

    def predict(self, inputs, real_steps=None) -> np.ndarray:
        """mu + sigma y for each sequence, (N,), in the target's units; `real_steps` as in `outputs`."""
        scaled = self.outputs(inputs, real_steps)[:, 0].astype(np.float64)
        return self.config.target_mean + self.config.target_scale * scaled


def load_model(path: str | Path) -> tuple[SequenceClassifier | SequenceRegressor, dict]:
    """A classifier or regressor and its checkpoint's user metadata (vocabulary, labels, ...)
    from a training checkpoint; ValueError if the file holds another kind of model."""
    tensors, info = load_checkpoint(path)
    user = info.get("user") or {}
    if user.get("kind") != KIND or info.get("model") is None:
        found = user.get("kind") or "unknown"
        raise ValueError(f"{path} is an rnnkit checkpoint of another task ({found}), not of a sequence "
                         "classifier; give one written by `rnnkit classify train`")
    config = ClassifierConfig.from_dict(info["model"])
    model = (SequenceRegressor if config.task == "regression" else SequenceClassifier)(config)
    load_model_weights(model, tensors, path)
    model.eval()
    return model, user


def build_model(metadata: dict, train_targets: np.ndarray, *, cell: str, hidden: int, layers: int, embed: int,
                dropout: float, bidirectional: bool, seed: int, forget_bias: float = 0.0, pool: str = "last",
                input_dropout: float = 0.0, recurrent_dropout: float = 0.0) -> SequenceClassifier | SequenceRegressor:
    """A fresh model for the data `metadata` describes (from `datasets.prepare_training`): an
    embedding for texts or features as they are, one output per class or one number (the
    regressor standardises its targets by the training part's mean and deviation)."""
    text = metadata["input"] == "text"
    output_size = 1 if metadata["task"] == "regression" else len(metadata["labels"])
    network = NetworkConfig(
        input_size=len(metadata["vocabulary"]) if text else metadata["feature_shape"][1], output_size=output_size,
        cell=cell, hidden_size=hidden, num_layers=layers,
        input_kind="embedding" if text else "features", embedding_size=embed if text else 0,
        dropout=dropout, bidirectional=bidirectional, forget_bias=forget_bias, input_dropout=input_dropout,
        recurrent_dropout=recurrent_dropout)
    if metadata["task"] == "regression":
        mean, scale = float(np.mean(train_targets)), float(np.std(train_targets))
        return SequenceRegressor(ClassifierConfig(network, "regression", mean, scale or 1.0, pool), rng=seed)
    return SequenceClassifier(ClassifierConfig(network, pool=pool), rng=seed)


def describe_model(model) -> str:
    """"bidirectional LSTM 2 x 128, embedding 64": what the model is, in one phrase."""
    members = getattr(model, "members", None)  # an ensemble (`ensemble.Ensemble`)
    if members is not None:
        return f"ensemble of {len(members)} x {describe_model(members[0])}"
    n = model.config.network
    direction = "bidirectional " if n.bidirectional else ""
    layers = f"{n.num_layers} x " if n.num_layers > 1 else ""
    embed = f", embedding {n.embedding_size}" if n.input_kind == "embedding" else ""
    pooled = "" if model.config.pool == "last" else f", {model.config.pool}-pooled"
    return f"{direction}{n.cell.upper()} {layers}{n.hidden_size}{embed}{pooled}"
