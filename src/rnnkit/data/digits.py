"""scikit-learn's bundled 8x8 handwritten digits (1,797 images), read by two applications: the
classifier (each image as 8 steps of 8 pixels) and the captioner (each image as the context that
starts the decoder)."""

from __future__ import annotations

import numpy as np

from ..optional import require

__all__ = ["load_digits"]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 64) scaled to [0, 1], digits (N,))."""
    data = require("sklearn.datasets", "datasets", "the digits data set (from scikit-learn)").load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)
