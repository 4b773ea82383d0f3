"""The language model (Karpathy's char-rnn, or its word-level form): a recurrent network that
reads text one token (character or word) at a time and predicts the next,

    P(x_{t+1} | x_1 .. x_t) = softmax(y_t),   y_t = W_head h_t + b_head

trained by minimising the cross-entropy -log P(text), reported in nats per token (bits per token
= nats / ln 2; perplexity = exp(nats per token)).

Sampling draws each character from softmax(y_t / temperature) and feeds it back in: a
temperature below 1 sharpens the distribution (safer, more repetitive text), above 1 flattens it
(more surprising, more mistakes); top-k keeps only the k likeliest characters; greedy takes the
argmax.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnnkit.checkpoint import load_checkpoint
from rnnkit.data.batches import StreamBatches
from rnnkit.data.text import Vocabulary, describe_unseen, detokenize, tokenize
from rnnkit.init import as_generator
from rnnkit.module import runs_in_eval_mode
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.ops import log_softmax
from rnnkit.train import load_model_weights

__all__ = ["LanguageModel", "KIND"]

KIND = "char-lm"
STREAM_CHUNK = 64  # tokens drawn per call while generating: on_text hears of them in runs this long


class LanguageModel:
    """A `SequenceNetwork` over a vocabulary of characters (level "chars") or words ("words")."""

    def __init__(self, network: SequenceNetwork, vocabulary: Vocabulary, level: str = "chars"):
        if network.config.input_size != len(vocabulary) or network.config.output_size != len(vocabulary):
            raise ValueError(f"the network reads {network.config.input_size} and writes "
                             f"{network.config.output_size} symbols, the vocabulary has {len(vocabulary)}")
        tokenize("", level)  # validates the level
        self.network, self.vocabulary, self.level = network, vocabulary, level

    @property
    def unit(self) -> str:
        return "char" if self.level == "chars" else "word"

    def metadata(self) -> dict:
        """What a checkpoint must hold besides the weights to rebuild this model."""
        return {"kind": KIND, "vocabulary": self.vocabulary.tokens, "level": self.level,
                "unknown": self.vocabulary.unknown_token}

    @classmethod
    def load(cls, path: str | Path) -> LanguageModel:
        """Rebuild a language model from a training checkpoint (best or last)."""
        tensors, info = load_checkpoint(path)
        user = info.get("user") or {}
        if user.get("kind") != KIND or info.get("model") is None:
            raise ValueError(f"{path} is an rnnkit checkpoint, but not of a character-level language model")
        network = SequenceNetwork(NetworkConfig.from_dict(info["model"]))
        load_model_weights(network, tensors, path)
        network.eval()
        vocabulary = Vocabulary(user["vocabulary"], unknown=user.get("unknown"))
        return cls(network, vocabulary, user.get("level", "chars"))

    # --------------------------------------------------------------------------- sampling
    @runs_in_eval_mode("network")
    def generate(self, length: int, *, temperature: float = 1.0, top_k: int | None = None,
                 greedy: bool = False, prime: str = "", rng: np.random.Generator | int | None = None,
                 on_text: Callable[[str], None] | None = None) -> str:
        """`length` new tokens after `prime` (the prime is not counted nor returned), as text.
        `on_text` receives each token's text as it is made (streaming), in runs of up to
        `STREAM_CHUNK` tokens (the network draws that many per call). Without a prime the model
        starts from a newline if it knows one, else from a random token."""
        if length <= 0:
            raise ValueError(f"the sample length must be positive, got {length}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature} (use greedy for argmax)")
        if top_k is not None and top_k <= 0:
            raise ValueError(f"top-k must be positive, got {top_k}")
        rng = as_generator(rng)
        primed = tokenize(prime, self.level)
        if not primed:
            tokens = self.vocabulary.tokens
            primed = ["\n"] if "\n" in self.vocabulary.index else [tokens[rng.integers(len(tokens))]]
        ids = self.vocabulary.encode(primed)
        state = None
        for token in ids[:-1]:  # the prime's state; its last token drives the first prediction
            _, state = self.network.step(np.array([token]), state)
        token, written, previous = int(ids[-1]), [], primed[-1]
        for start in range(0, length, STREAM_CHUNK):  # chunks, so that on_text streams as it goes
            tokens, state = self.network.sample(token, min(STREAM_CHUNK, length - start), rng, state,
                                                temperature=temperature, top_k=top_k, greedy=greedy)
            for token in tokens.tolist():
                piece = self.vocabulary.tokens[token]
                written.append(piece)
                if on_text is not None:
                    on_text(detokenize([previous, piece], self.level)[len(previous):])
                previous = piece
        text = detokenize([primed[-1], *written], self.level)
        return text[len(primed[-1]):]

    # ------------------------------------------------------------------------- evaluation
    def require_known(self, text: str, where) -> None:
        """ValueError naming the characters (or words) of `text` that the model has never seen,
        unless its vocabulary maps them to <unk>; `where` says where the text came from."""
        unseen = self.vocabulary.unknown(tokenize(text, self.level))
        if unseen:
            raise ValueError(f"{where} has {describe_unseen(unseen)} that the model has never seen")

    @runs_in_eval_mode("network")
    def loss(self, text: str, *, batch: int = 16, seq_len: int = 256) -> tuple[float, int]:
        """(cross-entropy in nats per token, number of tokens predicted) of `text`, read as up to
        `batch` contiguous streams with the state carried, each at least `seq_len` tokens long (a
        short text is one stream: every stream starts from the zero state, so cutting a sentence
        into many short ones would score it nearly as bigrams). The fewer than `batch` final
        tokens that do not fill a stream are left out. Unknown characters raise ValueError;
        unknown words count as `<unk>`."""
        ids = self.vocabulary.encode(tokenize(text, self.level))
        if len(ids) < 2:
            raise ValueError(f"the text must have at least two {self.unit}s to predict one from the other")
        batch = max(1, min(batch, (len(ids) - 1) // seq_len))
        seq_len = max(1, min(seq_len, (len(ids) - 1) // batch))
        streams = StreamBatches(ids, batch, seq_len)
        total, count, state = 0.0, 0, None
        for inputs, targets, _ in streams.in_order():
            logits, state, _ = self.network.forward(inputs, state)
            log_probs = log_softmax(logits.astype(np.float64))
            total -= np.take_along_axis(log_probs, targets[..., None], axis=-1).sum()
            count += targets.size
        return total / count, count

    @staticmethod
    def report(nats: float) -> dict[str, float]:
        """Per token: nats, bits = nats / ln 2, perplexity = e^nats."""
        return {"nats": nats, "bits": nats / math.log(2), "perplexity": math.exp(nats)}
