"""Argument types shared by the commands: each rejects a bad value with a message that says what
was expected."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(convert: Callable, accept: Callable, expected: str) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = expected
    return parse


positive_int = _number(int, lambda v: v > 0, "a positive integer")
at_least_two = _number(int, lambda v: v >= 2, "an integer >= 2")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: math.isfinite(v) and v > 0, "a positive number")
non_negative_float = _number(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
finite_float = _number(float, math.isfinite, "a number")
fraction = _number(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
