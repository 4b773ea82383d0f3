"""Layers that act on every time step at once: Linear, Embedding, Dropout.

Each has an explicit backward, no autograd: `forward(...)` returns `(output, cache)`, and
`backward(grad_output, cache)` returns the gradient with respect to the input (None for integer
ids) and *adds* the parameter gradients into `param.grad`. Inputs are time-major (T, B, F), but
these layers accept any leading shape (..., F). A cache refers to the forward's input rather
than copying it, so do not modify that input in place before calling backward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batchshare import random_for_batch
from .init import as_generator, uniform_fan
from .module import Module, Parameter, check_cache

__all__ = ["Linear", "Embedding", "Dropout", "LinearCache", "EmbeddingCache", "DropoutCache"]


@dataclass(frozen=True, slots=True)
class LinearCache:
    x2d: np.ndarray  # (N, in_features): the input with every leading dimension stacked
    input_shape: tuple[int, ...]  # (..., in_features)


@dataclass(frozen=True, slots=True)
class EmbeddingCache:
    ids: np.ndarray  # (...) integer ids


@dataclass(frozen=True, slots=True)
class DropoutCache:
    mask: np.ndarray | None  # 0 or 1/(1-p) per element; None when dropout was the identity


class Linear(Module):
    """An affine map applied at every position: x (..., in_features) -> y (..., out_features).

        y = x W^T + b
        dx = dy W        dW += dy^T x        db += sum of dy over every position

    `weight` (out_features, in_features) and `bias` (out_features,) carry torch.nn.Linear's
    names and initialisation, U(-1/sqrt(in_features), 1/sqrt(in_features)), weight drawn first.
    A (T, B, in) input is stacked to (T*B, in), so the forward is one GEMM over all steps and
    so is each gradient. Inputs are converted to the layer's dtype, and so is the input gradient.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype=np.float32,
        rng: np.random.Generator | int = 0,
    ):
        _check_positive_int(in_features, "in_features")
        _check_positive_int(out_features, "out_features")
        dtype = _float_dtype(dtype)
        generator = as_generator(rng)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        weight = uniform_fan(generator, (out_features, in_features), in_features, dtype)
        self.weight = Parameter(weight)
        self.bias = None
        if bias:
            self.bias = Parameter(uniform_fan(generator, (out_features,), in_features, dtype))

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, LinearCache]:
        x = np.asarray(x, dtype=self.weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear expected input of shape (..., {self.in_features}), got {x.shape}"
            )
        x2d = x.reshape(-1, self.in_features)  # (N, in)
        y2d = x2d @ self.weight.value.T  # (N, out)
        if self.bias is not None:
            y2d += self.bias.value
        return y2d.reshape(x.shape[:-1] + (self.out_features,)), LinearCache(x2d, x.shape)

    def backward(self, grad_output: np.ndarray, cache: LinearCache) -> np.ndarray:
        check_cache(self, cache, LinearCache, "y, cache = linear.forward(x)")
        expected = cache.input_shape[:-1] + (self.out_features,)
        grad_output = np.asarray(grad_output, dtype=self.weight.dtype)
        if grad_output.shape != expected:
            raise ValueError(
                f"Linear.backward expected grad_output of shape {expected}, "
                f"got {grad_output.shape}"
            )
        g2d = grad_output.reshape(-1, self.out_features)  # (N, out)
        self.weight.grad += g2d.T @ cache.x2d
        if self.bias is not None:
            self.bias.grad += g2d.sum(axis=0)
        return (g2d @ self.weight.value).reshape(cache.input_shape)

    def __repr__(self) -> str:
        return (
            f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None})"
        )


class Embedding(Module):
    """A lookup table: integer ids (...) -> rows of `weight`, (..., embedding_dim).

        y[...] = W[ids[...]]
        dW[v] += sum of dy over every position whose id is v     (np.add.at: repeats accumulate)

    `weight` (num_embeddings, embedding_dim) is drawn from N(0, 1), like torch.nn.Embedding.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        dtype=np.float32,
        rng: np.random.Generator | int = 0,
    ):
        _check_positive_int(num_embeddings, "num_embeddings")
        _check_positive_int(embedding_dim, "embedding_dim")
        dtype = _float_dtype(dtype)
        generator = as_generator(rng)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        weight = generator.standard_normal((num_embeddings, embedding_dim)).astype(dtype)
        self.weight = Parameter(weight)

    def forward(self, ids: np.ndarray) -> tuple[np.ndarray, EmbeddingCache]:
        ids = np.asarray(ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"Embedding expects integer ids, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            bad = ids[(ids < 0) | (ids >= self.num_embeddings)][0]
            size = self.num_embeddings
            raise ValueError(
                f"Embedding got id {int(bad)}, outside the vocabulary of size {size} "
                f"(ids must lie in [0, {size}))"
            )
        return self.weight.value[ids], EmbeddingCache(ids)

    def backward(self, grad_output: np.ndarray, cache: EmbeddingCache) -> None:
        check_cache(self, cache, EmbeddingCache, "e, cache = embedding.forward(ids)")
        expected = cache.ids.shape + (self.embedding_dim,)
        grad_output = np.asarray(grad_output, dtype=self.weight.dtype)
        if grad_output.shape != expected:
            raise ValueError(
                f"Embedding.backward expected grad_output of shape {expected}, "
                f"got {grad_output.shape}"
            )
        rows = grad_output.reshape(-1, self.embedding_dim)  # (N, E)
        np.add.at(self.weight.grad, cache.ids.reshape(-1), rows)
        return None

    def __repr__(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"


class Dropout(Module):
    """Inverted dropout: in training mode each element is kept with probability 1 - p and scaled
    by 1/(1-p), so the expected output equals the input and eval mode needs no rescaling.

        training:  y = x * m,  m_i = [u_i >= p] / (1 - p),  u_i ~ U[0, 1)     dx = dy * m
        eval, or p == 0:  y = x,  dx = dy

    The mask m lives in the cache. The layer keeps its own Generator (from `rng`; pass a
    Generator to share one), so the draws are deterministic given the seed: the k-th
    training-mode forward of a layer built with the same seed draws the same mask for the same
    input shape.
    """

    def __init__(self, p: float, *, rng: np.random.Generator | int = 0):
        p = float(p)
        if not 0.0 <= p < 1.0:  # also rejects NaN
            raise ValueError(f"Dropout probability p must lie in [0, 1), got {p}")
        self.p = p
        self._rng = as_generator(rng)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, DropoutCache]:
        x = np.asarray(x)
        if not self.training or self.p == 0.0:
            return x, DropoutCache(None)
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
        keep = random_for_batch(self._rng, x.shape, dtype=np.float32) >= self.p
        mask = np.multiply(keep, 1.0 / (1.0 - self.p), dtype=dtype)
        return x * mask, DropoutCache(mask)

    def backward(self, grad_output: np.ndarray, cache: DropoutCache) -> np.ndarray:
        check_cache(self, cache, DropoutCache, "y, cache = dropout.forward(x)")
        grad_output = np.asarray(grad_output)
        if cache.mask is None:
            return grad_output
        if grad_output.shape != cache.mask.shape:
            raise ValueError(
                f"Dropout.backward expected grad_output of shape {cache.mask.shape}, "
                f"got {grad_output.shape}"
            )
        return grad_output * cache.mask

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


def _check_positive_int(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype must be a floating type such as float32 or float64, got {dtype}")
    return dtype
