"""Keyword arguments of the Python API, checked as the command line's argument types check
options (`rnnkit.argtypes`): a bad value is one ValueError naming the argument, the value and
what was expected."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["check_arguments", "KINDS"]


def _integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
        and math.isfinite(value)


# name -> (test, what it expects), the same words as rnnkit.argtypes
KINDS = {
    "positive_int": (lambda v: _integer(v) and v > 0, "a positive integer"),
    "non_negative_int": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "positive_float": (lambda v: _real(v) and v > 0, "a positive number"),
    "non_negative_float": (lambda v: _real(v) and v >= 0, "a number >= 0"),
    "fraction": (lambda v: _real(v) and 0 <= v < 1, "a fraction in [0, 1)"),
    "probability": (lambda v: _real(v) and 0 < v < 1, "a probability in (0, 1)"),
    "bool": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    "finite_float": (_real, "a number"),
}


def check_arguments(values: Mapping, kinds: Mapping[str, str | tuple]) -> None:
    """Check every value that is not None: `kinds[name]` is a key of KINDS or a tuple of the
    allowed values. Raises ValueError("hidden=0: expected a positive integer") for the first bad
    one."""
    for name, kind in kinds.items():
        value = values.get(name)
        if value is None:
            continue
        if isinstance(kind, tuple):
            if value not in kind:
                raise ValueError(f"{name}={value!r}: expected one of {', '.join(map(repr, kind))}")
            continue
        test, expected = KINDS[kind]
        if not test(value):
            raise ValueError(f"{name}={value!r}: expected {expected}")
