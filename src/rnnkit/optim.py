"""Optimizers and gradient clipping, with torch.optim's semantics.

Every optimizer updates `param.value` in place from `param.grad`, keeps the parameter's dtype, and
keeps its per-parameter state in arrays of that dtype. `state_dict()` returns only JSON-able values
plus numpy arrays (copies), so training resumes bit-exactly after `load_state_dict`:

    {"type": "Adam",                         # class name; loading into another class fails
     "hyperparameters": {"lr": 0.001, "betas": [0.9, 0.999], ...},  # restored on load
     "step_count": 7,                         # steps taken (int); bias corrections, lr_decay
     "state": [{"exp_avg": ndarray, "exp_avg_sq": ndarray}, ...]}   # one dict per parameter

The arrays in "state" (and only those) belong in a safetensors file, e.g. under the key
f"state.{index}.{name}"; the rest is JSON. Buffer names per optimizer: SGD "momentum_buffer" (if
momentum); Adagrad "sum"; RMSprop "square_avg", "grad_avg" (if centered), "momentum_buffer" (if
momentum); Adam/AdamW "exp_avg", "exp_avg_sq", "max_exp_avg_sq" (if amsgrad).

Learning-rate schedules live in `rnnkit.schedules`. `set_lr_scale(params, scale)` gives some
parameters a multiple of `lr` (ULMFiT's discriminative fine-tuning, Howard & Ruder 2018); scale 0
freezes them: they are skipped, their value and buffers unchanged (torch's `requires_grad=False`).
The scales are a training plan's, not saved in `state_dict()`; each parameter counts its own
updates (Adam's bias corrections), and a loaded state gives every parameter its `step_count`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from . import kernels
from .module import Parameter

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "clip_grad_norm",
           "clip_grad_value"]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_same_keys(got: Mapping, expected: Iterable[str], what: str) -> None:
    _require(isinstance(got, Mapping) and set(got) == set(expected),
             f"{what} has keys {sorted(map(str, got))}, expected {sorted(expected)}")


def _plain(value):
    """A hyperparameter as a plain Python value (numpy scalars would upcast float32 arrays)."""
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    return value.item() if isinstance(value, np.generic) else value


def _count(value, name: str, minimum: int = 0) -> int:
    is_integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    _require(is_integer and value >= minimum, f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class _Configurable:
    """Hyperparameters kept as attributes, validated by `_validate` (range checks named in the
    class tuples below, plus any a subclass adds), saved with a type tag."""

    _positive: tuple[str, ...] = ()
    _non_negative: tuple[str, ...] = ()
    _counts: dict[str, int] = {}  # integer hyperparameter -> its minimum

    def _set_hyperparameters(self, hp: Mapping) -> None:
        hp = {k: _plain(v) for k, v in hp.items()}
        self._validate(hp)
        self._hyperparameter_names = tuple(hp)
        for name, value in hp.items():
            setattr(self, name, value)

    def _validate(self, hp: Mapping) -> None:
        for k in self._positive:
            _require(hp[k] > 0, f"{k} must be positive, got {hp[k]}")
        for k in self._non_negative:
            _require(hp[k] >= 0, f"{k} must be non-negative, got {hp[k]}")
        for k, minimum in self._counts.items():
            _count(hp[k], k, minimum)

    def hyperparameters(self) -> dict:
        return {name: getattr(self, name) for name in self._hyperparameter_names}

    def _saved_hyperparameters(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v  # JSON has no tuples
                for k, v in self.hyperparameters().items()}

    def _read_saved(self, state: Mapping, keys: list[str]) -> dict:
        """Check a saved state's keys and type tag; return its validated hyperparameters."""
        name = type(self).__name__
        _check_same_keys(state, ["type", "hyperparameters"] + keys, f"{name} state")
        _require(state["type"] == name, f"state is for {state['type']}, not {name}")
        _check_same_keys(state["hyperparameters"], self._hyperparameter_names,
                         f"{name} hyperparameters")
        hp = {k: _plain(v) for k, v in state["hyperparameters"].items()}
        self._validate(hp)
        return hp


