"""Small texts with structure to learn, for the tests that train language models."""

from __future__ import annotations

import numpy as np


def markov_text(length: int, seed: int, alphabet: str = "abcd ef\n") -> str:
    """A text with structure to learn: each character mostly determines the next."""
    rng = np.random.default_rng(seed)
    transition = rng.dirichlet(np.full(len(alphabet), 0.2), size=len(alphabet))
    state, out = 0, []
    for _ in range(length):
        state = rng.choice(len(alphabet), p=transition[state])
        out.append(alphabet[state])
    return "".join(out)
