"""The adding problem (Hochreiter & Schmidhuber 1997): 50 random numbers, two of them marked;
the answer, asked for at the last step, is the sum of the two marked ones. Always guessing the
mean scores an MSE of about 0.167; an LSTM trained with truncated BPTT(10, 50) and Adam learns
to remember the marked numbers across the whole sequence."""

import numpy as np

from rnnkit.data import ExampleBatches
from rnnkit.losses import mse
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam
from rnnkit.train import Trainer

rng = np.random.default_rng(0)
n, steps = 2048, 50
values = rng.uniform(0, 1, (n, steps))
marks = np.zeros((n, steps))
marks[np.arange(n)[:, None], np.argsort(rng.random((n, steps)), axis=1)[:, :2]] = 1
inputs = np.stack([values, marks], axis=2).astype(np.float32)  # (examples, steps, 2)
targets = np.zeros((n, steps, 1), np.float32)
targets[:, -1, 0] = (values * marks).sum(axis=1)  # the answer at the last step...
mask = np.zeros((n, steps), bool)
mask[:, -1] = True  # ...which is the only step that counts

model = SequenceNetwork(NetworkConfig(input_size=2, output_size=1, cell="lstm", hidden_size=32), rng=0)
trainer = Trainer(model, Adam(model.parameters(), lr=0.01), mse, k1=10, k2=50, clip_norm=1.0)
batches = ExampleBatches(inputs, targets, mask=mask, strategy="minibatch", batch_size=64, seed=0)


def report(trainer, record):
    if record["step"] % 100 == 0:
        print(f"step {record['step']:4d}  mse {record['loss']:.4f}")


trainer.callbacks.append(report)
trainer.fit(batches, steps=1500)
print(f"final mse over all {n} sequences: {trainer.evaluate(batches):.4f} (guessing the mean: 0.167)")
