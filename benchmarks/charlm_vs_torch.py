"""The char-rnn main job trained twice in one process: by rnnkit and by torch.nn.LSTM.

Same architecture (embedding -> LSTM stack -> linear head), same initial weights (ours, copied
into torch by state dict), same batches (char-rnn's parallel streams, state carried and detached
between windows), same optimizer (Adam) and gradient clipping, same number of steps. Prints both
validation losses (nats/char on the same held-out text) and both training throughputs (medians
of per-step times), and their ratio.

    python benchmarks/charlm_vs_torch.py                      # Shakespeare, 300 steps
    python benchmarks/charlm_vs_torch.py --corpus python --steps 200 --hidden 128
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import environment_report

from rnnkit.apps.lm.model import LanguageModel
from rnnkit.data.batches import StreamBatches
from rnnkit.data.corpora import load_corpus
from rnnkit.data.text import Vocabulary, read_text, split_train_validation
from rnnkit.losses import softmax_cross_entropy
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam, clip_grad_norm


class TorchCharLM(torch.nn.Module):
    def __init__(self, vocabulary: int, embed: int, hidden: int, layers: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary, embed)
        self.rnn = torch.nn.LSTM(embed, hidden, layers)
        self.head = torch.nn.Linear(hidden, vocabulary)

    def forward(self, ids, state=None):
        hidden, state = self.rnn(self.embedding(ids), state)
        return self.head(hidden), state


def train_ours(model, batches, steps, lr, clip):
    optimizer = Adam(model.parameters(), lr=lr)
    state, times = None, []
    for step in range(steps):
        inputs, targets, _ = batches.batch(0, step % len(batches))
        if step % len(batches) == 0:
            state = None
        started = time.perf_counter()
        model.zero_grad()
        logits, state, cache = model.forward(inputs, state)
        _, d_logits = softmax_cross_entropy(logits, targets)
        model.backward(d_logits, cache)
        clip_grad_norm(model.parameters(), clip)
        optimizer.step()
        times.append(time.perf_counter() - started)
    return times


def train_torch(model, batches, steps, lr, clip):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    state, times = None, []
    for step in range(steps):
        inputs, targets, _ = batches.batch(0, step % len(batches))
        if step % len(batches) == 0:
            state = None
        inputs, targets = torch.from_numpy(inputs), torch.from_numpy(targets)
        started = time.perf_counter()
        optimizer.zero_grad()
        logits, state = model(inputs, state)
        state = tuple(s.detach() for s in state)  # truncated BPTT: carry the state, stop the gradient
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        times.append(time.perf_counter() - started)
    return times


@torch.no_grad()
def torch_validation_loss(model, ids, batch, seq_len):
    streams = StreamBatches(ids, batch, seq_len)
    total, count, state = 0.0, 0, None
    for inputs, targets, _ in streams.in_order():
        logits, state = model(torch.from_numpy(inputs), state)
        total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                   torch.from_numpy(targets).reshape(-1), reduction="sum").item()
        count += targets.size
    return total / count


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text_file", nargs="?")
    parser.add_argument("--corpus", default="shakespeare")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--clip", type=float, default=5.0)
    parser.add_argument("--val-chars", type=int, default=100_000, help="validation text length")
    args = parser.parse_args()

    text = read_text(args.text_file) if args.text_file else load_corpus(args.corpus)
    vocabulary = Vocabulary.from_text(text)
    ids = vocabulary.encode(text)
    train_ids, val_ids = split_train_validation(ids, min(0.5, args.val_chars / len(ids)))
    batches = StreamBatches(train_ids, args.batch, args.seq_len)

    config = NetworkConfig(len(vocabulary), len(vocabulary), hidden_size=args.hidden, num_layers=args.layers,
                           input_kind="embedding", embedding_size=args.embed)
    ours = SequenceNetwork(config, rng=0)
    theirs = TorchCharLM(len(vocabulary), args.embed, args.hidden, args.layers)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})

    print("\n".join(environment_report()))
    print(f"text: {len(text):,} characters, vocabulary {len(vocabulary)}; model: embedding {args.embed}, "
          f"{args.layers} x {args.hidden} LSTM; B={args.batch}, T={args.seq_len}, {args.steps} steps of Adam "
          f"(lr {args.lr}, clip {args.clip}); torch {torch.__version__}, {torch.get_num_threads()} threads")
    ours_times = train_ours(ours, batches, args.steps, args.lr, args.clip)
    time.sleep(0.2)  # let one library's thread pool go quiet before the other's starts
    torch_times = train_torch(theirs, batches, args.steps, args.lr, args.clip)

    val_batch = max(1, min(args.batch, (len(val_ids) - 1) // args.seq_len))
    ours_val = LanguageModel(ours, vocabulary).loss(text[len(train_ids):], batch=val_batch,
                                                    seq_len=args.seq_len)[0]
    torch_val = torch_validation_loss(theirs, val_ids, val_batch, args.seq_len)
    tokens = args.batch * args.seq_len
    ours_rate, torch_rate = tokens / np.median(ours_times), tokens / np.median(torch_times)
    print(f"{'':10s} {'val nats/char':>14s} {'tokens/s (median step)':>24s}")
    print(f"{'rnnkit':10s} {ours_val:14.4f} {ours_rate:24,.0f}")
    print(f"{'torch':10s} {torch_val:14.4f} {torch_rate:24,.0f}")
    print(f"rnnkit / torch throughput: {ours_rate / torch_rate:.2f}x; "
          f"validation loss difference {ours_val - torch_val:+.4f} nats/char")


if __name__ == "__main__":
    main()
