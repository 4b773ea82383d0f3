"""Weight initialisers. Each takes an explicit `numpy.random.Generator` or an integer seed.

`as_generator` is the one place where an `rng=` argument becomes a Generator: every function and
class of rnnkit that takes `rng` accepts a Generator (drawn from, and so advanced) or an int
seed (a fresh `default_rng(seed)`), through it.

- `uniform_fan`: U(-1/sqrt(H), 1/sqrt(H)), what PyTorch's RNN/LSTM/GRU and Linear use.
- `glorot_uniform`: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010).
- `orthogonal`: a (semi-)orthogonal matrix from the QR decomposition of a Gaussian matrix
  (Saxe et al. 2014), applied per gate block for recurrent weights.
- `chrono_bias`: log(u), u ~ U(1, T_max - 1) per unit: Tallec & Ollivier's (2018) chrono
  initialisation of an LSTM's forget-gate bias (the cell sets b_i = -b_f; `rnnkit.cells.lstm`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_generator", "uniform_fan", "glorot_uniform", "orthogonal", "chrono_bias"]


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator or an integer seed. None means seed 0, so that an unseeded
    call is still reproducible rather than silently random."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy.random.Generator or an integer seed, got {type(rng).__name__}")


def uniform_fan(rng: np.random.Generator | int, shape: tuple[int, ...], fan: int, dtype=np.float32) -> np.ndarray:
    bound = 1.0 / np.sqrt(fan)
    return as_generator(rng).uniform(-bound, bound, size=shape).astype(dtype)


def glorot_uniform(rng: np.random.Generator | int, shape: tuple[int, int], dtype=np.float32) -> np.ndarray:
    fan_out, fan_in = shape
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return as_generator(rng).uniform(-bound, bound, size=shape).astype(dtype)


def orthogonal(rng: np.random.Generator | int, shape: tuple[int, int], dtype=np.float32) -> np.ndarray:
    rows, cols = shape
    gaussian = as_generator(rng).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(gaussian)
    q *= np.sign(np.diag(r))  # make the decomposition unique, so the draw is uniform
    if rows < cols:
        q = q.T
    return q[:rows, :cols].astype(dtype)


def chrono_bias(rng: np.random.Generator | int, hidden_size: int, max_lag: int, dtype=np.float32) -> np.ndarray:
    """b_f = log(u), u ~ U(1, max_lag - 1), one per unit (Tallec & Ollivier 2018, "Can recurrent
    neural networks warp time?"): with b_i = -b_f a unit's cell state at initialisation decays
    like f^t with f = sigmoid(b_f) = u / (1 + u), a characteristic time of about u steps, so the
    units' memories span 1 .. max_lag steps."""
    if not isinstance(max_lag, (int, np.integer)) or max_lag < 3:
        raise ValueError(f"chrono's max_lag (T_max) must be an integer >= 3, got {max_lag!r}")
    return np.log(as_generator(rng).uniform(1.0, max_lag - 1.0, hidden_size)).astype(dtype)
