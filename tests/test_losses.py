"""Losses against PyTorch (float64, autograd gradients), masking, and error handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.losses import bce_with_logits, gaussian_nll, mse, softmax_cross_entropy

torch.set_num_threads(1)  # two cores shared with NumPy's BLAS; avoid two busy thread pools

TOL = dict(rtol=1e-10, atol=1e-10)


def close(a, b) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), **TOL)


def leaf(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def torch_loss_and_grads(loss: torch.Tensor, *leaves: torch.Tensor):
    loss.backward()
    return (loss.item(), *(t.grad.numpy() for t in leaves))


def torch_masked(elementwise: torch.Tensor, mask: np.ndarray, reduction: str) -> torch.Tensor:
    """The masked reduction done by hand: mask (leading dims) broadcast over the elements."""
    m = torch.tensor(mask, dtype=torch.float64)
    m = m.reshape(m.shape + (1,) * (elementwise.ndim - m.ndim)).expand_as(elementwise)
    total = (elementwise * m).sum()
    return total / m.sum() if reduction == "mean" else total


# --- softmax cross-entropy -------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape, V", [((7,), 5), ((4, 3), 6), ((3, 2, 2), 4)])
def test_cross_entropy_matches_torch(shape, V, reduction):
    rng = np.random.default_rng(1)
    logits = 3.0 * rng.standard_normal(shape + (V,))
    targets = rng.integers(0, V, size=shape)
    loss, grad = softmax_cross_entropy(logits, targets, reduction=reduction)
    z = leaf(logits)
    flat_targets = torch.tensor(targets.reshape(-1))
    expected = F.cross_entropy(z.reshape(-1, V), flat_targets, reduction=reduction)
    t_loss, t_grad = torch_loss_and_grads(expected, z)
    close(loss, t_loss)
    close(grad, t_grad)
    assert isinstance(loss, float) and grad.shape == logits.shape and grad.dtype == np.float64


@pytest.mark.parametrize("ignore_index", [-100, 0])
def test_cross_entropy_ignore_index_matches_torch(ignore_index):
    rng = np.random.default_rng(2)
    T, B, V = 6, 3, 5
    logits = 2.0 * rng.standard_normal((T, B, V))
    targets = rng.integers(0, V, size=(T, B))
    targets[rng.random((T, B)) < 0.3] = ignore_index
    loss, grad = softmax_cross_entropy(logits, targets, ignore_index=ignore_index)
    z = leaf(logits)
    flat_targets = torch.tensor(targets.reshape(-1))
    expected = F.cross_entropy(z.reshape(-1, V), flat_targets, ignore_index=ignore_index)
    t_loss, t_grad = torch_loss_and_grads(expected, z)
    close(loss, t_loss)
    close(grad, t_grad)
    assert np.all(grad[targets == ignore_index] == 0.0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("mask_dtype", [bool, np.float64])
def test_cross_entropy_mask_matches_torch_masked_mean(mask_dtype, reduction):
    rng = np.random.default_rng(3)
    T, B, V = 5, 4, 6
    logits = rng.standard_normal((T, B, V))
    targets = rng.integers(0, V, size=(T, B))
    mask = (rng.random((T, B)) < 0.6).astype(mask_dtype)
    loss, grad = softmax_cross_entropy(logits, targets, mask=mask, reduction=reduction)
    z = leaf(logits)
    flat_targets = torch.tensor(targets.reshape(-1))
    per_step = F.cross_entropy(z.reshape(-1, V), flat_targets, reduction="none")
    t_loss, t_grad = torch_loss_and_grads(torch_masked(per_step.reshape(T, B), mask, reduction), z)
    close(loss, t_loss)
    close(grad, t_grad)


def test_cross_entropy_mask_and_ignore_index_combine():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((4, 3, 5))
    targets = rng.integers(0, 5, size=(4, 3))
    targets[0, 0] = -1
    mask = np.ones((4, 3), dtype=bool)
    mask[3] = False
    loss, grad = softmax_cross_entropy(logits, targets, mask=mask, ignore_index=-1)
    both = mask & (targets != -1)
    ref_loss, ref_grad = softmax_cross_entropy(logits[both], targets[both])
    close(loss, ref_loss)
    close(grad[both], ref_grad)
    assert np.all(grad[~both] == 0.0)


def test_cross_entropy_masked_positions_change_nothing():
    rng = np.random.default_rng(5)
    T, B, V = 6, 3, 4
    logits = rng.standard_normal((T, B, V))
    targets = rng.integers(0, V, size=(T, B))
    mask = np.ones((T, B), dtype=bool)
    mask[4:, 1] = False  # a padded tail
    mask[2, 0] = False
    loss, grad = softmax_cross_entropy(logits, targets, mask=mask)

    logits2, targets2 = logits.copy(), targets.copy()
    logits2[~mask] = 1e30 * rng.standard_normal((np.count_nonzero(~mask), V))
    logits2[5, 1, 0] = np.nan
    targets2[~mask] = [-7, 99, 3]  # padding may hold any id, even out of range
    loss2, grad2 = softmax_cross_entropy(logits2, targets2, mask=mask)
    assert loss2 == loss
    np.testing.assert_array_equal(grad2, grad)
    assert np.all(grad[~mask] == 0.0)


def test_cross_entropy_nothing_counted_gives_zero():
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((3, 2, 4))
    targets = rng.integers(0, 4, size=(3, 2))
    cases = [
        dict(targets=targets, mask=np.zeros((3, 2), dtype=bool)),
        dict(targets=targets, mask=np.zeros(3)),  # a (T,) mask over (T, B) positions
        dict(targets=np.full((3, 2), 5), ignore_index=5),
    ]
    for case in cases:
        for reduction in ("mean", "sum"):
            loss, grad = softmax_cross_entropy(logits, reduction=reduction, **case)
            assert loss == 0.0 and grad.shape == logits.shape and not grad.any()


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [800.0, 799.0, -5e3]])
    targets = np.array([1, 0])
    loss, grad = softmax_cross_entropy(logits, targets)
    z = leaf(logits)
    t_loss, t_grad = torch_loss_and_grads(F.cross_entropy(z, torch.tensor(targets)), z)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    close(loss, t_loss)
    close(grad, t_grad)


def test_cross_entropy_float32_keeps_dtype():
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((5, 3, 8))
    targets = rng.integers(0, 8, size=(5, 3))
    loss64, grad64 = softmax_cross_entropy(logits, targets)
    loss32, grad32 = softmax_cross_entropy(logits.astype(np.float32), targets)
    assert grad32.dtype == np.float32
    np.testing.assert_allclose(loss32, loss64, rtol=1e-6)
    np.testing.assert_allclose(grad32, grad64, atol=1e-7)


def test_cross_entropy_errors():
    logits = np.zeros((3, 2, 4))
    good = np.zeros((3, 2), dtype=np.int64)
    bad = good.copy()
    bad[1, 1] = 4
    with pytest.raises(ValueError, match=r"target 4 at position \(1, 1\) is outside \[0, 4\)"):
        softmax_cross_entropy(logits, bad)
    bad[1, 1] = -1
    with pytest.raises(ValueError, match="target -1"):
        softmax_cross_entropy(logits, bad)
    with pytest.raises(ValueError, match="target -1 .* not ignore_index=-100"):
        softmax_cross_entropy(logits, bad, ignore_index=-100)
    with pytest.raises(ValueError, match=r"expected targets of shape \(3, 2\)"):
        softmax_cross_entropy(logits, np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        softmax_cross_entropy(logits, good.astype(float))
    with pytest.raises(ValueError, match="mask of shape"):
        softmax_cross_entropy(logits, good, mask=np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="only 0 and 1"):
        softmax_cross_entropy(logits, good, mask=np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="reduction"):
        softmax_cross_entropy(logits, good, reduction="none")


# --- mse and bce -----------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_matches_torch(reduction):
    rng = np.random.default_rng(10)
    pred, target = rng.standard_normal((2, 6, 3, 2))
    loss, grad = mse(pred, target, reduction=reduction)
    p = leaf(pred)
    expected = F.mse_loss(p, torch.tensor(target), reduction=reduction)
    t_loss, t_grad = torch_loss_and_grads(expected, p)
    close(loss, t_loss)
    close(grad, t_grad)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits_matches_torch(reduction):
    rng = np.random.default_rng(11)
    logits = 4.0 * rng.standard_normal((6, 3, 2))
    logits[0, 0] = [80.0, -80.0]  # saturated: the stable form must not overflow
    target = rng.random((6, 3, 2))  # soft labels
    target[1] = rng.random((3, 2)) < 0.5
    loss, grad = bce_with_logits(logits, target, reduction=reduction)
    x = leaf(logits)
    expected = F.binary_cross_entropy_with_logits(x, torch.tensor(target), reduction=reduction)
    t_loss, t_grad = torch_loss_and_grads(expected, x)
    close(loss, t_loss)
    close(grad, t_grad)


def test_bce_with_logits_is_finite_for_huge_logits():
    logits = np.array([1e4, -1e4, 750.0, -750.0], dtype=np.float32)
    loss, grad = bce_with_logits(logits, np.array([0.0, 1.0, 1.0, 0.0]))
    np.testing.assert_allclose(loss, (1e4 + 1e4) / 4, rtol=1e-6)
    np.testing.assert_allclose(grad, [0.25, -0.25, 0.0, 0.0], atol=1e-7)
    assert grad.dtype == np.float32


@pytest.mark.parametrize("F_", [1, 3])
@pytest.mark.parametrize("name", ["mse", "bce"])
def test_elementwise_losses_mask_matches_torch_masked_mean(name, F_):
    rng = np.random.default_rng(12)
    T, B = 5, 4
    pred = 2.0 * rng.standard_normal((T, B, F_))
    target = rng.random((T, B, F_))
    mask = rng.random((T, B)) < 0.6  # (T, B) over (T, B, F)
    ours = mse if name == "mse" else bce_with_logits
    theirs = F.mse_loss if name == "mse" else F.binary_cross_entropy_with_logits
    loss, grad = ours(pred, target, mask=mask)
    p = leaf(pred)
    elementwise = theirs(p, torch.tensor(target), reduction="none")
    t_loss, t_grad = torch_loss_and_grads(torch_masked(elementwise, mask, "mean"), p)
    close(loss, t_loss)
    close(grad, t_grad)


@pytest.mark.parametrize("name", ["mse", "bce"])
def test_elementwise_losses_masked_positions_change_nothing(name):
    ours = mse if name == "mse" else bce_with_logits
    rng = np.random.default_rng(13)
    pred = rng.standard_normal((6, 2, 3))
    target = rng.random((6, 2, 3))
    mask = np.ones((6, 2), dtype=np.float32)
    mask[4:, 0] = 0.0
    loss, grad = ours(pred, target, mask=mask)
    pred2, target2 = pred.copy(), target.copy()
    pred2[4:, 0] = 1e300
    target2[4:, 0] = np.nan  # e.g. missing values in a series
    loss2, grad2 = ours(pred2, target2, mask=mask)
    assert loss2 == loss
    np.testing.assert_array_equal(grad2, grad)
    assert not grad[4:, 0].any()


@pytest.mark.parametrize("name", ["mse", "bce", "gaussian"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_elementwise_losses_all_masked_give_zero(name, reduction):
    rng = np.random.default_rng(14)
    pred = rng.standard_normal((3, 2, 2))
    target = rng.random((3, 2, 2))
    mask = np.zeros((3, 2), dtype=bool)
    if name == "gaussian":
        loss, *grads = gaussian_nll(pred, pred, target, mask=mask, full=True, reduction=reduction)
    else:
        ours = mse if name == "mse" else bce_with_logits
        loss, *grads = ours(pred, target, mask=mask, reduction=reduction)
    assert loss == 0.0
    assert all(g.shape == pred.shape and not g.any() for g in grads)


@pytest.mark.parametrize("name", ["mse", "bce"])
def test_elementwise_losses_shape_errors(name):
    ours = mse if name == "mse" else bce_with_logits
    with pytest.raises(ValueError, match=r"target of shape \(3, 2\) does not match .* \(3, 2, 1\)"):
        ours(np.zeros((3, 2, 1)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="mask of shape"):
        ours(np.zeros((3, 2, 1)), np.zeros((3, 2, 1)), mask=np.ones((2,)))
    with pytest.raises(ValueError, match="reduction"):
        ours(np.zeros(3), np.zeros(3), reduction="avg")


def test_mse_float32_keeps_dtype():
    loss, grad = mse(np.ones((2, 3), dtype=np.float32), np.zeros((2, 3)))
    assert grad.dtype == np.float32 and loss == 1.0
    np.testing.assert_allclose(grad, 2.0 / 6.0, rtol=1e-7)


# --- gaussian nll ----------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("var_shape", [(5, 3, 2), (5, 3, 1)])
def test_gaussian_nll_matches_torch(full, reduction, var_shape):
    rng = np.random.default_rng(20)
    mean, target = rng.standard_normal((2, 5, 3, 2))
    log_var = rng.uniform(-2.0, 2.0, size=var_shape)  # var >= e^-2, far above torch's eps clamp
    loss, grad_mean, grad_log_var = gaussian_nll(
        mean, log_var, target, full=full, reduction=reduction
    )
    m, v = leaf(mean), leaf(log_var)
    var = torch.exp(v)
    expected = F.gaussian_nll_loss(m, torch.tensor(target), var, full=full, reduction=reduction)
    t_loss, t_grad_mean, t_grad_log_var = torch_loss_and_grads(expected, m, v)
    close(loss, t_loss)
    close(grad_mean, t_grad_mean)
    close(grad_log_var, t_grad_log_var)
    assert grad_log_var.shape == log_var.shape


@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_mask_matches_torch_masked_mean(full):
    rng = np.random.default_rng(21)
    T, B, F_ = 6, 3, 2
    mean, target = rng.standard_normal((2, T, B, F_))
    log_var = rng.uniform(-1.5, 1.5, size=(T, B, F_))
    mask = rng.random((T, B)) < 0.5
    loss, grad_mean, grad_log_var = gaussian_nll(mean, log_var, target, mask=mask, full=full)
    m, v = leaf(mean), leaf(log_var)
    var = torch.exp(v)
    elementwise = F.gaussian_nll_loss(m, torch.tensor(target), var, full=full, reduction="none")
    t_loss, t_gm, t_gv = torch_loss_and_grads(torch_masked(elementwise, mask, "mean"), m, v)
    close(loss, t_loss)
    close(grad_mean, t_gm)
    close(grad_log_var, t_gv)

    mean2, log_var2, target2 = mean.copy(), log_var.copy(), target.copy()
    mean2[~mask], log_var2[~mask], target2[~mask] = 1e10, -1e3, np.nan
    again = gaussian_nll(mean2, log_var2, target2, mask=mask, full=full)
    assert again[0] == loss
    np.testing.assert_array_equal(again[1], grad_mean)
    np.testing.assert_array_equal(again[2], grad_log_var)


def test_gaussian_nll_errors():
    with pytest.raises(ValueError, match="target of shape"):
        gaussian_nll(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3,)))
    with pytest.raises(ValueError, match=r"log_var of shape \(2, 3\)"):
        gaussian_nll(np.zeros((3, 2)), np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="log_var of shape"):
        gaussian_nll(np.zeros((3, 2)), np.zeros((2,)), np.zeros((3, 2)))


@pytest.mark.parametrize("error", [0.0, 1e-3, 2.0])
def test_gaussian_nll_floors_the_variance_like_torch(error):  # issue 19, defect 5
    """exp(-v) overflows float32 below v = -88.7: the variance floor eps keeps loss and gradients
    finite, equal to PyTorch's gaussian_nll_loss (eps=1e-6); the gradient is that of the floored
    loss (zero w.r.t. v below the floor)."""
    log_var = np.array([[-90.0], [-30.0], [-13.0], [0.5]])
    mean = np.zeros((4, 1)) + error
    target = np.zeros((4, 1))
    loss32, grad_mean32, grad_log_var32 = gaussian_nll(mean.astype(np.float32), log_var.astype(np.float32),
                                                       target.astype(np.float32))
    assert np.isfinite(loss32) and np.isfinite(grad_mean32).all() and np.isfinite(grad_log_var32).all()

    loss, grad_mean, grad_log_var = gaussian_nll(mean, log_var, target, full=True)
    m, v = leaf(mean), leaf(log_var)
    expected = F.gaussian_nll_loss(m, torch.tensor(target), torch.exp(v), full=True, eps=1e-6)
    close(loss, expected.item())
    np.testing.assert_allclose(loss32, gaussian_nll(mean, log_var, target)[0], rtol=1e-6)
    floored = torch.clamp(torch.exp(v), min=1e-6)  # the same loss, differentiated through the floor
    t_loss, t_grad_mean, t_grad_log_var = torch_loss_and_grads(
        F.gaussian_nll_loss(m, torch.tensor(target), floored, full=True, eps=1e-6), m, v)
    close(loss, t_loss)
    close(grad_mean, t_grad_mean)
    close(grad_log_var, t_grad_log_var)
    assert grad_log_var[0, 0] == grad_log_var[1, 0] == 0.0  # below the floor
    with pytest.raises(ValueError, match="eps must be positive"):
        gaussian_nll(mean, log_var, target, eps=0.0)
