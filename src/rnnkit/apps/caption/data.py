"""Captions for scikit-learn's bundled 8x8 handwritten digits (1,797 images; `rnnkit.data.digits`).

Each image gets one sentence, chosen by what the image shows: its digit, and whether it is
drawn with more ink than the median image of that digit ("a bold handwritten seven") or less
("a faint handwritten seven"). The digit word tests recognition; the adjective tests that the
caption depends on the image, not on the digit alone.
"""

from __future__ import annotations

import numpy as np

from rnnkit.conditioned import SPECIAL_TOKENS, teacher_forcing
from rnnkit.data.digits import load_digits

__all__ = ["DIGIT_WORDS", "caption_split", "digit_captions", "teacher_forced_captions", "word_vocabulary"]

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


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


def teacher_forced_captions(captions: list[str]):
    """(vocabulary, inputs, targets, mask): the captions' words as ids, each sentence fed one word
    behind the word it must predict (`rnnkit.conditioned.teacher_forcing`)."""
    vocabulary = word_vocabulary(captions)
    index = {word: i for i, word in enumerate(vocabulary)}
    return (vocabulary, *teacher_forcing([[index[w] for w in c.split()] for c in captions]))
