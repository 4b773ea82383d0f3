"""What the Python entry points of the compiled kernels share."""

from __future__ import annotations

import numpy as np

from ._padding import held_steps
from ._recurrent_dropout import mask_for_loop


def bias_or_zeros(param, rows: int, dtype) -> np.ndarray:
    """A bias Parameter's values, or zeros for a cell built with bias=False (the loops always add one)."""
    return param.value if param is not None else np.zeros(rows, dtype)


def output_gradients(d_outputs, batch: int, hidden: int, dtype) -> np.ndarray:
    """dL/dy as a contiguous (T, B, H) array, or an empty (0, B, H) one when the outputs got no
    gradient (the backward loops add dy only when it has steps)."""
    if d_outputs is None:
        return np.zeros((0, batch, hidden), dtype)
    return np.ascontiguousarray(d_outputs, dtype=dtype)


def loop_masks(cache, batch: int, dtype, feature_major: bool):
    """(held, dropped) for a backward loop, from the padding mask and the recurrent dropout mask
    a forward left in its cache (`_padding`, `_recurrent_dropout`)."""
    return (held_steps(getattr(cache, "mask", None), batch),
            mask_for_loop(getattr(cache, "recurrent_mask", None), dtype, feature_major))
