"""Losses. Each returns the loss as a Python float and its gradient with respect to the
prediction (same shape and dtype as the prediction), ready to feed a layer's `backward`.

    softmax_cross_entropy  l = -log softmax(z)_y = log sum_k exp(z_k) - z_y
    mse                    l = (p - t)^2
    bce_with_logits        l = max(x, 0) - x t + log(1 + exp(-|x|))  = -t log s - (1-t) log(1-s)
    gaussian_nll           l = 0.5 (u + (t - m)^2 exp(-u)) [+ 0.5 log 2 pi],  u = max(v, log eps),
                           v = log variance (the variance floored at eps, like PyTorch's)

Reduction. `reduction="mean"` averages l over the *counted* elements; `"sum"` adds them up.
If nothing counts (everything masked or ignored), the loss is 0.0 and every gradient is zero.

Masks. `mask` marks which elements count (True or 1) and which are padding (False or 0). It
covers the *leading* dimensions of the loss's elements and is broadcast over the rest, so a
(T, B) mask serves (T, B) targets for cross-entropy, (T, B, 1) or (T, B, F) predictions for the
other losses; a dimension of size 1 in the mask is broadcast too. Elements that do not count
never reach the loss: their values may be anything (NaN padding, out-of-range class ids), and
their gradient is exactly zero.
"""

from __future__ import annotations

import math

import numpy as np

from .ops import sigmoid

