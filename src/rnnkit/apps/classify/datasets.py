"""The data side of `rnnkit classify`: named data sets and files become the encoded training,
validation and test parts of one fixed split, and a checkpoint's metadata turns new texts and
labels into the same ids.

    movie-reviews   rated movie-review sentences (`reviews.py`): the sign of the rating
                    ("negative" / "positive", zeros dropped), or the rating with --regression
    digits          scikit-learn's 8x8 digits read row by row: 8 steps of 8 pixels, class "0".."9"
    a TSV/CSV file  a text column and a label column (`labelled.py`)

The split is a seeded permutation cut 80/10/10 (SPLIT_SEED, fixed, so that changing the model's
--seed does not change the test sentences); the vocabulary comes from the training part only.

Language-model pretraining (`--pretrain-epochs`) reads the training part's texts and, with
`--unlabelled`, the other snippet sets of the reviews' archive as text only (`pretraining_text`),
in the training part's vocabulary (their other words are <unk>): never the validation or test
texts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.data.digits import load_digits
from rnnkit.data.text import Vocabulary

from . import reviews
from .labelled import (
    LabelSet,
    TextEncoder,
    build_vocabulary,
    numeric_targets,
    pad_ids,
    read_labelled_file,
    split_indices,
)
from .model import KIND

DATASETS = ("movie-reviews", "digits")
SPLIT_SEED = 0


@dataclass
class Source:
    """What was read: texts or feature sequences (N, T, F), and their labels (class names) or
    numbers (regression targets)."""

    name: str
    texts: list[str] | None = None
    features: np.ndarray | None = None
    labels: list[str] | None = None
    numbers: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts) if self.texts is not None else len(self.features)


@dataclass
class Part:
    """One part of the split, encoded: inputs (N, T) ids or (N, T, F) features, mask (N, T) of
    real steps, targets (N,) class ids or numbers; the raw texts for the bag-of-words baseline."""

    inputs: np.ndarray
    mask: np.ndarray
    targets: np.ndarray | None
    texts: list[str] | None

    def __len__(self) -> int:
        return len(self.inputs)


def load_dataset(name: str, *, regression: bool) -> Source:
    if name == "movie-reviews":
        rows = reviews.movie_reviews()
        if regression:
            return Source(name, texts=[text for _, text in rows], numbers=np.array([r for r, _ in rows]))
        kept = [(rating, text) for rating, text in rows if rating != 0]
        return Source(name, texts=[text for _, text in kept],
                      labels=["positive" if rating > 0 else "negative" for rating, _ in kept])
    if name == "digits":
        if regression:
            raise ValueError("digits is a classification data set; drop --regression")
        images, digits = load_digits()
        return Source(name, features=images.reshape(-1, 8, 8), labels=[str(d) for d in digits])
    raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)} or give a TSV/CSV file")


def load_file(path, text_column: str, label_column: str, *, regression: bool) -> Source:
    table = read_labelled_file(path, text_column, label_column)
    if regression:
        return Source(str(path), texts=table.texts, numbers=numeric_targets(table.labels, str(path)))
    return Source(str(path), texts=table.texts, labels=table.labels)


def prepare_training(source: Source, encoder: TextEncoder, *, min_freq: int, max_vocab: int | None,
                     text_column: str | None = None, label_column: str | None = None):
    """(train, validation, test parts, checkpoint metadata) of a source."""
    regression = source.numbers is not None
    labels = None if regression else LabelSet.from_labels(source.labels)
    targets = source.numbers if regression else labels.encode(source.labels)
    train, validation, test = split_indices(len(source), SPLIT_SEED)
    metadata = {"kind": KIND, "task": "regression" if regression else "classification",
                "source": source.name, "dataset": source.name if source.name in DATASETS else None,
                "text_column": text_column, "label_column": label_column, "split_seed": SPLIT_SEED,
                "labels": None if labels is None else labels.names}
    if source.texts is not None:
        token_lists = encoder.token_lists(source.texts)
        vocabulary = build_vocabulary([token_lists[i] for i in train], min_freq=min_freq, max_size=max_vocab)
        metadata.update(input="text", tokens=encoder.level, lowercase=encoder.lowercase,
                        max_length=encoder.max_length, vocabulary=vocabulary.tokens, feature_shape=None)

        def part(rows):
            ids, mask = pad_ids([vocabulary.encode(token_lists[i]) for i in rows])
            return Part(ids, mask, targets[rows], [source.texts[i] for i in rows])
    else:
        metadata.update(input="features", tokens=None, lowercase=None, max_length=None, vocabulary=None,
                        feature_shape=list(source.features.shape[1:]))

        def part(rows):
            inputs = source.features[rows]
            return Part(inputs, np.ones(inputs.shape[:2], dtype=bool), targets[rows], None)
    return part(train), part(validation), part(test), metadata


def pretraining_text(train: Part, metadata: dict, unlabelled: list[str] = (), *,
                     max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids (N, T), mask (N, T)) of the sentences a language model pretrains on: the training
    part's texts, then each named snippet set's (`reviews.SNIPPETS`), encoded as the model reads,
    each cut to its first `max_length` words (None: whole)."""
    if metadata["input"] != "text":
        raise ValueError(f"language-model pretraining reads text; {metadata['source']} is sequences of numbers")
    rows = [row[mask] for row, mask in zip(train.inputs, train.mask)]
    encoder = TextEncoder(metadata["tokens"], metadata["lowercase"], metadata["max_length"])
    vocabulary = Vocabulary(metadata["vocabulary"], unknown="<unk>")
    for name in unlabelled:
        token_lists = [encoder.tokens(text) for text in reviews.unlabelled_snippets(name)]
        rows += [np.asarray(vocabulary.encode(tokens)) for tokens in token_lists if tokens]  # no empty lines
    return pad_ids([row[:max_length] for row in rows])


