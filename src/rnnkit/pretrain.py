"""Language-model pretraining of a sequence encoder (Dai & Le 2015, "Semi-supervised Sequence
Learning"): the embedding and recurrent stack that a many-to-one model will read with are first
trained, on unlabelled sentences, to predict each next word, and the task's head is then trained
on top of them with every weight fine-tuned. A bidirectional encoder learns both ways at once
(as ELMo's biLM): its forward direction predicts the next word, its reverse direction, which
reads the sentence backwards, the previous one, each through a softmax head of its own that is
thrown away afterwards.

    e_t = Embed(x_t);  [h_fwd(t) ; h_rev(t)] = recurrent stack(e_1 .. e_n)     (T, B, D*H)
    forward:   P(x_{t+1} | x_1 .. x_t) = softmax(W_fwd dropout(h_fwd(t)) + b_fwd),   t = 1 .. n-1
    reverse:   P(x_{t-1} | x_t .. x_n) = softmax(W_rev dropout(h_rev(t)) + b_rev),   t = 2 .. n
    loss = mean of -log P over every prediction of the batch                (padding never counts)

The softmax may cover only the `output_size` first words of the vocabulary (the commonest, when
ids are given by frequency), every other word being predicted as the unknown word: the heads'
products, the bulk of a step's work, shrink by V / output_size, and the encoder still reads
every word.

Each direction sees only its own side of the sentence, so neither can read the word it predicts;
that holds for one bidirectional layer only (a second layer reads both directions of the first),
so a deeper bidirectional stack is refused. The language model holds the encoder's own
`Parameter` objects: training it trains the encoder in place.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .data.batches import Padded
from .data.buckets import LengthBuckets
from .init import as_generator
from .layers import Dropout, Embedding, Linear
from .module import Module
from .optim import Adam
from .recurrent import RecurrentLayer
from .train import Trainer

__all__ = ["EncoderLanguageModel", "SentenceBatches", "pretrain_encoder"]


class EncoderLanguageModel(Module):
    """Next-word (and, reversed, previous-word) heads on an encoder's embedding and recurrent
    stack. `forward(Padded(ids (T, B), mask (T, B)))` returns (logits (T, B, D, V), final state,
    cache), V = output_size (default: the embedding's vocabulary); `loss(logits, targets, mask)`
    is the Trainer's loss_fn."""

    def __init__(self, embedding: Embedding, rnn: RecurrentLayer, *, dropout: float = 0.0,
                 rng: np.random.Generator | int | None = 0, output_size: int | None = None):
        if rnn.num_directions == 2 and rnn.num_layers > 1:
            raise ValueError("a bidirectional stack of more than one layer cannot be pretrained as a language model "
                             "(its second layer reads the words the first layer's other direction has seen); "
                             "use one layer or a unidirectional stack")
        if rnn.input_size != embedding.embedding_dim:
            raise ValueError(f"the recurrent stack reads {rnn.input_size} features, the embedding gives "
                             f"{embedding.embedding_dim}")
        rng = as_generator(rng)
        self.embedding, self.rnn = embedding, rnn
        self.output_size = embedding.num_embeddings if output_size is None else int(output_size)
        if not 2 <= self.output_size <= embedding.num_embeddings:
            raise ValueError(f"output_size must be between 2 and the vocabulary's {embedding.num_embeddings}, "
                             f"got {output_size}")
        self.dropout = Dropout(dropout, rng=rng)
        dtype = embedding.weight.dtype
        self.head = Linear(rnn.hidden_size, self.output_size, dtype=dtype, rng=rng)
        self.head_reverse = (Linear(rnn.hidden_size, self.output_size, dtype=dtype, rng=rng)
                             if rnn.num_directions == 2 else None)

    def forward(self, inputs: Padded, state=None):
        ids, mask = np.asarray(inputs.inputs), np.asarray(inputs.mask, dtype=bool)
        encoded, embed_cache = self.embedding.forward(np.where(mask, ids, 0))
        hidden, final, rnn_cache = self.rnn.forward(encoded, None, mask)  # (T, B, D*H)
        dropped, drop_cache = self.dropout.forward(hidden)
        size = self.rnn.hidden_size
        heads = [self.head] + ([self.head_reverse] if self.head_reverse is not None else [])
        logits, head_caches = [], []
        for direction, head in enumerate(heads):
            out, head_cache = head.forward(dropped[:, :, direction * size:(direction + 1) * size])
            logits.append(out)
            head_caches.append(head_cache)
        cache = (embed_cache, rnn_cache, drop_cache, head_caches)
        return np.stack(logits, axis=2), final, cache

    __call__ = forward

    @staticmethod
    def loss(logits: np.ndarray, ids: np.ndarray, mask: np.ndarray):
        """Mean cross-entropy of every prediction (module docstring): logits (T, B, D, V), ids (the
        words to predict, < V) and mask (T, B). Returns (loss, dloss/dlogits). One softmax over the whole array, written
        into the gradient's buffer (the vocabulary makes it the largest array of a step):

            p = softmax(z);  loss = -(1/N) sum log p[target];  dloss/dz = w (p - onehot(target)) / N
        with w = 1 where a prediction counts, else 0 (the first step of each direction, padding)."""
        ids, mask = np.asarray(ids), np.asarray(mask, dtype=bool)
        steps, batch, directions, size = logits.shape
        counted = np.zeros((steps, batch, directions), dtype=bool)
        targets = np.zeros((steps, batch, directions), dtype=np.int64)
        counted[:-1, :, 0], targets[:-1, :, 0] = mask[1:], ids[1:]  # forward: step t names word t+1
        if directions == 2:
            counted[1:, :, 1], targets[1:, :, 1] = mask[1:], ids[:-1]  # reverse: step t names word t-1
        total = int(counted.sum())
        if total == 0:
            return 0.0, np.zeros_like(logits)
        where = np.nonzero(counted)
        words = targets[where]
        if words.min() < 0 or words.max() >= size:
            raise ValueError(f"a word id is outside the vocabulary [0, {size})")
        grad = np.subtract(logits, logits.max(axis=-1, keepdims=True), out=np.empty_like(logits))
        target_shifted = grad[where + (words,)].astype(np.float64)  # z_target - max z
        np.exp(grad, out=grad)
        sums = grad.sum(axis=-1, keepdims=True)
        loss = float((np.log(sums[where][:, 0].astype(np.float64)) - target_shifted).sum())
        grad /= sums
        grad[where + (words,)] -= 1.0
        grad *= (counted / total).astype(grad.dtype)[..., None]
        return loss / total, grad

    def backward(self, d_logits: np.ndarray, cache, d_state=None):
        embed_cache, rnn_cache, drop_cache, head_caches = cache
        size = self.rnn.hidden_size
        d_dropped = np.empty(d_logits.shape[:2] + (size * len(head_caches),), dtype=d_logits.dtype)
        heads = [self.head, self.head_reverse]
        for direction, head_cache in enumerate(head_caches):
            d_dropped[:, :, direction * size:(direction + 1) * size] = heads[direction].backward(
                d_logits[:, :, direction], head_cache)
        d_hidden = self.dropout.backward(d_dropped, drop_cache)
        d_encoded, _ = self.rnn.backward(d_hidden, rnn_cache)
        self.embedding.backward(d_encoded, embed_cache)
        return None, None


class SentenceBatches(LengthBuckets):
    """Sentences of similar length batched for `EncoderLanguageModel`: each batch is
    (Padded(ids (T, B), mask (T, B)), words (T, B), mask), the words to predict being the ids
    themselves unless `words` (N, T) says otherwise (a smaller output vocabulary)."""

    def __init__(self, ids: np.ndarray, mask: np.ndarray, *, words: np.ndarray | None = None, batch_size: int = 32,
                 seed: int = 0):
        super().__init__(ids, mask, np.zeros(len(ids)), batch_size=batch_size, seed=seed)
        self.words = self.inputs if words is None else np.asarray(words)
        if self.words.shape != self.inputs.shape:
            raise ValueError(f"words {self.words.shape} must match the ids {self.inputs.shape}")

    def _select(self, rows: np.ndarray, steps: int):
        ids = np.swapaxes(self.inputs[rows, :steps], 0, 1)
        mask = np.swapaxes(self.mask[rows, :steps], 0, 1)
        return Padded(ids, mask), np.swapaxes(self.words[rows, :steps], 0, 1), mask


def pretrain_encoder(embedding: Embedding, rnn: RecurrentLayer, ids: np.ndarray, mask: np.ndarray, *, epochs: int,
                     batch_size: int = 32, lr: float = 1e-3, dropout: float = 0.0, clip: float | None = 5.0,
                     seed: int = 0, output_size: int | None = None, unknown_id: int = 1,
                     report: Callable[[int, float], None] | None = None) -> list[float]:
    """Train `embedding` and `rnn` in place as a language model of the sentences `ids` (N, T)
    padded at the end, `mask` (N, T) true on real words, for `epochs` passes (Adam, the
    gradient's global norm clipped). Sentences of one word predict nothing and are skipped.
    `output_size`: predict only ids below it, every other word as `unknown_id` (None: all).
    Returns the mean training loss (nats per predicted word) of each epoch; `report(epoch,
    loss)` is called after each."""
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs <= 0:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    ids, mask = np.asarray(ids), np.asarray(mask, dtype=bool)
    if ids.ndim != 2 or mask.shape != ids.shape:
        raise ValueError(f"ids and mask must be (sentences, steps) arrays of one shape, got {ids.shape} and "
                         f"{mask.shape}")
    kept = mask.sum(axis=1) >= 2
    if not kept.any():
        raise ValueError("no sentence has two words or more; a language model needs a word to predict")
    model = EncoderLanguageModel(embedding, rnn, dropout=dropout, rng=seed, output_size=output_size)
    if not 0 <= unknown_id < model.output_size:
        raise ValueError(f"unknown_id must be an id below output_size {model.output_size}, got {unknown_id}")
    ids, mask = ids[kept], mask[kept]
    words = np.where(ids < model.output_size, ids, unknown_id)
    batches = SentenceBatches(ids, mask, words=words, batch_size=batch_size, seed=seed)
    epoch_losses: list[float] = []
    step_losses: list[float] = []

    def collect(trainer, record) -> None:
        step_losses.append(record["loss"])
        if len(step_losses) == len(batches):
            epoch_losses.append(float(np.mean(step_losses)))
            step_losses.clear()
            if report is not None:
                report(len(epoch_losses), epoch_losses[-1])

    trainer = Trainer(model, Adam(model.parameters(), lr=lr), model.loss, clip_norm=clip or None, callbacks=[collect])
    trainer.fit(batches, epochs=epochs)
    model.train()
    return epoch_losses
