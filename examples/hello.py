"""The lecture's first character-level model: a vocabulary of four letters (h, e, l, o), one-hot
inputs, an Elman RNN with 3 hidden units, trained to predict the next letter of "hello".

After training, give it "h" and let it write: it spells "hello". Runs in a few seconds.
"""

import numpy as np

import rnnkit
from rnnkit.layers import Linear
from rnnkit.losses import softmax_cross_entropy
from rnnkit.optim import Adam

text = "hello"
vocab = sorted(set(text))  # ['e', 'h', 'l', 'o']: sorted, so the same on every run
index = {ch: i for i, ch in enumerate(vocab)}
one_hot = np.eye(len(vocab), dtype=np.float32)

inputs = one_hot[[index[ch] for ch in text[:-1]]][:, None, :]  # (T=4, B=1, V=4): h e l l
targets = np.array([index[ch] for ch in text[1:]])[:, None]     # (T=4, B=1):     e l l o

rnn = rnnkit.RNN(len(vocab), 3, rng=0)
head = Linear(3, len(vocab), rng=1)
optimizer = Adam(rnn.parameters() + head.parameters(), lr=0.05)

for step in range(301):
    hidden, _, rnn_cache = rnn.forward(inputs)
    logits, head_cache = head.forward(hidden)
    loss, d_logits = softmax_cross_entropy(logits, targets)
    rnn.zero_grad()
    head.zero_grad()
    rnn.backward(head.backward(d_logits, head_cache), rnn_cache)
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step:3d}  loss {loss:.4f} nats/char")

# Let it write: feed each prediction back in, carrying the hidden state.
letter, state, written = "h", None, "h"
for _ in range(len(text) - 1):
    hidden, state, _ = rnn.forward(one_hot[index[letter]][None, None, :], state)
    letter = vocab[int(head.forward(hidden)[0].argmax())]
    written += letter
print(f"given 'h', the network writes: {written!r}")
