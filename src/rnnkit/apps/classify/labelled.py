"""Labelled sequences for many-to-one models: a TSV/CSV file of texts and labels, the fixed
80/10/10 split, the vocabulary of the training part, and padding.

A text becomes ids through a `Vocabulary` whose first two tokens are `<pad>` (id 0, what
padding holds) and `<unk>` (id 1, every token not kept), then the kept tokens of the *training*
part only, by count (ties in code-point order), each seen at least `min_freq` times, at most
`max_size` tokens in all. Texts of different lengths are padded at the end to the longest,
with a mask of the real steps:

    ids (N, T)      ids[i, :n_i] = text i's ids,  ids[i, n_i:] = <pad>
    mask (N, T)     mask[i, t] = t < n_i

Labels are names (strings); `LabelSet` numbers them 0 .. K-1 in sorted order (numerically when
every name is a number, so "2" comes before "10").
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.data.text import Vocabulary, read_text, tokenize

__all__ = ["PAD", "UNK", "LabelSet", "LabelledTexts", "TextEncoder", "build_vocabulary", "numeric_targets",
           "pad_ids", "read_labelled_file", "split_indices"]

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


@dataclass
class LabelledTexts:
    """Texts and their labels as read (label None for a file without the label column)."""

    texts: list[str]
    labels: list[str] | None
    source: str


def read_labelled_file(path: str | Path, text_column: str = "text", label_column: str | None = "label",
                       *, require_labels: bool = True) -> LabelledTexts:
    """Read a table with a header row: tab-separated for .tsv/.tab/.txt, comma-separated for
    .csv, otherwise tab if the header has a tab. `require_labels=False` makes the label column
    optional (labels None when it is absent). Raises FileNotFoundError for a missing file and
    ValueError for a missing column, a row without a text, or a file with no rows."""
    content = read_text(path)
    suffix = Path(path).suffix.lower()
    header_line = content.splitlines()[0] if content.splitlines() else ""
    comma = suffix == ".csv" or (suffix not in (".tsv", ".tab", ".txt") and "\t" not in header_line)
    delimiter = "," if comma else "\t"
    try:
        rows = list(csv.reader(io.StringIO(content, newline=""), delimiter=delimiter))
    except csv.Error as error:
        raise ValueError(f"{path} is not a readable {'CSV' if delimiter == ',' else 'TSV'} file ({error})") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError(f"{path} has no header row; the first line must name the columns")
    header = [cell.strip() for cell in rows[0]]
    columns = {name: index for index, name in enumerate(header)}
    where = f"{path} (columns: {', '.join(header)})"
    if text_column not in columns:
        raise ValueError(f"{where} has no text column {text_column!r}; name it with --text-column")
    has_labels = label_column is not None and label_column in columns
    if label_column is not None and not has_labels and require_labels:
        raise ValueError(f"{where} has no label column {label_column!r}; name it with --label-column")
    texts, labels = [], []
    for line, row in enumerate(rows[1:], start=2):  # "line" = row number, header = 1
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        text = row[columns[text_column]] if columns[text_column] < len(row) else ""
        if not text.strip():
            raise ValueError(f"{path} line {line} has an empty text; every row needs one")
        texts.append(text)
        if has_labels:
            label = row[columns[label_column]].strip() if columns[label_column] < len(row) else ""
            if not label:
                raise ValueError(f"{path} line {line} has an empty label; every row needs one")
            labels.append(label)
    if not texts:
        raise ValueError(f"{path} has a header but no rows")
    return LabelledTexts(texts, labels if has_labels else None, str(path))


def split_indices(count: int, seed: int = 0, fractions: tuple[float, float] = (0.1, 0.1)):
    """(train, validation, test) indices: a seeded permutation cut 80/10/10 (by default)."""
    validation_part, test_part = (int(round(count * f)) for f in fractions)
    if count - validation_part - test_part < 1 or validation_part < 1 or test_part < 1:
        raise ValueError(f"{count} examples are too few to split into training, validation and test parts; "
                         "give at least 10")
    order = np.random.default_rng(seed).permutation(count)
    train_end = count - validation_part - test_part
    return order[:train_end], order[train_end:train_end + validation_part], order[train_end + validation_part:]


class LabelSet:
    """Class names <-> ids 0 .. K-1 (sorted; numerically when all names are numbers)."""

    def __init__(self, names: Sequence[str]):
        self.names = [str(name) for name in names]
        if len(set(self.names)) != len(self.names):
            raise ValueError("class names must be distinct")
        self.index = {name: i for i, name in enumerate(self.names)}

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelSet:
        distinct = set(labels)
        if len(distinct) < 2:
            only = ", ".join(repr(d) for d in distinct) or "none"
            raise ValueError(f"the label column has {len(distinct)} class ({only}); a classifier needs at "
                             "least two (or use --regression for a numeric target)")
        try:
            ordered = sorted(distinct, key=float)
        except ValueError:
            ordered = sorted(distinct)
        return cls(ordered)

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, labels: Iterable[str]) -> np.ndarray:
        labels = list(labels)
        unseen = sorted(set(labels) - set(self.index))
        if unseen:
            shown = ", ".join(repr(u) for u in unseen[:5]) + (" ..." if len(unseen) > 5 else "")
            raise ValueError(f"label(s) {shown} never seen in training; the model knows "
                             f"{', '.join(repr(n) for n in self.names)}")
        return np.array([self.index[label] for label in labels], dtype=np.int64)


def numeric_targets(labels: Sequence[str], source: str) -> np.ndarray:
    """Labels as float targets for regression; ValueError naming the first that is not a number."""
    values = np.empty(len(labels), dtype=np.float64)
    for i, label in enumerate(labels):
        try:
            values[i] = float(label)
        except ValueError:
            raise ValueError(f"{source}: label {label!r} is not a number; regression needs numeric labels") from None
        if not math.isfinite(values[i]):
            raise ValueError(f"{source}: label {label!r} is not a finite number")
    if np.ptp(values) == 0:
        raise ValueError(f"{source}: every label is {values[0]:g}; regression needs targets that vary")
    return values


def build_vocabulary(token_lists: Iterable[Sequence[str]], *, min_freq: int = 1,
                     max_size: int | None = None) -> Vocabulary:
    """`<pad>`, `<unk>`, then the tokens seen at least `min_freq` times, most frequent first
    (ties in code-point order), at most `max_size` tokens in all (the two special ones included)."""
    if min_freq < 1:
        raise ValueError(f"the minimum frequency must be at least 1, got {min_freq}")
    if max_size is not None and max_size < 3:
        raise ValueError(f"a vocabulary needs room for <pad>, <unk> and one token, got a maximum size of {max_size}")
    counts = Counter(token for tokens in token_lists for token in tokens)
    for special in (PAD, UNK):
        counts.pop(special, None)
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    if max_size is not None:
        kept = kept[: max_size - 2]
    return Vocabulary([PAD, UNK, *kept], unknown=UNK)


@dataclass(frozen=True)
class TextEncoder:
    """How a text becomes tokens: `level` "words" (`rnnkit.data.text.tokenize`'s words, numbers
    and punctuation marks) or "chars"; lowercased first when `lowercase`; cut to the first
    `max_length` tokens when given (None: no limit)."""

    level: str = "words"
    lowercase: bool = True
    max_length: int | None = None

    def tokens(self, text: str) -> list[str]:
        tokens = tokenize(text.lower() if self.lowercase else text, self.level)
        if self.level == "words":
            tokens = [t for t in tokens if t != "\n"]
        return tokens if self.max_length is None else tokens[: self.max_length]

    def token_lists(self, texts: Sequence[str]) -> list[list[str]]:
        lists = [self.tokens(text) for text in texts]
        for i, tokens in enumerate(lists):
            if not tokens:
                raise ValueError(f"text {i + 1} ({texts[i][:40]!r}) has no {self.level[:-1]} to read; "
                                 "every text needs at least one")
        return lists


def pad_ids(id_lists: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Id sequences of different lengths -> (ids (N, T) padded with <pad> at the end, mask (N, T))."""
    lengths = np.array([len(ids) for ids in id_lists])
    if len(lengths) == 0 or lengths.min() < 1:
        raise ValueError("every sequence needs at least one token")
    ids = np.full((len(id_lists), int(lengths.max())), PAD_ID, dtype=np.int64)
    mask = np.arange(ids.shape[1])[None, :] < lengths[:, None]
    ids[mask] = np.concatenate(id_lists)
    return ids, mask
