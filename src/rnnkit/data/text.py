"""Text for character-level models: reading a file safely, the vocabulary, the split.

The vocabulary is the sorted set of the text's characters (Unicode code points), so the same text
gives the same ids on every run and every machine (min-char-rnn's `list(set(text))` did not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

__all__ = ["Vocabulary", "read_text", "split_train_validation"]


def read_text(path: str | Path) -> str:
    """The whole file as text. FileNotFoundError if missing; ValueError if it is a directory,
    empty, binary (NUL bytes) or not UTF-8."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"text file {path} does not exist")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give a UTF-8 text file")
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
    """Tokens (characters) <-> ids, in sorted order."""

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if not tokens:
            raise ValueError("a vocabulary needs at least one token")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be distinct")
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}

    @classmethod
    def from_text(cls, text: Iterable[str]) -> "Vocabulary":
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def unknown(self, text: Iterable[str]) -> list[str]:
        """The tokens of `text` that are not in the vocabulary, sorted."""
        return sorted(set(text) - set(self.index))

    def encode(self, text: Iterable[str]) -> np.ndarray:
        """Ids of every token; ValueError naming the unseen ones if any is unknown."""
        try:
            return np.fromiter((self.index[token] for token in text), dtype=np.int64)
        except KeyError:
            unseen = "".join(self.unknown(text))
            raise ValueError(f"characters never seen in training: {unseen!r}") from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.tokens[int(i)] for i in ids)


def split_train_validation(ids: np.ndarray, validation_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Two contiguous blocks: the first 1 - f of the text for training, the last f for
    validation (a contiguous split keeps validation text unseen, unlike random windows)."""
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"the validation fraction must be in [0, 1), got {validation_fraction}")
    cut = len(ids) - int(round(len(ids) * validation_fraction))
    return ids[:cut], ids[cut:]
