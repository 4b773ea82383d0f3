"""Linear, Embedding and Dropout: PyTorch parity (float64), finite differences, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gradcheck import numeric_gradient, relative_error

from rnnkit.layers import Dropout, Embedding, Linear
from rnnkit.module import Module

torch.set_num_threads(1)  # two cores shared with NumPy's BLAS; avoid two busy thread pools

TOL = dict(rtol=1e-10, atol=1e-10)


def close(a, b) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), **TOL)


def torch_state(module: Module) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(value) for name, value in module.state_dict().items()}


# --- Linear ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 3, 4), (4,), (2, 2, 3, 4)])
def test_linear_matches_torch(shape, bias):
    rng = np.random.default_rng(1)
    layer = Linear(4, 6, bias=bias, dtype=np.float64, rng=rng)
    reference = torch.nn.Linear(4, 6, bias=bias, dtype=torch.float64)
    reference.load_state_dict(torch_state(layer))  # same names and shapes as torch.nn.Linear

    x = rng.standard_normal(shape)
    upstream = rng.standard_normal(shape[:-1] + (6,))  # random, never all ones
    y, cache = layer.forward(x)
    dx = layer.backward(upstream, cache)

    x_t = torch.tensor(x, requires_grad=True)
    y_t = reference(x_t)
    y_t.backward(torch.tensor(upstream))
    close(y, y_t.detach().numpy())
    close(dx, x_t.grad.numpy())
    close(layer.weight.grad, reference.weight.grad.numpy())
    if bias:
        close(layer.bias.grad, reference.bias.grad.numpy())
    assert y.shape == shape[:-1] + (6,) and dx.shape == shape


def test_linear_backward_adds_into_grad():
    rng = np.random.default_rng(2)
    layer = Linear(3, 2, dtype=np.float64, rng=rng)
    x, upstream = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 2))
    _, cache = layer.forward(x)
    layer.backward(upstream, cache)
    once = [p.grad.copy() for p in layer.parameters()]
    layer.backward(upstream, cache)
    for p, g in zip(layer.parameters(), once):
        close(p.grad, 2.0 * g)
    layer.zero_grad()
    assert not any(p.grad.any() for p in layer.parameters())


def test_linear_finite_differences():
    rng = np.random.default_rng(3)
    layer = Linear(3, 4, dtype=np.float64, rng=rng)
    layer.bias.value[...] = rng.standard_normal(4)  # non-zero, not the init's scale
    x = rng.standard_normal((3, 2, 3))
    upstream = rng.standard_normal((3, 2, 4))

    def objective() -> float:  # L = sum(y * upstream), so dL/dy = upstream
        return float(np.sum(layer.forward(x)[0] * upstream))

    _, cache = layer.forward(x)
    dx = layer.backward(upstream, cache)
    analytic = {"x": dx, "weight": layer.weight.grad, "bias": layer.bias.grad}
    arrays = {"x": x, "weight": layer.weight.value, "bias": layer.bias.value}
    for name, array in arrays.items():
        error = relative_error(analytic[name], numeric_gradient(objective, array))
        assert error < 1e-6, (name, error)


def test_linear_init_like_torch():
    layer = Linear(256, 64, rng=7)
    bound = 1.0 / np.sqrt(256)
    assert layer.weight.dtype == np.float32 and layer.weight.shape == (64, 256)
    assert layer.bias.shape == (64,)
    for p in (layer.weight.value, layer.bias.value):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound
    assert abs(layer.weight.value.mean()) < 0.05 * bound  # centred
    np.testing.assert_array_equal(Linear(256, 64, rng=7).weight.value, layer.weight.value)
    assert not np.array_equal(Linear(256, 64, rng=8).weight.value, layer.weight.value)
    assert [name for name, _ in Linear(2, 3, bias=False).named_parameters()] == ["weight"]


def test_linear_float32_input_conversion():
    layer = Linear(3, 2, rng=0)
    y, cache = layer.forward(np.ones((2, 3)))  # float64 data into a float32 layer
    assert y.dtype == np.float32
    assert layer.backward(np.ones((2, 2)), cache).dtype == np.float32


def test_linear_shape_errors():
    layer = Linear(4, 6)
    with pytest.raises(ValueError, match=r"expected input of shape \(\.\.\., 4\), got \(3, 2, 5\)"):
        layer.forward(np.zeros((3, 2, 5)))
    with pytest.raises(ValueError, match="expected input"):
        layer.forward(np.float32(1.0))
    _, cache = layer.forward(np.zeros((3, 2, 4)))
    message = r"expected grad_output of shape \(3, 2, 6\), got \(3, 2, 4\)"
    with pytest.raises(ValueError, match=message):
        layer.backward(np.zeros((3, 2, 4)), cache)
    with pytest.raises(ValueError, match="in_features"):
        Linear(0, 3)
    with pytest.raises(ValueError, match="dtype"):
        Linear(2, 3, dtype=np.int32)


# --- Embedding -------------------------------------------------------------------------------


def test_embedding_matches_torch():
    rng = np.random.default_rng(4)
    V, E = 5, 3
    layer = Embedding(V, E, dtype=np.float64, rng=rng)
    reference = torch.nn.Embedding(V, E, dtype=torch.float64)
    reference.load_state_dict(torch_state(layer))
    ids = rng.integers(0, V, size=(7, 4))  # 28 ids over 5 rows: many repeats
    ids[0, :] = 2
    upstream = rng.standard_normal((7, 4, E))

    y, cache = layer.forward(ids)
    assert layer.backward(upstream, cache) is None
    y_t = reference(torch.tensor(ids))
    y_t.backward(torch.tensor(upstream))
    close(y, y_t.detach().numpy())
    close(layer.weight.grad, reference.weight.grad.numpy())
    # a second backward adds again
    layer.backward(upstream, cache)
    close(layer.weight.grad, 2.0 * reference.weight.grad.numpy())


def test_embedding_init_is_standard_normal():
    layer = Embedding(1000, 64, rng=3)
    w = layer.weight.value
    assert w.dtype == np.float32 and w.shape == (1000, 64)
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1.0) < 0.02
    np.testing.assert_array_equal(Embedding(1000, 64, rng=3).weight.value, w)


def test_embedding_errors():
    layer = Embedding(10, 3)
    with pytest.raises(ValueError, match=r"id 10, outside the vocabulary of size 10"):
        layer.forward(np.array([[1, 10], [3, 4]]))
    with pytest.raises(ValueError, match=r"id -1, outside the vocabulary of size 10"):
        layer.forward(np.array([0, -1]))
    with pytest.raises(ValueError, match="integer ids"):
        layer.forward(np.array([0.0, 1.0]))
    _, cache = layer.forward(np.array([[1, 2]]))
    message = r"expected grad_output of shape \(1, 2, 3\), got \(1, 2, 4\)"
    with pytest.raises(ValueError, match=message):
        layer.backward(np.zeros((1, 2, 4)), cache)


# --- Dropout ---------------------------------------------------------------------------------


def test_dropout_eval_mode_and_p_zero_are_identity():
    x = np.random.default_rng(5).standard_normal((4, 3, 2))
    layer = Dropout(0.5).eval()
    for module in (layer, Dropout(0.0)):
        y, cache = module.forward(x)
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(module.backward(2.0 * x, cache), 2.0 * x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_training_mask(p, dtype):
    rng = np.random.default_rng(6)
    x = rng.uniform(1.0, 2.0, size=(50, 40, 100)).astype(dtype)  # 200,000 non-zero elements
    layer = Dropout(p, rng=11)
    assert layer.training
    y, cache = layer.forward(x)
    kept = y != 0
    assert y.dtype == dtype
    assert abs(kept.mean() - (1.0 - p)) < 0.01  # std of the fraction is below 0.0012
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y[kept], x[kept] / (1.0 - p), rtol=rtol)

    upstream = rng.standard_normal(x.shape).astype(dtype)
    dx = layer.backward(upstream, cache)
    assert np.all(dx[~kept] == 0.0)
    np.testing.assert_allclose(dx[kept], upstream[kept] / (1.0 - p), rtol=rtol)


def test_dropout_is_deterministic_given_the_seed():
    x = np.ones((20, 8, 16))
    first, second = Dropout(0.3, rng=42), Dropout(0.3, rng=42)
    masks = [first.forward(x)[1].mask for _ in range(2)]
    np.testing.assert_array_equal(second.forward(x)[1].mask, masks[0])
    np.testing.assert_array_equal(second.forward(x)[1].mask, masks[1])
    assert not np.array_equal(masks[0], masks[1])  # successive calls draw fresh masks
    assert not np.array_equal(Dropout(0.3, rng=43).forward(x)[1].mask, masks[0])


def test_dropout_follows_train_and_eval():
    class Block(Module):
        def __init__(self):
            self.drop = Dropout(0.5)

    block = Block()
    x = np.ones((10, 10))
    block.eval()
    np.testing.assert_array_equal(block.drop.forward(x)[0], x)
    block.train()
    assert (block.drop.forward(x)[0] == 0).any()


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\)"):
        Dropout(p)


def test_dropout_backward_shape_error():
    layer = Dropout(0.5)
    _, cache = layer.forward(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"expected grad_output of shape \(3, 4\), got \(4, 3\)"):
        layer.backward(np.ones((4, 3)), cache)
