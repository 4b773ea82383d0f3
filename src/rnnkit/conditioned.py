"""A decoder whose first state comes from a context: the shared part of one-to-many (an image
sets the state, a caption comes out) and encoder-decoder models (a source sentence sets the
state, its translation comes out).

    s_0 = encode(context)                     subclass: a Linear bridge, or an encoder RNN
    y_t = decoder(w_0 .. w_t | s_0)           a SequenceNetwork over tokens, head at every step

Training uses teacher forcing: the decoder reads the true previous token w_{t-1} (w_0 = <bos>)
and is trained to predict w_t, up to <eos>. Its gradient w.r.t. s_0 flows back into the encoder,
so both are trained as one network. Decoding feeds its own predictions back (greedy or beam
search, `rnnkit.decoding`).

The batch sources wrap inputs as `Conditioned(context, tokens)`; a window that starts from no
state encodes the context, a later window (truncated BPTT) carries the state instead.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .checkpoint import load_checkpoint
from .data.batches import Conditioned
from .decoding import beam_search, greedy_decode
from .module import Module, runs_in_eval_mode
from .train import load_model_weights

__all__ = ["ConditionedDecoder", "PAD", "BOS", "EOS", "SPECIAL_TOKENS"]

PAD, BOS, EOS = 0, 1, 2
SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>"]


class ConditionedDecoder(Module):
    """Subclasses set `self.decoder` (a SequenceNetwork over token ids) and implement
    `encode(context) -> (state0, cache)` and `encode_backward(d_state0, cache)`."""

    def encode(self, context: np.ndarray):
        raise NotImplementedError

    def encode_backward(self, d_state0, cache) -> None:
        raise NotImplementedError

    def forward(self, inputs, state=None):
        encoded = None
        if isinstance(inputs, Conditioned):
            if state is None:
                state, encoded = self.encode(inputs.context)
            inputs = inputs.inputs
        outputs, state, decoded = self.decoder.forward(inputs, state)
        return outputs, state, SimpleNamespace(encoded=encoded, decoded=decoded)

    __call__ = forward

    def backward(self, d_outputs, cache, d_state=None):
        _, d_state0 = self.decoder.backward(d_outputs, cache.decoded, d_state)
        if cache.encoded is not None:
            self.encode_backward(d_state0, cache.encoded)
            return None, None
        return None, d_state0

    def initial_state(self, batch_size: int):
        return self.decoder.initial_state(batch_size)

    @classmethod
    def from_checkpoint(cls, path: str | Path, kind: str, what: str, config_type) -> tuple[ConditionedDecoder, dict]:
        """(model, the checkpoint's user metadata) from a checkpoint whose kind is `kind`: the
        configuration rebuilt with `config_type.from_dict`, then the weights. A checkpoint of
        another kind is refused in one line naming `what` was expected."""
        tensors, info = load_checkpoint(path)
        user = info.get("user") or {}
        if user.get("kind") != kind:
            raise ValueError(f"{path} is an rnnkit checkpoint, but not of {what}")
        model = cls(config_type.from_dict(info["model"]))
        load_model_weights(model, tensors, path)
        return model, user

    @runs_in_eval_mode()
    def decode(self, context: np.ndarray, *, max_length: int, beam: int = 1) -> list[int]:
        """Token ids (without <bos>/<eos>) for one context (no batch axis)."""
        state, _ = self.encode(np.asarray(context)[None])
        if beam == 1:
            return greedy_decode(self.decoder, state, BOS, EOS, max_length)
        return beam_search(self.decoder, state, BOS, EOS, max_length, beam)


def teacher_forcing(sequences: list[list[int]], length: int | None = None):
    """Token-id sequences -> decoder inputs (N, L) = <bos> w_1 .. w_n <pad>..., targets (N, L) =
    w_1 .. w_n <eos> <pad>..., and the mask of real targets (N, L)."""
    length = length or max(len(s) for s in sequences) + 1
    inputs = np.full((len(sequences), length), PAD, dtype=np.int64)
    targets = np.full((len(sequences), length), PAD, dtype=np.int64)
    for row, tokens in enumerate(sequences):
        if len(tokens) + 1 > length:
            raise ValueError(f"a sequence of {len(tokens)} tokens does not fit in {length} decoder steps")
        inputs[row, : len(tokens) + 1] = [BOS, *tokens]
        targets[row, : len(tokens) + 1] = [*tokens, EOS]
    return inputs, targets, targets != PAD