__all__ = ["softmax_cross_entropy", "mse", "bce_with_logits", "gaussian_nll"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def softmax_cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> tuple[float, np.ndarray]:
    """Cross-entropy of softmax(logits) against integer class ids.

    logits (..., V), targets (...) integers in [0, V), mask (...) or a leading part of it.
    A position counts when its mask is true and its target is not `ignore_index`; N counted:

        l_i = log sum_k exp(z_ik - max_k z_ik) - (z_iy - max_k z_ik)
        loss = (1/N) sum_i l_i                          (reduction="mean"; "sum" drops 1/N)
        dloss/dz_ik = (softmax(z_i)_k - [k = y_i]) / N  at counted positions, 0 elsewhere

    Targets are checked only where they count, so padding may hold any id.
    """
    logits = _as_float(logits)
    targets = np.asarray(targets)
    _check_reduction(reduction)
    if logits.ndim == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have shape (..., V) with V >= 1, got {logits.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be integer class ids, got dtype {targets.dtype}")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"targets of shape {targets.shape} do not fit logits of shape {logits.shape}; "
            f"expected targets of shape {logits.shape[:-1]}"
        )
    num_classes = logits.shape[-1]
    counted = _counted(mask, targets.shape, "targets")
    if ignore_index is not None:
        kept = targets != ignore_index
        counted = kept if counted is None else counted & kept

    flat_logits = logits.reshape(-1, num_classes)
    flat_targets = targets.reshape(-1)
    if counted is None:
        rows = None
        z, y = flat_logits, flat_targets
    else:
        rows = np.flatnonzero(counted)
        z, y = flat_logits[rows], flat_targets[rows]
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        first = int(np.argmax(bad))
        row = first if rows is None else int(rows[first])
        where = tuple(int(i) for i in np.unravel_index(row, targets.shape))
        raise ValueError(
            f"target {int(y[first])} at position {where} is outside [0, {num_classes})"
            + ("" if ignore_index is None else f" and is not ignore_index={ignore_index}")
        )
    n = y.shape[0]
    if n == 0:
        return 0.0, np.zeros(logits.shape, dtype=logits.dtype)
    scale = 1.0 / n if reduction == "mean" else 1.0

    # log-softmax with the maximum subtracted, keeping exp() for the gradient so that the
    # (N, V) array is exponentiated once; everything happens in place in one buffer.
    steps = np.arange(n)
    shifted = z - z.max(axis=1, keepdims=True)  # (N, V)
    target_shifted = shifted[steps, y]  # (N,)
    probs = np.exp(shifted, out=shifted)
    total = probs.sum(axis=1, keepdims=True)  # (N, 1)
    loss = float((np.log(total[:, 0]) - target_shifted).sum(dtype=np.float64)) * scale
    probs /= total
    probs[steps, y] -= 1.0
    probs *= scale
    if rows is None:
        return loss, probs.reshape(logits.shape)
    grad = np.zeros(logits.shape, dtype=logits.dtype)
    grad.reshape(-1, num_classes)[rows] = probs
    return loss, grad


def mse(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    reduction: str = "mean",
) -> tuple[float, np.ndarray]:
    """Mean squared error; pred and target have the same shape, mask its leading part.

        loss = (1/N) sum_i (p_i - t_i)^2        dloss/dp_i = 2 (p_i - t_i) / N

    over the N counted elements (a (T, B) mask over (T, B, F) predictions counts F per step).
    """
    pred = _as_float(pred)
    target = np.asarray(target)
    _check_reduction(reduction)
    _check_same_shape(pred, target, "pred", "target")
    counted = _counted(mask, pred.shape, "pred")
    scale = _scale(counted, pred.size, reduction)
    target = target.astype(pred.dtype, copy=False)
    if counted is not None:
        pred, target = _zero_outside(pred, counted), _zero_outside(target, counted)
    diff = pred - target
    loss = float(np.square(diff).sum(dtype=np.float64)) * scale
    return loss, diff * (2.0 * scale)


def bce_with_logits(
    logits: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    reduction: str = "mean",
) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1] (soft labels allowed).

        l_i = max(x_i, 0) - x_i t_i + log(1 + exp(-|x_i|))     (never overflows)
        loss = (1/N) sum_i l_i                  dloss/dx_i = (sigmoid(x_i) - t_i) / N
    """
    logits = _as_float(logits)
    target = np.asarray(target)
    _check_reduction(reduction)
    _check_same_shape(logits, target, "logits", "target")
    counted = _counted(mask, logits.shape, "logits")
    scale = _scale(counted, logits.size, reduction)
    target = target.astype(logits.dtype, copy=False)
    if counted is not None:
        logits, target = _zero_outside(logits, counted), _zero_outside(target, counted)
    elementwise = np.maximum(logits, 0.0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
    grad = sigmoid(logits) - target
    if counted is not None:
        elementwise = np.where(counted, elementwise, 0.0)
        grad = np.where(counted, grad, 0.0)
    loss = float(elementwise.sum(dtype=np.float64)) * scale
    grad *= scale
    return loss, grad


def gaussian_nll(
    mean: np.ndarray,
    log_var: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    full: bool = False,
    reduction: str = "mean",
    eps: float = 1e-6,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Negative log-likelihood of target under N(mean, max(exp(log_var), eps)), per element.

    Predicting the log-variance v keeps the variance positive; the floor eps (PyTorch's
    `gaussian_nll_loss` default) keeps 1/variance <= 1/eps, so neither the loss nor a gradient
    overflows however negative v gets (exp(-v) alone overflows float32 below v = -88.7).
    With u = max(v, log eps), the log of the floored variance:

        l_i = 0.5 (u_i + (t_i - m_i)^2 exp(-u_i))  [+ 0.5 log(2 pi) if full]
        loss = (1/N) sum_i l_i
        dloss/dm_i = (m_i - t_i) exp(-u_i) / N
        dloss/dv_i = 0.5 (1 - (t_i - m_i)^2 exp(-u_i)) / N   where v_i >= log eps, else 0

    The gradient is the exact derivative of this loss: below the floor the loss does not depend
    on v. (PyTorch clamps under no_grad, passing d/dvar straight through; the two gradients
    agree above the floor and both vanish well below it.)

    mean and target have the same shape; log_var has that shape too, or the same number of
    dimensions with some of size 1 (one variance shared along them, e.g. (T, B, 1) for (T, B, F)
    means), in which case its gradient is summed over the shared dimensions. N counts elements
    of `mean`. Returns (loss, grad_mean, grad_log_var).
    """
    mean = _as_float(mean)
    log_var = _as_float(log_var)
    target = np.asarray(target)
    _check_reduction(reduction)
    if not eps > 0:
        raise ValueError(f"the variance floor eps must be positive, got {eps}")
    _check_same_shape(mean, target, "mean", "target")
    if log_var.ndim != mean.ndim or any(v not in (1, m) for v, m in zip(log_var.shape, mean.shape)):
        raise ValueError(
            f"log_var of shape {log_var.shape} does not fit mean of shape {mean.shape}; "
            "give it the same shape, or size 1 along dimensions that share one variance"
        )
    counted = _counted(mask, mean.shape, "mean")
    scale = _scale(counted, mean.size, reduction)

    pairs = zip(log_var.shape, mean.shape)
    shared = tuple(d for d, (v, m) in enumerate(pairs) if v == 1 and m != 1)  # one variance
    target = target.astype(mean.dtype, copy=False)
    if counted is not None:
        used = counted.any(axis=shared, keepdims=True) if shared else counted
        mean, target = _zero_outside(mean, counted), _zero_outside(target, counted)
        log_var = _zero_outside(log_var, used)
    above_floor = log_var >= math.log(eps)
    floored = np.where(above_floor, log_var, log_var.dtype.type(math.log(eps)))  # u = max(v, log eps)
    inv_var = np.exp(-floored)  # <= 1/eps
    diff = mean - target
    scaled_square = diff * diff * inv_var  # (t - m)^2 / var, shape of mean
    elementwise = 0.5 * (floored + scaled_square)
    grad_mean = diff * inv_var
    grad_log_var = np.where(above_floor, 0.5 * (1.0 - scaled_square), 0.0)
    if counted is not None:
        elementwise = np.where(counted, elementwise, 0.0)
        grad_mean = np.where(counted, grad_mean, 0.0)
        grad_log_var = np.where(counted, grad_log_var, 0.0)
    count = mean.size if counted is None else int(np.count_nonzero(counted))
    total = float(elementwise.sum(dtype=np.float64)) + (_HALF_LOG_2PI * count if full else 0.0)

    if shared:
        grad_log_var = grad_log_var.sum(axis=shared, keepdims=True)
    grad_mean = (grad_mean * scale).astype(mean.dtype, copy=False)
    grad_log_var = (grad_log_var * scale).astype(log_var.dtype, copy=False)
    return total * scale, grad_mean, grad_log_var


