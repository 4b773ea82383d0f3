"""One-to-many: a captioner. One input vector (an image's features) sets the decoder's first
state, and the decoder writes a sentence about it:

    h_0^l = tanh(W_bridge^l v + b_bridge^l)      for every decoder layer l (c_0 = 0 for LSTM)
    P(w_t | w_<t, v) = softmax(decoder(w_0 .. w_{t-1} | h_0))

Backward: dL/dh_0 from the decoder's BPTT, then through the tanh and the bridge:
dL/d(pre) = dL/dh_0 * (1 - h_0^2), and the Linear bridge's own backward.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from rnnkit.conditioned import ConditionedDecoder
from rnnkit.init import as_generator
from rnnkit.layers import Linear
from rnnkit.network import NetworkConfig, SequenceNetwork

__all__ = ["KIND", "Captioner", "CaptionerConfig"]

KIND = "captioner"  # the checkpoint's kind: what `Captioner.load` accepts


@dataclass(frozen=True)
class CaptionerConfig:
    feature_size: int
    decoder: NetworkConfig

    def to_dict(self) -> dict:
        return {"feature_size": self.feature_size, "decoder": asdict(self.decoder)}

    @classmethod
    def from_dict(cls, values: dict) -> CaptionerConfig:
        return cls(values["feature_size"], NetworkConfig.from_dict(values["decoder"]))


class Captioner(ConditionedDecoder):
    def __init__(self, config: CaptionerConfig, *, dtype=np.float32, rng=0):
        if config.decoder.bidirectional:
            raise ValueError("a decoder writes left to right; it cannot be bidirectional")
        if config.decoder.input_kind == "features":
            raise ValueError("the caption decoder reads word ids: use input_kind 'embedding' or 'one_hot'")
        rng = as_generator(rng)
        self.config = config
        decoder = config.decoder
        self.bridge = Linear(config.feature_size, decoder.num_layers * decoder.hidden_size, dtype=dtype, rng=rng)
        self.decoder = SequenceNetwork(decoder, dtype=dtype, rng=rng)

    def encode(self, context: np.ndarray):
        """Images (B, F) -> the decoder's first state."""
        layers, hidden = self.config.decoder.num_layers, self.config.decoder.hidden_size
        pre, bridge_cache = self.bridge.forward(context)
        h0 = np.tanh(pre).reshape(len(context), layers, hidden).transpose(1, 0, 2)  # (L, B, H)
        state = self.decoder.initial_state(len(context))
        state = (np.ascontiguousarray(h0),) + tuple(state[1:]) if isinstance(state, tuple) else np.ascontiguousarray(h0)
        return state, SimpleNamespace(h0=h0, bridge=bridge_cache)

    def encode_backward(self, d_state0, cache) -> None:
        d_h0 = d_state0[0] if isinstance(d_state0, tuple) else d_state0
        d_pre = (d_h0 * (1.0 - cache.h0 ** 2)).transpose(1, 0, 2).reshape(d_h0.shape[1], -1)
        self.bridge.backward(d_pre, cache.bridge)

    @classmethod
    def load(cls, path: str | Path) -> tuple[Captioner, list[str]]:
        """(model, vocabulary) from a checkpoint of `rnnkit caption train`; a one-line ValueError
        for a checkpoint of another kind."""
        model, user = cls.from_checkpoint(path, KIND, "a captioner", CaptionerConfig)
        return model, user["vocabulary"]
