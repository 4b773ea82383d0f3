"""Property: a checkpoint loads back exactly as saved, and with any one byte changed anywhere
(length prefix, JSON header, tensor data) it is refused with the one-line corruption error."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rnnkit.checkpoint import load_checkpoint, save_checkpoint

DTYPES = [np.dtype(code) for code in ("<f4", "<f8", "<i8", "<u1", "?")]
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda name: name != "__metadata__")
arrays = st.sampled_from(DTYPES).flatmap(lambda dtype: hnp.arrays(
    dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    elements=hnp.from_dtype(dtype, allow_nan=False)))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8)
checkpoints = st.tuples(st.dictionaries(names, arrays, min_size=1, max_size=3),
                        st.dictionaries(st.text(max_size=8), json_values, max_size=4))


@settings(max_examples=40, deadline=None)
@given(checkpoint=checkpoints, where=st.floats(0.0, 1.0, exclude_max=True), flip=st.integers(1, 255))
def test_any_single_changed_byte_is_refused_as_corruption(checkpoint, where, flip):
    tensors, metadata = checkpoint
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "c.safetensors"
        save_checkpoint(path, tensors, metadata)
        loaded, loaded_metadata = load_checkpoint(path)
        assert loaded_metadata == metadata and loaded.keys() == tensors.keys()
        assert all(np.array_equal(loaded[name], tensors[name]) for name in tensors)

        data = bytearray(path.read_bytes())
        data[int(where * len(data))] ^= flip
        path.write_bytes(bytes(data))
        with pytest.raises(ValueError) as caught:
            load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message and "corrupted" in message, message
