"""Tests of rnnkit.checkpoint: round trips, atomicity under kill -9, load errors, torch interop."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from rnnkit import checkpoint
from rnnkit.checkpoint import describe_difference, load_checkpoint, save_checkpoint

SRC = str(Path(__file__).resolve().parents[1] / "src")
# Written by rnnkit's format version 1 (checksum over the tensors only), before version 2.
VERSION_1_FILE = Path(__file__).parent / "fixtures" / "checkpoint_v1.safetensors"
VERSION_1_METADATA = {"model": {"input_size": 3, "output_size": 3, "cell": "lstm", "hidden_size": 2},
                      "optimizer": {"lr": 0.01, "step_count": 3},
                      "trainer": {"step": 3, "epoch": 0, "position": 3}}


def _header_length(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[:8], "little")


@pytest.fixture
def saved(tmp_path):
    """A valid checkpoint on disk, and the tensors and metadata it holds."""
    rng = np.random.default_rng(0)
    tensors = {"rnn.weight_ih_l0": rng.standard_normal((8, 3)).astype(np.float32),
               "optimizer/0/exp_avg": rng.standard_normal(200)}
    metadata = {"config": {"hidden_size": 2, "cell": "lstm"}, "step": 3}
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, tensors, metadata)
    return path, tensors, metadata


def test_round_trip_keeps_values_dtypes_shapes_and_nested_metadata(tmp_path):
    rng = np.random.default_rng(1)
    tensors = {
        "rnn.weight_ih_l0": rng.standard_normal((12, 5)).astype(np.float32),
        "rnn.bias_hh_l0": rng.standard_normal(12),
        "scalar": np.array(2.5),                                    # 0-d
        "empty": np.zeros((0, 3), dtype=np.int64),                  # no elements
        "optimizer/0/step": np.arange(24, dtype=np.int64).reshape(2, 3, 4),
        "strided": rng.standard_normal((6, 4)).astype(np.float32).T[::2],  # not contiguous
        "half": np.array([1.5, -2.0], dtype=np.float16),
        "mask": np.array([True, False]),
        "bytes": np.array([0, 255], dtype=np.uint8),
    }
    metadata = {"config": {"hidden_size": 4, "cell": "lstm", "sizes": [1, [2, 3]]}, "step": 7,
                "loss": 0.125, "resumable": True, "note": None, "name": "héllo"}
    path = tmp_path / "new" / "dir" / "model.safetensors"  # parent directories are created
    save_checkpoint(path, tensors, metadata)

    loaded, loaded_metadata = load_checkpoint(path)
    assert loaded.keys() == tensors.keys()
    for name, expected in tensors.items():
        assert loaded[name].dtype == expected.dtype, name
        assert loaded[name].shape == expected.shape, name
        assert np.array_equal(loaded[name], expected), name
        assert loaded[name].flags.writeable, name  # a resumed optimizer updates them in place
    assert loaded_metadata == metadata
    assert os.stat(path).st_mode & 0o777 == 0o644  # not mkstemp's private 0600
    assert os.listdir(path.parent) == ["model.safetensors"]  # no temporary file left


def test_big_endian_input_comes_back_as_the_same_values(tmp_path):
    values = np.arange(5, dtype=">f8")
    save_checkpoint(tmp_path / "c", {"w": values}, {})
    loaded = load_checkpoint(tmp_path / "c")[0]["w"]
    assert loaded.dtype == np.float64 and np.array_equal(loaded, values)


_WRITER = """
import sys
import numpy as np
from rnnkit.checkpoint import save_checkpoint
path, version = sys.argv[1], int(sys.argv[2])
first = True
while True:  # every element of every tensor equals the version in the metadata
    save_checkpoint(path, {"a": np.full(500_000, version, np.float32),
                           "b": np.full((250, 1000), version, np.int64)}, {"version": version})
    if first:
        print("saved", flush=True)
        first = False
    version += 1
