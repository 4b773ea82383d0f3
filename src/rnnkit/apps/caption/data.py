"""Captions for scikit-learn's bundled 8x8 handwritten digits (1,797 images).

Each image gets one sentence, chosen by what the image shows: its digit, and whether it is
drawn with more ink than the median image of that digit ("a bold handwritten seven") or less
("a faint handwritten seven"). The digit word tests recognition; the adjective tests that the
caption depends on the image, not on the digit alone.
"""

from __future__ import annotations

import numpy as np

from rnnkit.conditioned import SPECIAL_TOKENS
from rnnkit.optional import require

__all__ = ["DIGIT_WORDS", "digit_captions", "load_digits", "word_vocabulary"]

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 64) scaled to [0, 1], digits (N,))."""
    data = require("sklearn.datasets", "datasets", "the digits data set (from scikit-learn)").load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


def digit_captions(images: np.ndarray, digits: np.ndarray) -> list[str]:
    ink = images.sum(axis=1)
    captions = []
    for image_ink, digit in zip(ink, digits):
        median = np.median(ink[digits == digit])
        weight = "bold" if image_ink > median else "faint"
        captions.append(f"a {weight} handwritten {DIGIT_WORDS[digit]}")
    return captions


def word_vocabulary(sentences: list[str]) -> list[str]:
    """The special tokens, then every word in sorted order."""
    return SPECIAL_TOKENS + sorted({word for sentence in sentences for word in sentence.split()})


def caption_split(seed: int = 0, test_fraction: float = 0.2):
    """Images, digits, captions and a fixed, seeded train/test split of the indices."""
    images, digits = load_digits()
    captions = digit_captions(images, digits)
    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(round(len(images) * (1 - test_fraction)))
    return images, digits, captions, order[:cut], order[cut:]
