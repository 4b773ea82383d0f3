"""A whole recurrent network: input encoding, a recurrent stack, dropout and a dense head at
every step (the synchronous many-to-many mode; language models and taggers).

    e_t = Embed(x_t)  or  onehot(x_t)  or  x_t          (token ids, or feature vectors)
    h_t = RNN/LSTM/GRU stack(e_1 .. e_t)                (T, B, D*H)
    y_t = W_head dropout(h_t) + b_head                  (T, B, output_size)

Its configuration is a frozen dataclass that is also what a checkpoint records, so a model can
be rebuilt from a file and a checkpoint of another shape is recognised as such.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from . import kernels
from .data.batches import Padded
from .decoding import choose_token
from .init import as_generator
from .layers import Dropout, DropoutCache, Embedding, EmbeddingCache, Linear, LinearCache
from .module import Module, check_cache
from .recurrent import GRU, LSTM, RNN, SequenceCache

__all__ = ["NetworkCache", "NetworkConfig", "SequenceNetwork"]

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
INPUT_KINDS = ("features", "embedding", "one_hot")


@dataclass(frozen=True)
class NetworkConfig:
    """input_size: features per step, or the vocabulary size for token inputs.
    input_kind: "features" (float inputs (T, B, F)), "embedding" or "one_hot" (ids (T, B)).
    The cell options apply to their own cell only: peephole/variant to LSTM, nonlinearity to
    RNN, reset_after to GRU. tie_weights: the output layer reuses the embedding matrix (Press &
    Wolf 2017): logits_t = E h_t + b, so one (V, H) matrix reads and writes tokens.
    layer_norm: layer-normalised cells (Ba et al. 2016); input_dropout / recurrent_dropout:
    variational dropout (Gal & Ghahramani 2016) on each cell's input and on the state W_hh
    reads, one mask per sequence (see `rnnkit.recurrent`); `dropout` stays per step.
    forget_bias: added to the LSTM's forget-gate bias at initialisation (`rnnkit.LSTM`); 0 is
    PyTorch's initialisation, and what a configuration written before the option reads as.
    chrono_max_lag: the LSTM's chrono initialisation (Tallec & Ollivier 2018, `rnnkit.LSTM`);
    0, off, is what a configuration written before the option reads as."""

    input_size: int
    output_size: int
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    input_kind: str = "features"
    embedding_size: int = 0
    dropout: float = 0.0
    bidirectional: bool = False
    peephole: bool | None = None
    variant: str | None = None
    nonlinearity: str = "tanh"
    reset_after: bool = True
    tie_weights: bool = False
    layer_norm: bool = False
    input_dropout: float = 0.0
    recurrent_dropout: float = 0.0
    forget_bias: float = 0.0
    chrono_max_lag: int = 0

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"unknown input kind {self.input_kind!r}; choose one of {', '.join(INPUT_KINDS)}")
        for name in ("input_size", "output_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.input_kind == "embedding" and self.embedding_size <= 0:
            raise ValueError("an embedding input needs embedding_size > 0")
        for name in ("dropout", "input_dropout", "recurrent_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.forget_bias and self.cell != "lstm":
            raise ValueError(f"forget_bias is the LSTM's forget-gate bias; a {self.cell.upper()} has no forget "
                             "gate, so leave it at 0")
        if self.chrono_max_lag and self.cell != "lstm":
            raise ValueError(f"chrono_max_lag initialises the LSTM's gate biases; a {self.cell.upper()} has none "
                             "of those gates, so leave it at 0")
        if self.layer_norm and self.cell == "gru" and not self.reset_after:
            raise ValueError("layer_norm needs the PyTorch GRU (reset_after=True), not the textbook one")
        if self.tie_weights:
            width = self.hidden_size * (2 if self.bidirectional else 1)
            if self.input_kind != "embedding" or self.embedding_size != width or self.input_size != self.output_size:
                raise ValueError("tied weights need an embedding as wide as the recurrent output "
                                 f"(embedding_size {self.embedding_size}, recurrent output {width}) and as many "
                                 "outputs as inputs")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> NetworkConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown network configuration key(s): {', '.join(unknown)}")
        return cls(**values)

    def cell_options(self) -> dict:
        shared = {"layer_norm": self.layer_norm, "input_dropout": self.input_dropout,
                  "recurrent_dropout": self.recurrent_dropout}
        if self.cell == "lstm":
            return {"peephole": self.peephole, "variant": self.variant, "forget_bias": self.forget_bias,
                    "chrono_max_lag": self.chrono_max_lag, **shared}
        if self.cell == "gru":
            return {"reset_after": self.reset_after, **shared}
        return {"nonlinearity": self.nonlinearity, **shared}


@dataclass
class NetworkCache:
    """What `SequenceNetwork.forward` kept for `backward`: the cache of each part."""

    embed: EmbeddingCache | None  # None for one-hot or feature inputs
    rnn: SequenceCache
    drop: DropoutCache
    head: LinearCache
    owner: SequenceNetwork = field(repr=False)

    def internals(self) -> dict[str, dict[str, np.ndarray]]:
        """The recurrent stack's activations at every step, as `SequenceCache.internals()`:
        keyed by layer ("l0", "l0_reverse", ...), then by name ("h", "c", gate names), each
        (T, B, H)."""
        return self.rnn.internals()


class SequenceNetwork(Module):
    """Encoder (embedding / one-hot / features) -> recurrent stack -> dropout -> Linear head,
    with an explicit backward. `forward(inputs, state)` returns (outputs, state, cache);
    `backward(d_outputs, cache, d_state=None)` returns (d_inputs or None for ids, d_state0)."""

    def __init__(self, config: NetworkConfig, *, dtype=np.float32, rng: np.random.Generator | int | None = 0):
        rng = as_generator(rng)
        self.config = config
        self.dtype = np.dtype(dtype)
        rnn_input = config.input_size
        if config.input_kind == "embedding":
            self.embedding = Embedding(config.input_size, config.embedding_size, dtype=dtype, rng=rng)
            rnn_input = config.embedding_size
        self.rnn = CELLS[config.cell](rnn_input, config.hidden_size, config.num_layers,
                                      dropout=config.dropout, bidirectional=config.bidirectional,
                                      dtype=dtype, rng=rng, **config.cell_options())
        self.dropout = Dropout(config.dropout, rng=rng)
        directions = 2 if config.bidirectional else 1
        self.head = Linear(config.hidden_size * directions, config.output_size, dtype=dtype, rng=rng)
        if config.tie_weights:
            # One Parameter under two names: both backward passes add into its gradient, and
            # named_parameters() lists it once (as embedding.weight).
            self.head.weight = self.embedding.weight

    def initial_state(self, batch_size: int):
        return self.rnn.initial_state(batch_size)

    def _encode(self, inputs: np.ndarray):
        kind = self.config.input_kind
        if kind == "features":
            return inputs, None
        ids = np.asarray(inputs)
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"this network reads token ids (integers), got an array of {ids.dtype}")
        if ids.ndim != 2:
            raise ValueError(f"token ids must be a (time, batch) array, got shape {ids.shape}")
        if kind == "embedding":
            return self.embedding.forward(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.config.input_size):
            raise ValueError(f"token id out of range [0, {self.config.input_size})")
        return np.eye(self.config.input_size, dtype=self.dtype)[ids], None

    def forward(self, inputs, state=None):
        """inputs: (T, B) ids or (T, B, F) features, or `Padded(inputs, mask)` for sequences of
        different lengths. Returns (outputs (T, B, output_size), state, cache)."""
        mask = None
        if isinstance(inputs, Padded):
            inputs, mask = inputs.inputs, inputs.mask
            if self.config.input_kind != "features":
                inputs = np.where(mask, inputs, 0)  # padding ids may be anything
        encoded, embed_cache = self._encode(inputs)
        hidden, state, rnn_cache = self.rnn.forward(encoded, state, mask)
        dropped, drop_cache = self.dropout.forward(hidden)
        outputs, head_cache = self.head.forward(dropped)
        return outputs, state, NetworkCache(embed_cache, rnn_cache, drop_cache, head_cache, self)

    __call__ = forward

    def step(self, inputs: np.ndarray, state=None):
        """One time step for inference (sampling): inputs (B,) ids or (B, F) features ->
        (outputs (B, output_size), state). Keeps nothing for backward: each recurrent cell takes
        its cache-free `inference_step` (compiled where `rnnkit.kernels` has the cell). In
        training mode with dropout it is `forward` on a one-step sequence, masks and all."""
        inputs = np.asarray(inputs)
        if self.training and self.config.dropout > 0:
            outputs, state, _ = self.forward(inputs[None], state)
            return outputs[0], state
        encoded, _ = self._encode(inputs[None])
        hidden, state = self.rnn.step(encoded[0], state)
        outputs, _ = self.head.forward(hidden)
        return outputs, state

    def sample(self, first: int, count: int, rng: np.random.Generator | int | None = 0, state=None, *,
               temperature: float = 1.0, top_k: int | None = None, greedy: bool = False):
        """`count` token ids drawn one at a time for one sequence, each fed back as the next
        input, from the token `first` and `state` (None: zeros). Returns (tokens (count,) int64,
        the final state). Each draw is `rnnkit.decoding.choose_token`'s with rng's next uniform
        (none when greedy). In eval mode an embedding -> standard LSTM stack network draws them
        all in one compiled call (`kernels/sampling.py`); anything else runs `step` per token,
        with the same tokens from the same seed."""
        vocabulary = self.config.input_size
        if self.config.input_kind == "features" or self.config.output_size != vocabulary:
            raise ValueError("sampling feeds each drawn token back in: it needs token inputs (embedding or one_hot) "
                             f"and as many outputs as input ids, got {self.config.input_kind} inputs of "
                             f"{vocabulary} and {self.config.output_size} outputs")
        integer = (int, np.integer)
        if not isinstance(first, integer) or not 0 <= first < vocabulary:
            raise ValueError(f"the first token must be an id in [0, {vocabulary}), got {first!r}")
        if (not isinstance(count, integer) or count < 0 or not temperature > 0
                or (top_k is not None and (not isinstance(top_k, integer) or top_k <= 0))):
            raise ValueError(f"sample needs count >= 0, temperature > 0 and top_k > 0 (or None), got count {count}, "
                             f"temperature {temperature}, top_k {top_k}")
        uniforms = np.zeros(count) if greedy else as_generator(rng).random(count)
        cells = [row[0] for row in self.rnn.layer_cells]
        if (self.training or self.config.input_kind != "embedding" or self.config.bidirectional
                or any(cell.kernel_name != "lstm" or cell.fused() is None for cell in cells)):
            tokens, token = np.empty(count, np.int64), first
            for n in range(count):
                logits, state = self.step(np.array([token]), state)
                token = tokens[n] = choose_token(logits[0], uniforms[n], temperature=temperature, top_k=top_k,
                                                 greedy=greedy)
            return tokens, state
        h, c = self.rnn.state_components(self.initial_state(1) if state is None else state, 1)
        bias = None if self.head.bias is None else self.head.bias.value
        tokens, (h, c) = kernels.load("sampling").sample(
            self.embedding.weight.value, cells, self.head.weight.value, bias, (h[:, 0], c[:, 0]), first, uniforms,
            temperature, top_k or 0, greedy)
        return tokens, (h[:, None], c[:, None])

    def backward(self, d_outputs: np.ndarray, cache: NetworkCache, d_state=None, *, record=None):
        """d_outputs: dL/d(outputs) (T, B, output_size); cache: what `forward` returned with
        them; d_state: dL/d(final state) or None. Adds every parameter's gradient into its
        `.grad`; returns (dL/d(inputs) for feature inputs, else None; dL/d(initial state)).
        record: every state gradient of the recurrent stack (`RecurrentLayer.backward`)."""
        check_cache(self, cache, NetworkCache, "outputs, state, cache = network.forward(inputs)")
        d_dropped = self.head.backward(d_outputs, cache.head)
        d_hidden = self.dropout.backward(d_dropped, cache.drop)
        d_encoded, d_state0 = self.rnn.backward(d_hidden, cache.rnn, d_state, record=record)
        if self.config.input_kind == "embedding":
            self.embedding.backward(d_encoded, cache.embed)
            return None, d_state0
        if self.config.input_kind == "one_hot":
            return None, d_state0
        return d_encoded, d_state0