def split_parts(source: Source, metadata: dict):
    """The (train, validation, test) indices of a named data set, as the checkpoint's run cut them."""
    return split_indices(len(source), metadata.get("split_seed", SPLIT_SEED))


def encode_source(source: Source, metadata: dict, rows=None) -> Part:
    """A source (or its `rows`) encoded the way the checkpoint's model reads: its vocabulary, its
    labels. ValueError for data of the wrong kind and labels never seen in training."""
    rows = np.arange(len(source)) if rows is None else rows
    if metadata["input"] == "features":
        if source.features is None:
            raise ValueError(f"this model reads sequences of {metadata['feature_shape'][1]} numbers (trained on "
                             f"{metadata['source']}), not text; use --dataset {metadata['source']}")
        inputs = source.features[rows]
        if list(inputs.shape[1:]) != metadata["feature_shape"]:
            raise ValueError(f"this model reads sequences of shape {metadata['feature_shape']}, "
                             f"got {list(inputs.shape[1:])}")
        inputs, mask = inputs, np.ones(inputs.shape[:2], dtype=bool)
        texts = None
    else:
        if source.texts is None:
            raise ValueError(f"this model reads text (trained on {metadata['source']}), not {source.name}")
        texts = [source.texts[i] for i in rows]
        inputs, mask = encode_texts(metadata, texts)
    return Part(inputs, mask, encode_targets(metadata, source, rows), texts)


def encode_texts(metadata: dict, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoder = TextEncoder(metadata["tokens"], metadata["lowercase"], metadata["max_length"])
    vocabulary = Vocabulary(metadata["vocabulary"], unknown="<unk>")
    return pad_ids([vocabulary.encode(tokens) for tokens in encoder.token_lists(texts)])


def encode_targets(metadata: dict, source: Source, rows) -> np.ndarray | None:
    """Class ids or numbers of the rows, None when the source has no labels."""
    if metadata["task"] == "regression":
        if source.numbers is None:
            if source.labels is None:
                return None
            return numeric_targets([source.labels[i] for i in rows], source.name)
        return source.numbers[rows]
    if source.labels is None:
        if source.numbers is not None:
            raise ValueError(f"this model is a classifier; {source.name} was read with numeric targets")
        return None
    return LabelSet(metadata["labels"]).encode([source.labels[i] for i in rows])


def read_for_model(metadata: dict, *, file=None, dataset: str | None = None, texts: list[str] | None = None,
                   text_column: str | None = None, label_column: str | None = None, need_labels: bool):
    """The data an eval or predict command names, encoded for the model: (part, description)."""
    given = [file is not None, dataset is not None, bool(texts)]
    if sum(given) > 1:
        raise ValueError("give one of a file, --dataset" + ("" if need_labels else " or --text"))
    if texts:
        source = Source("--text", texts=list(texts))
        for i, text in enumerate(source.texts):
            if not text.strip():
                raise ValueError(f"--text number {i + 1} is empty; give some text")
        return encode_source(source, metadata), "--text"
    if file is not None:
        text_column = text_column or metadata.get("text_column") or "text"
        label_column = label_column or metadata.get("label_column") or "label"
        table = read_labelled_file(file, text_column, label_column, require_labels=need_labels)
        source = Source(str(file), texts=table.texts, labels=table.labels)
        return encode_source(source, metadata), str(file)
    name = dataset or metadata.get("dataset")
    if name is None:
        raise ValueError(f"this model was trained on the file {metadata['source']}; give a file to "
                         f"{'score' if need_labels else 'label'}")
    source = load_dataset(name, regression=metadata["task"] == "regression")
    _, _, test = split_parts(source, metadata)
    return encode_source(source, metadata, test), f"{name} test part"
