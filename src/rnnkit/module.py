"""Parameters and modules.

A `Parameter` is a value with a gradient of the same shape. Backward passes *add* into `grad`
(never assign), so a weight used at many time steps, or shared by two modules, collects all of
its contributions; `zero_grad()` clears them between steps.

A `Module` finds its parameters by walking its public attributes in the order they were set, so
the names in `state_dict()` are the attribute names: a recurrent layer that stores
`self.weight_ih_l0` has exactly PyTorch's key `weight_ih_l0`. Attributes whose name starts with
an underscore are private and never walked (a layer keeps its cells there; the cells hold the
same Parameter objects, so nothing is counted twice).

`train()` / `eval()` set the mode of a module and all its submodules; `evaluating()` is eval mode
for one block only, after which every submodule is back in the mode it was in, so sampling or
decoding in the middle of training leaves the training mode alone (`runs_in_eval_mode` is the
same for a whole method).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping

import numpy as np

__all__ = ["Parameter", "Module", "check_cache", "runs_in_eval_mode"]


class Parameter:
    """A trainable array `value` and its accumulated gradient `grad`."""

    __slots__ = ("value", "grad")

    def __init__(self, value: np.ndarray):
        self.value = np.ascontiguousarray(value)
        self.grad = np.zeros_like(self.value)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    def __repr__(self) -> str:
        return f"Parameter(shape={self.value.shape}, dtype={self.value.dtype})"


class Module:
    """Base class: parameter discovery, gradients, state dicts, train/eval mode."""

    training: bool = True

    def named_parameters(self, prefix: str = "", _seen: set | None = None) -> Iterator[tuple[str, Parameter]]:
        """(name, Parameter) pairs in attribute order. A Parameter shared by two attributes (tied
        weights) is listed once, under its first name, so an optimizer updates it once."""
        seen = set() if _seen is None else _seen
        for name, attr in vars(self).items():
            if name.startswith("_"):
                continue
            if isinstance(attr, Parameter):
                if id(attr) not in seen:
                    seen.add(id(attr))
                    yield prefix + name, attr
            elif isinstance(attr, Module):
                yield from attr.named_parameters(f"{prefix}{name}.", seen)
            elif isinstance(attr, (list, tuple)):
                for index, item in enumerate(attr):
                    if isinstance(item, Module):
                        yield from item.named_parameters(f"{prefix}{name}.{index}.", seen)

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def modules(self) -> Iterator[Module]:
        yield self
        for name, attr in vars(self).items():
            if name.startswith("_"):
                continue
            children = attr if isinstance(attr, (list, tuple)) else [attr]
            for child in children:
                if isinstance(child, Module):
                    yield from child.modules()

    def named_generators(self, prefix: str = "") -> Iterator[tuple[str, np.random.Generator]]:
        """Every random Generator this module and its submodules draw from while running
        (dropout masks), by attribute path. Saving their states makes a resumed run draw the
        same masks as an uninterrupted one."""
        for name, attr in vars(self).items():
            if isinstance(attr, np.random.Generator):
                yield prefix + name, attr
            elif not name.startswith("_"):
                children = attr if isinstance(attr, (list, tuple)) else [attr]
                for index, child in enumerate(children):
                    if isinstance(child, Module):
                        label = f"{name}.{index}." if isinstance(attr, (list, tuple)) else f"{name}."
                        yield from child.named_generators(prefix + label)

    def random_state(self) -> dict[str, dict]:
        """The JSON-able states of `named_generators()`."""
        return {name: generator.bit_generator.state for name, generator in self.named_generators()}

    def set_random_state(self, states: Mapping[str, dict]) -> None:
        generators = dict(self.named_generators())
        if set(states) != set(generators):
            raise ValueError(f"random state names {sorted(states)} do not match this model's "
                             f"generators {sorted(generators)}")
        for name, state in states.items():
            generators[name].bit_generator.state = state

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad.fill(0.0)

    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[Module]:
        """`with model.evaluating():` eval mode inside the block; afterwards (even after an
        exception) each submodule is back in the mode it was in before."""
        modes = [(module, module.training) for module in self.modules()]
        self.eval()
        try:
            yield self
        finally:
            for module, training in modes:
                module.training = training

    def num_parameters(self) -> int:
        return sum(p.value.size for p in self.parameters())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter's value, keyed by name."""
        return {name: p.value.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Copy values in place. Every key must match a parameter, with the same shape; arrays
        are converted to the parameter's dtype (so a float64 state loads into a float32 model).
        Anything else raises ValueError naming the key, and leaves the module unchanged."""
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        extra = [k for k in state if k not in params]
        if missing:
            raise ValueError(f"state dict is missing key(s) {', '.join(missing)}")
        if extra:
            raise ValueError(f"state dict has unexpected key(s) {', '.join(extra)}")
        converted = {}
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.shape != p.value.shape:
                raise ValueError(
                    f"state dict key {name} has shape {value.shape}, expected {p.value.shape}"
                )
            converted[name] = value
        for name, p in params.items():
            p.value[...] = converted[name]


def runs_in_eval_mode(model_attribute: str | None = None) -> Callable:
    """Decorator of a method that runs a model in eval mode (sampling, decoding): during the call
    the model, `self` (or `self.<model_attribute>` for an object that holds one), is in eval mode;
    afterwards it is in the mode it was in (`Module.evaluating`)."""
    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            model = self if model_attribute is None else getattr(self, model_attribute)
            with model.evaluating():
                return method(self, *args, **kwargs)
        return run
    return decorate


def check_cache(module: Module, cache: object, kind: type, forward: str) -> None:
    """A one-line ValueError, before any gradient is added, when `cache` is not what this
    module's forward returned; `forward` shows the call that returns it."""
    name = type(module).__name__
    if not isinstance(cache, kind):
        raise ValueError(f"{name}.backward needs the cache that {name}.forward returned "
                         f"({forward}), got {'None' if cache is None else type(cache).__name__}")
    if getattr(cache, "owner", module) is not module:
        raise ValueError(f"{name}.backward got the cache of another module's forward; pass the one "
                         f"this {name}'s forward returned ({forward})")