"""


def test_kill_9_at_random_moments_never_leaves_a_torn_checkpoint(tmp_path):
    path = tmp_path / "model.safetensors"
    rng = np.random.default_rng(20240601)
    env = {**os.environ, "PYTHONPATH": SRC}
    progressed = killed_while_writing = 0
    for run in range(40):  # at least 10 kills; more only until one has landed mid-write
        if run >= 10 and progressed >= 3 and killed_while_writing >= 1:
            break
        start = run * 10_000  # versions only grow, across restarts too
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(start)],
                                  stdout=subprocess.PIPE, env=env)
        try:
            assert writer.stdout.readline() == b"saved\n", "the writer failed to start"
            time.sleep(rng.uniform(0.0, 0.3))
        finally:
            writer.kill()  # SIGKILL: no cleanup, no flush, no finally
            writer.wait()
            writer.stdout.close()
        killed_while_writing += any(name.endswith(".tmp") for name in os.listdir(tmp_path))
        tensors, metadata = load_checkpoint(path)
        version = metadata["version"]
        assert version >= start
        assert tensors.keys() == {"a", "b"}
        assert all(np.all(array == version) for array in tensors.values()), "incoherent checkpoint"
        progressed += version > start
    assert progressed >= 3, "the writer was never killed in the middle of its loop"
    assert killed_while_writing >= 1, "no kill landed while a file was being written"
    save_checkpoint(path, {"a": np.zeros(1)}, {"version": -1})  # also sweeps stale temp files
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_save_removes_stale_temporary_files_of_the_same_target_only(tmp_path):
    (tmp_path / ".model.safetensors.k3j2h1.tmp").write_bytes(b"torn")
    (tmp_path / ".other.safetensors.k3j2h1.tmp").write_bytes(b"someone else's")
    save_checkpoint(tmp_path / "model.safetensors", {"w": np.ones(2)}, {})
    assert sorted(os.listdir(tmp_path)) == [".other.safetensors.k3j2h1.tmp", "model.safetensors"]


def test_missing_file_and_directory_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*/nothing\.st does not exist"):
        load_checkpoint(tmp_path / "nothing.st")
    with pytest.raises(ValueError, match=r"is a directory"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("cut", ["empty", "in_length", "in_header", "half", "last_byte"])
def test_truncated_file_is_refused(saved, cut):
    path = saved[0]
    data = path.read_bytes()
    keep = {"empty": 0, "in_length": 4, "in_header": 8 + _header_length(path) // 2,
            "half": len(data) // 2, "last_byte": len(data) - 1}[cut]
    path.write_bytes(data[:keep])
    with pytest.raises(ValueError, match=r"not a readable checkpoint \(truncated or corrupted: "):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [
    np.random.default_rng(5).bytes(4096),
    b"this is a text file, not a checkpoint at all\n",
    (6).to_bytes(8, "little") + b"{{{{{{",                  # a header that is not JSON
    (8).to_bytes(8, "little") + b'{"a": 1}',                # JSON, but not a safetensors header
], ids=["random", "text", "bad_json", "bad_header"])
def test_garbage_is_refused(tmp_path, content):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"garbage\.safetensors is not a readable checkpoint"):
        load_checkpoint(path)


def test_flipped_byte_in_the_tensor_data_is_caught_by_the_checksum(saved):
    path = saved[0]
    data = bytearray(path.read_bytes())
    data[8 + _header_length(path) + 901] ^= 0x01  # one bit, in the middle of the tensor bytes
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError,
                       match=r"is corrupted: its header or tensor data does not match its checksum"):
        load_checkpoint(path)


def test_foreign_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"w": np.ones(3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"is a safetensors file but not an rnnkit checkpoint"):
        load_checkpoint(path)


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "future.safetensors"
    path.write_bytes(safetensors.numpy.save({"w": np.ones(3)}, metadata={
        "format": "rnnkit-checkpoint", "format_version": "3", "metadata": "{}", "sha256": "?"}))
    with pytest.raises(ValueError, match=r"format version 3, but this rnnkit reads versions 1 and 2 only"):
        load_checkpoint(path)


def _refused_as_corrupted(path: Path) -> str:
    """The one-line corruption error that loading `path` must raise."""
    with pytest.raises(ValueError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message and "corrupted" in message, message
    return message


@pytest.mark.parametrize("old, new", [
    (b'\\"step\\": 3', b'\\"step\\": 7'),                # the data position / Adam's step_count
    (b'\\"hidden_size\\": 2', b'\\"hidden_size\\": 9'),  # the model configuration
    (b'"format_version":"2"', b'"format_version":"1"'),  # a downgrade to the tensor-only checksum
])
def test_an_edited_header_is_refused_by_the_checksum(saved, old, new):  # issue 19, defect 4
    path = saved[0]
    data = path.read_bytes()
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, new))
    assert _refused_as_corrupted(path).endswith("is corrupted: its header or tensor data does not match "
                                                "its checksum")


def test_a_space_turned_into_a_tab_in_the_header_is_refused(saved):
    """JSON reads the header the same; the file checksum still sees the changed byte."""
    path = saved[0]
    data = bytearray(path.read_bytes())
    padding = data.rindex(b" ", 8, 8 + _header_length(path))  # safetensors pads the header with spaces
    data[padding] = ord("\t")
    path.write_bytes(bytes(data))
    _refused_as_corrupted(path)


@pytest.mark.parametrize("mask", [0x01, 0x20, 0x80, 0xFF])
def test_every_single_flipped_byte_is_refused(tmp_path, mask):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array([3])},
                    {"model": {"cell": "gru"}, "lr": 0.01, "rng": {"state": 12345}})
    original = path.read_bytes()
    for position in range(len(original)):
        flipped = bytearray(original)
        flipped[position] ^= mask
        path.write_bytes(bytes(flipped))
        _refused_as_corrupted(path)


def test_a_version_1_file_still_loads_with_its_tensor_checksum(tmp_path):
    tensors, metadata = load_checkpoint(VERSION_1_FILE)
    assert metadata == VERSION_1_METADATA
    assert sorted(tensors) == ["head.bias", "optimizer/0/exp_avg", "rnn.weight_ih_l0"]
    rng = np.random.default_rng(19)  # how the fixture's tensors were drawn
    np.testing.assert_array_equal(tensors["rnn.weight_ih_l0"], rng.standard_normal((8, 3)).astype(np.float32))
    np.testing.assert_array_equal(tensors["head.bias"], rng.standard_normal(3).astype(np.float32))
    np.testing.assert_array_equal(tensors["optimizer/0/exp_avg"], rng.standard_normal(5))

    data = bytearray(VERSION_1_FILE.read_bytes())  # its tensor bytes are still checked
    data[-3] ^= 0x01
    (tmp_path / "v1.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"is corrupted: its tensor data does not match its checksum"):
        load_checkpoint(tmp_path / "v1.safetensors")

    save_checkpoint(tmp_path / "v2.safetensors", tensors, metadata)  # saving again upgrades it
    header = safetensors.safe_open(tmp_path / "v2.safetensors", "numpy").metadata()
    assert header["format_version"] == "2" and "sha256" not in header and len(header["file_sha256"]) == 64


def test_a_version_2_header_that_lost_its_checksum_is_not_read_as_version_1(tmp_path):
    tensors = {"w": np.ones(3)}
    path = tmp_path / "c.safetensors"
    path.write_bytes(safetensors.numpy.save(tensors, metadata={
        "format": "rnnkit-checkpoint", "format_version": "2", "metadata": "{}",
        "file_sha257": "0" * 64, "sha256": checkpoint._tensor_digest(tensors)}))
    assert _refused_as_corrupted(path).endswith("is corrupted: its header has lost its checksum")


def test_metadata_that_is_not_json_is_refused_on_load(tmp_path):
    tensors = {"w": np.ones(3)}
    path = tmp_path / "bad_metadata.safetensors"
    path.write_bytes(safetensors.numpy.save(tensors, metadata={
        "format": "rnnkit-checkpoint", "format_version": "1", "metadata": "{not json",
        "sha256": checkpoint._tensor_digest(tensors)}))
    with pytest.raises(ValueError, match=r"is corrupted: its metadata is not a JSON object"):
        load_checkpoint(path)


def _circular() -> list:
    loop = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize("metadata, where", [
    ({"config": {"size": np.int64(4)}}, r"metadata\['config'\]\['size'\] \(type int64\)"),
    ({"history": [1.0, {2, 3}]}, r"metadata\['history'\]\[1\] \(type set\)"),
    ({"config": {1: "would come back as '1'"}}, r"metadata\['config'\]\[1\] \(keys must be str\)"),
    ({"loop": _circular()}, r"metadata \(Circular reference detected\)"),
])
def test_metadata_that_is_not_json_is_refused_on_save_and_the_old_file_kept(saved, metadata,
                                                                            where):
    path, tensors, old_metadata = saved
    with pytest.raises(ValueError, match=where + " is not JSON-serialisable"):
        save_checkpoint(path, {"w": np.zeros(2)}, metadata)
    loaded, loaded_metadata = load_checkpoint(path)
    assert loaded_metadata == old_metadata and np.array_equal(loaded["optimizer/0/exp_avg"],
                                                              tensors["optimizer/0/exp_avg"])
    assert os.listdir(path.parent) == [path.name]


def test_unsupported_tensors_are_refused_on_save(tmp_path):
    with pytest.raises(ValueError, match=r"tensor 'z' has dtype complex128"):
        save_checkpoint(tmp_path / "c", {"w": np.ones(2), "z": np.ones(2) * 1j}, {})
    for name in [3, "", "__metadata__"]:  # safetensors reserves "__metadata__"
        with pytest.raises(ValueError, match=rf"tensor name {name!r} is not allowed"):
            save_checkpoint(tmp_path / "c", {name: np.ones(2)}, {})
    assert not (tmp_path / "c").exists()


def test_a_failed_write_removes_its_temporary_file_and_keeps_the_old_file(saved, monkeypatch):
    path, _, old_metadata = saved

    def failing_fsync(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, {"w": np.zeros(2)}, {"step": 4})
    monkeypatch.undo()
    assert load_checkpoint(path)[1] == old_metadata
    assert os.listdir(path.parent) == [path.name]


def test_torch_reads_our_files_into_an_lstm(tmp_path):
    torch = pytest.importorskip("torch")
    import safetensors.torch

    input_size, hidden_size, num_layers = 3, 4, 2
    rng = np.random.default_rng(2)
    tensors = {}
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else hidden_size
        for name, shape in [("weight_ih", (4 * hidden_size, layer_input)),
                            ("weight_hh", (4 * hidden_size, hidden_size)),
                            ("bias_ih", (4 * hidden_size,)), ("bias_hh", (4 * hidden_size,))]:
            tensors[f"{name}_l{layer}"] = rng.standard_normal(shape).astype(np.float32)
    tensors["optimizer/0/exp_avg"] = rng.standard_normal(5).astype(np.float32)
    path = tmp_path / "lstm.safetensors"
    save_checkpoint(path, tensors, {"config": {"hidden_size": hidden_size}})

    state = safetensors.torch.load_file(str(path))
    lstm = torch.nn.LSTM(input_size, hidden_size, num_layers)
    lstm.load_state_dict({k: v for k, v in state.items() if "/" not in k}, strict=True)
    for name, parameter in lstm.named_parameters():
        assert np.array_equal(parameter.detach().numpy(), tensors[name]), name

    foreign = tmp_path / "torch.safetensors"  # and torch's own files are not mistaken for ours
    safetensors.torch.save_file(lstm.state_dict(), str(foreign))
    with pytest.raises(ValueError, match=r"is a safetensors file but not an rnnkit checkpoint"):
        load_checkpoint(foreign)


def test_describe_difference():
    expected = {"hidden_size": 128, "cell": "lstm", "sizes": (1, 2), "dropout": 0.0, "lr": 1}
    assert describe_difference(expected, {**expected, "sizes": [1, 2], "lr": 1.0}) is None
    found = {"hidden_size": 256, "cell": "gru", "sizes": [1, 2], "lr": True, "bias": True}
    description = describe_difference(expected, found, what="model configuration")
    assert "\n" not in description
    assert description.split("; ") == [
        "bias: checkpoint has True, not in the expected model configuration",
        "cell: checkpoint has 'gru', expected 'lstm'",
        "dropout: not in the checkpoint's model configuration, expected 0.0",
        "hidden_size: checkpoint has 256, expected 128",
        "lr: checkpoint has True, expected 1",  # JSON's true is not 1
    ]
