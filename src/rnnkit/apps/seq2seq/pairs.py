"""Source/target string pairs for the encoder-decoder: generated tasks a user can check by eye,
or a TSV file of the user's own parallel data; and their conversion to padded id arrays.

- addition: "535+61" -> "596" (numbers below 1000)
- dates: "3 March 2021", "March 3, 2021" or "3 Mar 2021" -> "2021-03-03"
- reverse: "hello" -> "olleh" (lowercase words of 1-10 letters)
"""

from __future__ import annotations

import calendar
from pathlib import Path

import numpy as np

from rnnkit.conditioned import PAD, SPECIAL_TOKENS, teacher_forcing
from rnnkit.data.text import read_text

__all__ = ["TASKS", "generate_pairs", "read_pairs", "PairVocabulary"]

TASKS = ("addition", "dates", "reverse")
MONTHS = list(calendar.month_name)[1:]


def _addition(rng):
    a, b = rng.integers(0, 1000, 2)
    return f"{a}+{b}", str(a + b)


def _date(rng):
    year, month = int(rng.integers(1950, 2050)), int(rng.integers(1, 13))
    day = int(rng.integers(1, calendar.monthrange(year, month)[1] + 1))
    name = MONTHS[month - 1]
    form = int(rng.integers(3))
    source = [f"{day} {name} {year}", f"{name} {day}, {year}", f"{day} {name[:3]} {year}"][form]
    return source, f"{year:04d}-{month:02d}-{day:02d}"


def _reverse(rng):
    word = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), int(rng.integers(1, 11))))
    return word, word[::-1]


def generate_pairs(task: str, count: int, seed: int) -> list[tuple[str, str]]:
    """`count` distinct pairs of a generated task."""
    makers = {"addition": _addition, "dates": _date, "reverse": _reverse}
    if task not in makers:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)} or give a TSV file")
    rng = np.random.default_rng(seed)
    pairs: dict[str, str] = {}
    for _ in range(count * 20):
        if len(pairs) == count:
            break
        source, target = makers[task](rng)
        pairs.setdefault(source, target)
    return list(pairs.items())


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """Lines `source<TAB>target`; a line that is not exactly that, or has an empty side, is an
    error naming the line."""
    lines = read_text(path).splitlines()  # missing, empty, binary or not UTF-8: a clear error
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise ValueError(f"{path} line {number}: expected 'source<TAB>target', found {len(parts) - 1} tabs")
        source, target = parts
        if not source or not target:
            raise ValueError(f"{path} line {number}: the {'source' if not source else 'target'} is empty")
        pairs.append((source, target))
    if not pairs:
        raise ValueError(f"{path} has no pairs")
    return pairs


class PairVocabulary:
    """One character vocabulary for both sides: <pad>, <bos>, <eos>, then the sorted characters."""

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}

    @classmethod
    def from_pairs(cls, pairs) -> PairVocabulary:
        return cls(SPECIAL_TOKENS + sorted({c for source, target in pairs for c in source + target}))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"characters outside the vocabulary: {''.join(unknown)!r}")
        return [self.index[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.tokens[i] for i in ids if i >= len(SPECIAL_TOKENS))

    def sources(self, texts: list[str]) -> np.ndarray:
        """Padded source ids (N, S)."""
        encoded = [self.encode(text) for text in texts]
        ids = np.full((len(encoded), max(map(len, encoded))), PAD, dtype=np.int64)
        for row, tokens in enumerate(encoded):
            ids[row, : len(tokens)] = tokens
        return ids

    def arrays(self, pairs):
        """(sources (N, S), decoder inputs (N, L), targets (N, L), target mask (N, L))."""
        inputs, targets, mask = teacher_forcing([self.encode(target) for _, target in pairs])
        return self.sources([source for source, _ in pairs]), inputs, targets, mask


def training_pairs(data: str | Path | None, task: str | None, examples: int, test_frac: float,
                   seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]], str]:
    """(training pairs, held-out pairs, a name): a TSV file of pairs shuffled with `seed` and
    split by `test_frac`, or `examples` generated pairs of `task` plus 1,000 held out."""
    if data:
        pairs = read_pairs(data)
        held_out = max(1, int(round(len(pairs) * test_frac)))
        order = np.random.default_rng(seed).permutation(len(pairs))
        pairs = [pairs[i] for i in order]
        if len(pairs) <= held_out:
            raise ValueError(f"{data} has too few pairs to hold {held_out} out for testing")
        return pairs[:-held_out], pairs[-held_out:], str(data)
    name = task or "addition"
    pairs = generate_pairs(name, examples + 1000, seed)
    return pairs[:-1000], pairs[-1000:], name
