"""Checkpoint files: named NumPy arrays plus JSON metadata, in one safetensors file.

Format version 1 is a standard safetensors file (8-byte little-endian header length, JSON header,
raw tensor bytes) whose header "__metadata__" (str -> str) holds:

    "format": "rnnkit-checkpoint"     # marks our files; other safetensors files are refused
    "format_version": "1"             # a newer version is refused with a clear message
    "metadata": json.dumps(metadata)  # whatever the caller saved: configuration, step, ...
    "sha256": hex digest of the tensors (safetensors itself never checks the data bytes)

The checksum covers every tensor in sorted name order: for each, the length-prefixed UTF-8 JSON of
[name, little-endian dtype string, shape], then its length-prefixed little-endian data bytes. So
it does not depend on the file layout, and catches flipped data bytes and edited dtypes or shapes.

No pickle: loading a pickle runs code from the file; loading this only parses JSON and copies
bytes (torch users read it with `safetensors.torch.load_file`). Saving writes a temporary file in
the same directory, fsyncs it and renames it over the target (atomic on POSIX): a crash at any
moment, even kill -9, leaves the old or the new complete file, never a torn one. The next save
removes temporary files of crashed writers; concurrent writers to one path are unsupported.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import safetensors.numpy

from .files import existing_file

__all__ = ["save_checkpoint", "load_checkpoint", "describe_difference", "FORMAT_VERSION"]

FORMAT_NAME = "rnnkit-checkpoint"
FORMAT_VERSION = 1
_SUPPORTED_DTYPES = {np.dtype("<" + code) for code in "f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 ?".split()}


def _little_endian(array: np.ndarray) -> np.ndarray:
    # not np.ascontiguousarray, which turns a 0-d array into a 1-d one
    return array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)


def _tensor_digest(tensors: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = _little_endian(tensors[name])
        description = json.dumps([name, array.dtype.str, list(array.shape)]).encode()
        for chunk in (description, array.reshape(-1).view(np.uint8)):
            digest.update(len(chunk).to_bytes(8, "little"))
            digest.update(chunk)
    return digest.hexdigest()


def _unserialisable(value: Any, where: str) -> str | None:
    """Where (like "metadata['optimizer']['lr']") the first value JSON cannot hold is, or None."""
    if isinstance(value, (dict, list, tuple)):  # the containers json.dumps accepts
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            if isinstance(value, dict) and not isinstance(key, str):
                return f"{where}[{key!r}] (keys must be str)"
            if found := _unserialisable(item, f"{where}[{key!r}]"):
                return found
        return None
    ok = value is None or isinstance(value, (str, int, float))
    return None if ok else f"{where} (type {type(value).__name__})"


def save_checkpoint(path, tensors: Mapping[str, np.ndarray], metadata: Mapping) -> None:
    """Atomically write `tensors` and the JSON-able `metadata` to the checkpoint file `path`."""
    path = Path(path)
    if not isinstance(metadata, Mapping):
        raise ValueError(f"checkpoint metadata must be a dict, got {type(metadata).__name__}")
    metadata = dict(metadata)
    try:
        metadata_json = json.dumps(metadata)
        bad = _unserialisable(metadata, "metadata")  # also int keys, which JSON turns into str
    except TypeError:  # e.g. a numpy scalar; find it the way json.dumps walks
        bad = _unserialisable(metadata, "metadata") or "metadata"
    except ValueError as error:  # a circular reference
        bad = f"metadata ({error})"
    if bad:
        raise ValueError(f"cannot save checkpoint {path}: {bad} is not JSON-serialisable; "
                         "convert it to a str, int, float, bool, None, list or dict")
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or name in ("", "__metadata__"):  # the latter is reserved
            raise ValueError(f"cannot save checkpoint {path}: tensor name {name!r} is not allowed; "
                             "use a non-empty str other than '__metadata__'")
        array = _little_endian(np.asarray(value))
        if array.dtype not in _SUPPORTED_DTYPES:
            raise ValueError(f"cannot save checkpoint {path}: tensor {name!r} has dtype "
                             f"{array.dtype}; use a float, int, uint or bool dtype")
        arrays[name] = array
    header = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION),
              "metadata": metadata_json, "sha256": _tensor_digest(arrays)}
    payload = safetensors.numpy.save(arrays, metadata=header)

    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = "." + path.name + ".", ".tmp"
    for stale in path.parent.glob(glob.escape(prefix) + "*" + suffix):
        stale.unlink(missing_ok=True)  # left by a writer that crashed
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(descriptor, "wb") as file:
            # mkstemp makes the file private (0600); keep the old file's mode, or the usual 0644.
            os.fchmod(file.fileno(), stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644)
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # make the rename durable; some systems can't open dirs
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def load_checkpoint(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a file written by `save_checkpoint`; return (tensors, metadata)."""
    path = existing_file(path, "checkpoint")
    data = path.read_bytes()
    header_length = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    try:
        if not 0 <= header_length <= len(data) - 8:
            raise ValueError(f"{len(data)} bytes, not a safetensors header and its data")
        header = json.loads(data[8:8 + header_length])
        tensors = safetensors.numpy.load(data)
    except Exception as error:  # ours, JSON, UTF-8 and SafetensorError alike
        reason = " ".join(str(error).split())  # one line, whatever safetensors says
        raise ValueError(f"{path} is not a readable checkpoint (truncated or corrupted: "
                         f"{reason})") from error
    info = header.get("__metadata__") or {}  # safetensors has checked it is str -> str
    if info.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is a safetensors file but not an rnnkit checkpoint "
                         "(no rnnkit format marker); load it with safetensors directly")
    version = info.get("format_version")
    if version != str(FORMAT_VERSION):  # only version 1 exists so far
        raise ValueError(f"{path} has checkpoint format version {version}, but this rnnkit reads "
                         f"version {FORMAT_VERSION} only; upgrade rnnkit to load it")
    if info.get("sha256") != _tensor_digest(tensors):
        raise ValueError(f"{path} is corrupted: its tensor data does not match its checksum")
    try:
        metadata = json.loads(info.get("metadata", ""))
        if not isinstance(metadata, dict):
            raise ValueError(f"found a {type(metadata).__name__}")
    except ValueError as error:
        raise ValueError(f"{path} is corrupted: its metadata is not a JSON object "
                         f"({error})") from error
    return tensors, metadata


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):  # JSON makes tuples lists
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b and isinstance(a, bool) == isinstance(b, bool)  # JSON's true is not 1


def describe_difference(expected: Mapping, found: Mapping,
                        what: str = "configuration") -> str | None:
    """None if `found` (from a checkpoint) equals `expected`, else one line naming each difference:
    "hidden_size: checkpoint has 256, expected 128; cell: checkpoint has 'gru', expected 'lstm'"."""
    expected, found = dict(expected), dict(found)
    differences = []
    for key in sorted(set(expected) | set(found), key=str):
        if key not in found:
            differences.append(f"{key}: not in the checkpoint's {what}, expected {expected[key]!r}")
        elif key not in expected:
            differences.append(f"{key}: checkpoint has {found[key]!r}, not in the expected {what}")
        elif not _same(expected[key], found[key]):
            differences.append(f"{key}: checkpoint has {found[key]!r}, expected {expected[key]!r}")
    return "; ".join(differences) or None
