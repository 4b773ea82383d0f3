"""Encoder-decoder (Sutskever et al. 2014; Cho et al. 2014): an encoder reads the source and
its final state starts a decoder that writes the target.

    s = encoder(x_1 .. x_S)                            final state, padding held still
    P(y_t | y_<t, x) = softmax(decoder(y_0 .. y_{t-1} | s))

Sources of different lengths are padded with <pad> (id 0) and masked, so each encoder state is
that of the source's own last character. Backward: the decoder's BPTT gives dL/ds, which is the
encoder's final-state gradient; the encoder's BPTT (from its final state only) carries it back
to the source embeddings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from rnnkit.conditioned import BOS, EOS, PAD, ConditionedDecoder
from rnnkit.decoding import greedy_decode_batch
from rnnkit.init import as_generator
from rnnkit.layers import Embedding
from rnnkit.module import runs_in_eval_mode
from rnnkit.network import CELLS, NetworkConfig, SequenceNetwork

from .pairs import PairVocabulary

__all__ = ["KIND", "Seq2Seq", "Seq2SeqConfig", "exact_match"]

KIND = "seq2seq"  # the checkpoint's kind: what `Seq2Seq.load` accepts


@dataclass(frozen=True)
class Seq2SeqConfig:
    """vocabulary_size: one vocabulary for source and target (ids 0-2 are <pad>, <bos>, <eos>).
    reverse_source: the encoder reads each source backwards (Sutskever et al.'s trick: the first
    target tokens then sit close to the source tokens they depend on)."""

    vocabulary_size: int
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    embedding_size: int = 32
    reverse_source: bool = True
    forget_bias: float = 0.0  # encoder's and decoder's LSTM (rnnkit.LSTM); 0 in files written before it

    def decoder(self) -> NetworkConfig:
        return NetworkConfig(self.vocabulary_size, self.vocabulary_size, cell=self.cell,
                             hidden_size=self.hidden_size, num_layers=self.num_layers,
                             input_kind="embedding", embedding_size=self.embedding_size,
                             forget_bias=self.forget_bias)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Seq2SeqConfig:
        return cls(**values)


class Seq2Seq(ConditionedDecoder):
    def __init__(self, config: Seq2SeqConfig, *, dtype=np.float32, rng=0):
        rng = as_generator(rng)
        self.config = config
        decoder = config.decoder()  # checks the configuration before anything is drawn
        self.encoder_embedding = Embedding(config.vocabulary_size, config.embedding_size, dtype=dtype, rng=rng)
        options = {"forget_bias": config.forget_bias} if config.cell == "lstm" else {}
        self.encoder = CELLS[config.cell](config.embedding_size, config.hidden_size, config.num_layers,
                                          dtype=dtype, rng=rng, **options)
        self.decoder = SequenceNetwork(decoder, dtype=dtype, rng=rng)

    def encode(self, context: np.ndarray):
        """Padded source ids (B, S) -> the decoder's first state (the encoder's final state)."""
        sources = np.asarray(context)
        if self.config.reverse_source:
            sources = reverse_rows(sources)
        sources = sources.T  # (S, B)
        mask = sources != PAD
        if not mask[0].all():
            raise ValueError("every source needs at least one token")
        embedded, embed_cache = self.encoder_embedding.forward(sources)
        _, state, rnn_cache = self.encoder.forward(embedded, mask=mask)
        return state, SimpleNamespace(embed=embed_cache, rnn=rnn_cache)

    def encode_backward(self, d_state0, cache) -> None:
        d_embedded, _ = self.encoder.backward(None, cache.rnn, d_state0)
        self.encoder_embedding.backward(d_embedded, cache.embed)

    @runs_in_eval_mode()
    def translate_batch(self, sources: np.ndarray, max_length: int) -> list[list[int]]:
        """Greedy translations of padded sources (B, S), all at once."""
        state, _ = self.encode(sources)
        return greedy_decode_batch(self.decoder, state, BOS, EOS, max_length)

    @classmethod
    def load(cls, path: str | Path) -> tuple[Seq2Seq, PairVocabulary, int]:
        """(model, vocabulary, longest target + 2) from a checkpoint of `rnnkit seq2seq train`;
        a one-line ValueError for a checkpoint of another kind."""
        model, user = cls.from_checkpoint(path, KIND, "an encoder-decoder", Seq2SeqConfig)
        return model, PairVocabulary(user["vocabulary"]), user["max_length"]


def reverse_rows(ids: np.ndarray) -> np.ndarray:
    """Each row's real tokens in reverse order, the padding left at the end."""
    lengths = (ids != PAD).sum(axis=1)
    steps = np.arange(ids.shape[1])
    index = np.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    return np.take_along_axis(ids, index, axis=1)


def exact_match(model: Seq2Seq, vocabulary: PairVocabulary, pairs, beam: int, max_length: int) -> float:
    """The fraction of (source, target) pairs translated exactly (greedy in batches of 256, or beam search)."""
    sources = [source for source, _ in pairs]
    if beam == 1:
        outputs = []
        for begin in range(0, len(sources), 256):
            outputs += model.translate_batch(vocabulary.sources(sources[begin:begin + 256]), max_length)
    else:
        outputs = [model.decode(vocabulary.sources([s])[0], max_length=max_length, beam=beam) for s in sources]
    return float(np.mean([vocabulary.decode(o) == target for o, (_, target) in zip(outputs, pairs)]))