class Optimizer(_Configurable):
    """Base class: the parameter list, `lr` (a plain attribute that schedules overwrite),
    `zero_grad`, `step` and the state-dict plumbing. A subclass passes its hyperparameters (a dict,
    which become attributes) and implements `_validate`, `_buffer_names` and `_update`."""

    # lr 0 is allowed here (not in the constructor): a schedule may decay it to 0.
    _non_negative = ("lr",)

    def __init__(self, params: Iterable[Parameter], hyperparameters: dict):
        self.params = list(params)
        _require(len(self.params) > 0, "optimizer got an empty parameter list")
        _require(len({id(p) for p in self.params}) == len(self.params),
                 "optimizer got the same Parameter more than once")
        lr = _plain(hyperparameters["lr"])
        _require(lr > 0, f"lr must be positive, got {lr}")
        self._set_hyperparameters(hyperparameters)
        self.step_count = 0
        self.state = [self._initial_state(p.value) for p in self.params]
        self.lr_scales = [1.0] * len(self.params)
        self.param_steps = [0] * len(self.params)  # updates each parameter has had (frozen ones lag)

    def set_lr_scale(self, params: Iterable[Parameter], scale: float) -> None:
        """Update `params` (some of this optimizer's) with lr * scale from now on; 0 freezes them."""
        scale = _plain(scale)
        _require(np.isfinite(scale) and scale >= 0, f"an lr scale must be a finite number >= 0, got {scale}")
        index = {id(p): i for i, p in enumerate(self.params)}
        chosen = [index.get(id(p)) for p in params]
        _require(None not in chosen, "set_lr_scale got a parameter this optimizer does not update")
        for i in chosen:
            self.lr_scales[i] = float(scale)

    def _buffer_names(self, hp: Mapping) -> list[str]:
        raise NotImplementedError

    def _initial_state(self, value: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.zeros_like(value) for name in self._buffer_names(self.hyperparameters())}

    def _update(self, value: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad.fill(0.0)

    def step(self) -> None:
        """One update of every parameter from its current `grad`."""
        self.step_count += 1
        lr, count = self.lr, self.step_count
        try:
            for index, (p, state, scale) in enumerate(zip(self.params, self.state, self.lr_scales)):
                if scale == 0:
                    continue  # frozen
                # `_update` reads lr and step_count: a parameter's own count, as torch keeps one per
                # parameter, so that one unfrozen after k steps starts Adam's bias corrections (and
                # SGD's momentum buffer) afresh instead of taking steps up to sqrt(1 / (1 - beta2^k))
                # times too large while its second moment fills.
                self.param_steps[index] += 1
                self.lr, self.step_count = lr * scale, self.param_steps[index]
                self._update(p.value, p.grad, state)
        finally:
            self.lr, self.step_count = lr, count

    def state_dict(self) -> dict:
        return {"type": type(self).__name__, "hyperparameters": self._saved_hyperparameters(),
                "step_count": self.step_count,
                "state": [{k: v.copy() for k, v in s.items()} for s in self.state]}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore hyperparameters, step count and buffers (arrays are copied and converted to the
        parameter's dtype). Raises ValueError, leaving the optimizer unchanged, on any mismatch."""
        hp = self._read_saved(state, ["step_count", "state"])
        step_count = _count(state["step_count"], "step_count")
        saved_buffers = state["state"]
        _require(len(saved_buffers) == len(self.params), f"state has {len(saved_buffers)} "
                 f"parameter(s), this optimizer has {len(self.params)}")
        names = self._buffer_names(hp)
        loaded = []
        for index, (p, saved) in enumerate(zip(self.params, saved_buffers)):
            _check_same_keys(saved, names, f"state of parameter {index}")
            arrays = {k: np.array(saved[k], dtype=p.value.dtype) for k in names}
            for k, array in arrays.items():
                _require(array.shape == p.value.shape, f"state {k} of parameter {index} has shape "
                         f"{array.shape}, expected {p.value.shape}")
            loaded.append(arrays)
        for k, v in hp.items():
            setattr(self, k, v)
        self.step_count, self.state = step_count, loaded
        self.param_steps = [step_count] * len(self.params)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (torch.optim.SGD).

        g = grad + weight_decay * p
        b = g                                   on the first step
        b = momentum * b + (1 - dampening) * g  afterwards
        d = g + momentum * b  if nesterov  else  b      (d = g without momentum)
        p = p - lr * d
    """

    _non_negative = ("lr", "momentum", "weight_decay")

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      nesterov=nesterov, weight_decay=weight_decay))

    def _validate(self, hp):
        super()._validate(hp)
        _require(0 <= hp["dampening"] <= 1, f"dampening must be in [0, 1], got {hp['dampening']}")
        _require(not hp["nesterov"] or (hp["momentum"] > 0 and hp["dampening"] == 0),
                 "nesterov=True needs momentum > 0 and dampening == 0")

    def _buffer_names(self, hp):
        return ["momentum_buffer"] if hp["momentum"] != 0 else []

    def _update(self, value, grad, state):
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * value
        if self.momentum != 0:
            buffer = state["momentum_buffer"]
            if self.step_count == 1:
                buffer[...] = grad
            else:
                buffer *= self.momentum
                buffer += (1 - self.dampening) * grad
            grad = grad + self.momentum * buffer if self.nesterov else buffer
        value -= self.lr * grad


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad); t counts steps from 1, s starts at initial_accumulator_value.

        g = grad + weight_decay * p
        s = s + g * g
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)
    """

    _non_negative = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params, lr: float = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _buffer_names(self, hp):
        return ["sum"]

    def _initial_state(self, value):
        return {"sum": np.full_like(value, self.initial_accumulator_value)}

    def _update(self, value, grad, state):
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * value
        decayed_lr = self.lr / (1 + (self.step_count - 1) * self.lr_decay)
        state["sum"] += grad * grad
        std = np.sqrt(state["sum"])
        std += self.eps
        np.divide(grad, std, out=std)
        std *= decayed_lr
        value -= std


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop); v, m and b start at zero.

        g = grad + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        m = alpha * m + (1 - alpha) * g                 (centered only)
        d = sqrt(v - m * m) + eps  if centered  else  sqrt(v) + eps
        b = momentum * b + g / d;  p = p - lr * b        with momentum
        p = p - lr * g / d                               without
    """

    _non_negative = ("lr", "eps", "weight_decay", "momentum")

    def __init__(self, params, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _validate(self, hp):
        super()._validate(hp)
        _require(0 <= hp["alpha"] < 1, f"alpha must be in [0, 1), got {hp['alpha']}")

    def _buffer_names(self, hp):
        return (["square_avg"] + (["grad_avg"] if hp["centered"] else [])
                + (["momentum_buffer"] if hp["momentum"] > 0 else []))

    def _update(self, value, grad, state):
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * value
        square_avg = state["square_avg"]
        square_avg *= self.alpha
        square_avg += (1 - self.alpha) * grad * grad
        if self.centered:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - self.alpha) * (grad - grad_avg)  # torch's lerp_, same rounding
            denom = square_avg - grad_avg * grad_avg
            np.sqrt(denom, out=denom)
        else:
            denom = np.sqrt(square_avg)
        denom += self.eps
        np.divide(grad, denom, out=denom)
        if self.momentum > 0:
            buffer = state["momentum_buffer"]
            buffer *= self.momentum
            buffer += denom
            value -= self.lr * buffer
        else:
            denom *= self.lr
            value -= denom


class Adam(Optimizer):
    """Adam (torch.optim.Adam); m, v, v_max start at zero, t counts steps from 1.

        g = grad + weight_decay * p          (AdamW instead: p = p * (1 - lr * weight_decay))
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v);  v_hat = v_max if amsgrad else v
        p = p - lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)
    """

    decoupled_weight_decay = False
    _non_negative = ("lr", "eps", "weight_decay")

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def _validate(self, hp):
        super()._validate(hp)
        _require(len(hp["betas"]) == 2 and all(0 <= b < 1 for b in hp["betas"]),
                 f"betas must be two numbers in [0, 1), got {hp['betas']}")

    def _buffer_names(self, hp):
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if hp["amsgrad"] else [])

    def _update(self, value, grad, state):
        if kernels.available(value.dtype):  # the same arithmetic in one compiled pass
            kernels.load("adam").update(self, value, grad, state)
            return
        beta1, beta2 = self.betas
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                value *= 1 - self.lr * self.weight_decay
            else:
                grad = grad + self.weight_decay * value
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)  # torch's lerp_
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        second_moment = exp_avg_sq
        if self.amsgrad:
            second_moment = state["max_exp_avg_sq"]
            np.maximum(second_moment, exp_avg_sq, out=second_moment)
        step_size = self.lr / (1 - beta1 ** self.step_count)
        denom = np.sqrt(second_moment)
        denom /= (1 - beta2 ** self.step_count) ** 0.5
        denom += self.eps
        np.divide(exp_avg, denom, out=denom)
        denom *= step_size
        value -= denom


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW): before the Adam step,
    p = p * (1 - lr * weight_decay), and the gradient itself is not decayed."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    """Scale all gradients in place by max_norm / (norm + 1e-6) when that is below 1, where norm
    is the L2 norm of all gradients taken together (torch.nn.utils.clip_grad_norm_). Returns the
    norm before clipping."""
    _require(max_norm > 0, f"max_norm must be positive, got {max_norm}")
    params = list(params)
    total_norm = float(np.sqrt(sum(np.vdot(p.grad, p.grad) for p in params)))
    scale = max_norm / (total_norm + 1e-6)
    if scale < 1:
        for p in params:
            p.grad *= scale
    return total_norm


def clip_grad_value(params: Iterable[Parameter], clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    _require(clip_value > 0, f"clip_value must be positive, got {clip_value}")
    for p in params:
        np.clip(p.grad, -clip_value, clip_value, out=p.grad)
