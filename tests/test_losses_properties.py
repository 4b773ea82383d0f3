"""Properties of the losses at the edges: for extreme logits and log-variances every loss and
its gradients stay finite in float32, and in float64 they equal PyTorch's loss of the same
name (autograd gradients) on the same values.

"Extreme" here: logits up to +-1e37 for cross-entropy (their differences still fit in float32),
any finite float32 for binary cross-entropy, predictions up to +-1e18 for MSE (squares fit), and
log-variances up to +-1e30 (PyTorch is compared where exp(v) is a float64 number, v <= 700).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rnnkit.losses import bce_with_logits, gaussian_nll, mse, softmax_cross_entropy

torch.set_num_threads(1)
SETTINGS = settings(max_examples=30, deadline=None)
reductions = st.sampled_from(["mean", "sum"])
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def float32s(low: float, high: float, shape) -> st.SearchStrategy:
    """float32 arrays with elements in [low, high] (the bounds rounded inwards to float32)."""
    low, high = np.nextafter(np.float32(low), np.float32(0)), np.nextafter(np.float32(high), np.float32(0))
    return hnp.arrays(np.float32, shape, elements=st.floats(float(low), float(high), width=32))


def assert_finite(*values) -> None:
    for value in values:
        assert np.isfinite(value).all(), value


def assert_matches_torch(ours, loss: torch.Tensor, *leaves: torch.Tensor) -> None:
    """ours = (loss, grad, ...) against the torch loss and the gradients of its leaves."""
    loss.backward()
    expected = [loss.item()] + [leaf.grad.numpy() for leaf in leaves]
    for value, reference in zip(ours, expected):
        np.testing.assert_allclose(value, reference, rtol=1e-9, atol=1e-12)


def leaf(values: np.ndarray) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


@st.composite
def logits_and_classes(draw):
    rows, classes = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    logits = draw(float32s(-1e37, 1e37, (rows, classes)))
    return logits, draw(hnp.arrays(np.int64, rows, elements=st.integers(0, classes - 1)))


@SETTINGS
@given(case=logits_and_classes(), reduction=reductions)
def test_cross_entropy_is_finite_and_matches_torch(case, reduction):
    logits, classes = case
    assert_finite(*softmax_cross_entropy(logits, classes, reduction=reduction))
    ours = softmax_cross_entropy(logits.astype(np.float64), classes, reduction=reduction)
    z = leaf(logits)
    assert_matches_torch(ours, F.cross_entropy(z, torch.tensor(classes), reduction=reduction), z)


@SETTINGS
@given(case=shapes.flatmap(lambda shape: st.tuples(float32s(-1e18, 1e18, shape), float32s(-1e18, 1e18, shape))),
       reduction=reductions)
def test_mse_is_finite_and_matches_torch(case, reduction):
    pred, target = case
    assert_finite(*mse(pred, target, reduction=reduction))
    p = leaf(pred)
    ours = mse(pred.astype(np.float64), target.astype(np.float64), reduction=reduction)
    assert_matches_torch(ours, F.mse_loss(p, torch.tensor(target, dtype=torch.float64), reduction=reduction), p)


@SETTINGS
@given(case=shapes.flatmap(lambda shape: st.tuples(float32s(-3.4e38, 3.4e38, shape), float32s(0.0, 1.0, shape))),
       reduction=reductions)
def test_bce_with_logits_is_finite_and_matches_torch(case, reduction):
    logits, target = case
    assert_finite(*bce_with_logits(logits, target, reduction=reduction))
    x = leaf(logits)
    ours = bce_with_logits(logits.astype(np.float64), target.astype(np.float64), reduction=reduction)
    expected = F.binary_cross_entropy_with_logits(x, torch.tensor(target, dtype=torch.float64), reduction=reduction)
    assert_matches_torch(ours, expected, x)


@st.composite
def gaussians(draw, low: float, high: float):
    """(mean, log_var, target) float32, log_var of mean's shape or with shared (size-1) dims."""
    shape = draw(shapes)
    shared = draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    var_shape = tuple(1 if one else side for one, side in zip(shared, shape))
    return (draw(float32s(-1e3, 1e3, shape)), draw(float32s(low, high, var_shape)),
            draw(float32s(-1e3, 1e3, shape)))


@SETTINGS
@given(case=gaussians(-1e30, 1e30), full=st.booleans(), reduction=reductions)
def test_gaussian_nll_is_finite_for_any_log_variance(case, full, reduction):
    assert_finite(*gaussian_nll(*case, full=full, reduction=reduction))


@SETTINGS
@given(case=gaussians(-1e3, 700.0), full=st.booleans(), reduction=reductions)
def test_gaussian_nll_matches_torch(case, full, reduction):
    mean, log_var, target = (array.astype(np.float64) for array in case)
    ours = gaussian_nll(mean, log_var, target, full=full, reduction=reduction)
    m, v, t = leaf(mean), leaf(log_var), torch.tensor(target)
    expected = F.gaussian_nll_loss(m, t, torch.exp(v).expand_as(m), full=full, reduction=reduction, eps=1e-6)
    np.testing.assert_allclose(ours[0], expected.item(), rtol=1e-9, atol=1e-12)
    m, v = leaf(mean), leaf(log_var)  # the gradient of the floored loss: differentiate through the floor
    floored = torch.clamp(torch.exp(v), min=1e-6).expand_as(m)
    assert_matches_torch(ours, F.gaussian_nll_loss(m, t, floored, full=full, reduction=reduction, eps=1e-6), m, v)
