"""Text for language models: reading a file safely, tokens, the vocabulary, the split.

A character vocabulary is the sorted set of the text's characters (Unicode code points), so the
same text gives the same ids on every run and every machine (min-char-rnn's `list(set(text))`
did not). A word vocabulary is the most frequent words of the training part, ordered by count
(ties alphabetically), plus `<unk>`, which stands for every other word.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..files import existing_file

__all__ = ["LEVELS", "UNKNOWN", "Vocabulary", "detokenize", "read_text", "split_train_validation", "tokenize"]

LEVELS = ("chars", "words")
UNKNOWN = "<unk>"
# A word (letters, with inner apostrophes: "ne'er"), a number, one punctuation mark, or a newline.
WORD = re.compile(r"\n|[^\W\d_]+(?:'[^\W\d_]+)*|\d+|[^\w\s]")


def tokenize(text: str, level: str) -> list[str]:
    if level == "chars":
        return list(text)
    if level == "words":
        return WORD.findall(text)
    raise ValueError(f"unknown token level {level!r}; choose one of {', '.join(LEVELS)}")


def detokenize(tokens: Iterable[str], level: str) -> str:
    """Characters join as they are; words join with spaces, except around line breaks."""
    if level == "chars":
        return "".join(tokens)
    return " ".join(tokens).replace(" \n ", "\n").replace("\n ", "\n").replace(" \n", "\n")


def read_text(path: str | Path) -> str:
    """The whole file as text. FileNotFoundError if missing; ValueError if it is a directory,
    empty, binary (NUL bytes) or not UTF-8."""
    path = existing_file(path, "text file")
    data = path.read_bytes()
    if not data:
        raise ValueError(f"text file {path} is empty; give a file with some text in it")
    if b"\x00" in data:
        raise ValueError(f"{path} looks binary (it contains NUL bytes); give a UTF-8 text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); "
                         "convert it to UTF-8 first") from None


class Vocabulary:
    """Tokens (characters or words) <-> ids: token i has id i, in the order the tokens are given
    (the constructor keeps that order; it sorts nothing). `from_text` gives the sorted characters,
    `from_words` the words by falling count, then `<unk>`. With an `unknown` token, unseen tokens
    encode as it; without one, they raise ValueError."""

    def __init__(self, tokens: Sequence[str], unknown: str | None = None):
        tokens = list(tokens)
        if not tokens:
            raise ValueError("a vocabulary needs at least one token")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be distinct")
        if unknown is not None and unknown not in tokens:
            raise ValueError(f"the unknown token {unknown!r} is not in the vocabulary")
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}
        self.unknown_token = unknown

    @classmethod
    def from_text(cls, text: Iterable[str]) -> Vocabulary:
        return cls(sorted(set(text)))

    @classmethod
    def from_words(cls, words: Iterable[str], max_size: int) -> Vocabulary:
        """The `max_size - 1` most frequent words, then `<unk>`."""
        if max_size < 2:
            raise ValueError(f"a word vocabulary needs room for at least one word and <unk>, got {max_size}")
        counts = Counter(words)
        counts.pop(UNKNOWN, None)
        ranked = sorted(counts, key=lambda word: (-counts[word], word))[: max_size - 1]
        return cls(ranked + [UNKNOWN], unknown=UNKNOWN)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def unknown(self, tokens: Iterable[str]) -> list[str]:
        """The tokens that are not in the vocabulary, sorted (none when it has `<unk>`)."""
        if self.unknown_token is not None:
            return []
        return sorted(set(tokens) - set(self.index))

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """Ids of every token. Unknown tokens become `<unk>` when the vocabulary has one, else
        raise ValueError naming them."""
        if self.unknown_token is not None:
            fallback = self.index[self.unknown_token]
            return np.fromiter((self.index.get(token, fallback) for token in tokens), dtype=np.int64)
        try:
            return np.fromiter((self.index[token] for token in tokens), dtype=np.int64)
        except KeyError:
            raise ValueError(f"{describe_unseen(self.unknown(tokens))} never seen in training") from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[int(i)] for i in ids]


def split_train_validation(ids: np.ndarray, validation_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Two contiguous blocks: the first 1 - f of the text for training, the last f for
    validation (a contiguous split keeps validation text unseen, unlike random windows)."""
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"the validation fraction must be in [0, 1), got {validation_fraction}")
    cut = len(ids) - int(round(len(ids) * validation_fraction))
    return ids[:cut], ids[cut:]


def describe_unseen(tokens: list[str]) -> str:
    """"characters 'xy'" or "words 'foo', 'bar'" (the first ten): unknown tokens named as what they are."""
    if all(len(token) == 1 for token in tokens):
        return f"characters {''.join(tokens)!r}"
    shown = ", ".join(repr(token) for token in tokens[:10])
    return f"words {shown}" + (f" and {len(tokens) - 10} more" if len(tokens) > 10 else "")