# --- helpers -------------------------------------------------------------------------------


def _as_float(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def _check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_b} of shape {b.shape} does not match {name_a} of shape {a.shape}")


def _counted(mask: np.ndarray | None, shape: tuple[int, ...], what: str) -> np.ndarray | None:
    """The mask as a boolean array of `shape` (a broadcast view), or None for "all count"."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.ndim > len(shape) or any(m not in (1, s) for m, s in zip(mask.shape, shape)):
        raise ValueError(
            f"mask of shape {mask.shape} does not fit {what} of shape {shape}; "
            "it must match their leading dimensions (size 1 broadcasts)"
        )
    if mask.dtype != np.bool_:
        if not np.issubdtype(mask.dtype, np.number) or not np.all((mask == 0) | (mask == 1)):
            raise ValueError(f"mask must be boolean or hold only 0 and 1, got dtype {mask.dtype}")
        mask = mask != 0
    mask = mask.reshape(mask.shape + (1,) * (len(shape) - mask.ndim))
    return np.broadcast_to(mask, shape)


def _zero_outside(x: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """x with zeros where nothing counts, so padding (NaN, huge values) never enters arithmetic."""
    return np.where(counted, x, x.dtype.type(0))


def _scale(counted: np.ndarray | None, size: int, reduction: str) -> float:
    """The factor that turns a sum over counted elements into the requested reduction."""
    if reduction == "sum":
        return 1.0
    count = size if counted is None else int(np.count_nonzero(counted))
    return 1.0 / count if count else 0.0
