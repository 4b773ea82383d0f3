"""Checkpoint files: named NumPy arrays plus JSON metadata, in one safetensors file.

A checkpoint is a standard safetensors file (8-byte little-endian header length, JSON header,
raw tensor bytes) whose header "__metadata__" (str -> str) holds, in format version 2:

    "format": "rnnkit-checkpoint"     # marks our files; other safetensors files are refused
    "format_version": "2"             # a newer version is refused with a clear message
    "metadata": json.dumps(metadata)  # whatever the caller saved: configuration, step, ...
    "file_sha256": hex digest of the whole file (safetensors itself never checks any bytes)

The file checksum covers every byte of the file, the length prefix, the whole JSON header (model
configuration, optimizer scalars, RNG states, data position, ...) and the tensor data, with the
64 hex digits of the digest itself read as "0" * 64:

    file_sha256 = sha256(file bytes with the digest's 64 characters replaced by "0")

so any changed byte, even one JSON reads the same (a space turned into a tab), is refused. The
digest is found in the header as the exact text `"file_sha256":"<64 hex digits>"`, which cannot
occur inside a JSON string (whose quotes are escaped), and it is checked *before* the format
marker and version are believed: a flipped byte there reads as corruption, not as a foreign file
or a newer version (so a later format with another checksum rule must name its digest otherwise).

Format version 1 (rnnkit before the file checksum; still read) has "sha256" instead: a digest of
the tensors only, in sorted name order, for each the length-prefixed UTF-8 JSON of [name,
little-endian dtype string, shape], then its length-prefixed little-endian data bytes. Its header
is unchecked, so a version-1 file is loaded by that rule and nothing more; saving it again writes
version 2. A version-2 header without "file_sha256" is corrupted (the field name was damaged),
never read as version 1.

Every corruption is refused with a one-line ValueError: "... is not a readable checkpoint
(truncated or corrupted: ...)" when the file does not parse, "... is corrupted: ..." when it
parses but does not match its checksum.

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from .files import existing_file

__all__ = ["save_checkpoint", "load_checkpoint", "describe_difference", "FORMAT_VERSION"]

FORMAT_NAME = "rnnkit-checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = ("1", "2")
_FILE_DIGEST = "file_sha256"
_DIGEST_PLACEHOLDER = b"0" * 64  # what the digest reads as while it is computed
_SUPPORTED_DTYPES = {np.dtype("<" + code) for code in "f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 ?".split()}


def _little_endian(array: np.ndarray) -> np.ndarray:
    # not np.ascontiguousarray, which turns a 0-d array into a 1-d one
    return array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)


def _tensor_digest(tensors: Mapping[str, np.ndarray]) -> str:
    """Format version 1's checksum: the tensors only (module docstring)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = _little_endian(tensors[name])
        description = json.dumps([name, array.dtype.str, list(array.shape)]).encode()
        for chunk in (description, array.reshape(-1).view(np.uint8)):
            digest.update(len(chunk).to_bytes(8, "little"))
            digest.update(chunk)
    return digest.hexdigest()


def _digest_span(payload: bytes, header_end: int, digest: str) -> tuple[int, int] | None:
    """Where (start, end) the 64 characters of `digest` sit in the file `payload`: in its header,
    as the exact text `"file_sha256":"<digest>"` found once; None if it is not so."""
    needle = f'"{_FILE_DIGEST}":"{digest}"'.encode()
    start = payload.find(needle, 8, header_end)
    if len(digest) != len(_DIGEST_PLACEHOLDER) or start < 0 or payload.find(needle, start + 1, header_end) >= 0:
        return None
    end = start + len(needle) - 1  # before the closing quote
    return end - len(digest), end


def _file_digest(payload: bytes, span: tuple[int, int]) -> str:
    """Format version 2's checksum: sha256 of the whole file, the digest's own span read as zeros."""
    start, end = span
    view = memoryview(payload)
    digest = hashlib.sha256(view[:start])
    digest.update(_DIGEST_PLACEHOLDER)
    digest.update(view[end:])
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
              "metadata": metadata_json, _FILE_DIGEST: _DIGEST_PLACEHOLDER.decode()}
    payload = safetensors.numpy.save(arrays, metadata=header)
    header_end = 8 + int.from_bytes(payload[:8], "little")
    span = _digest_span(payload, header_end, _DIGEST_PLACEHOLDER.decode())
    if span is None:  # only if a safetensors release stopped writing compact JSON headers
        raise RuntimeError(f"cannot save checkpoint {path}: safetensors wrote no compact "
                           f'"{_FILE_DIGEST}" entry to fill in; use a safetensors release that does')
    view = memoryview(payload)  # written around the digest: no second copy of a large file
    pieces = (view[:span[0]], _file_digest(payload, span).encode(), view[span[1]:])

    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = "." + path.name + ".", ".tmp"
    for stale in path.parent.glob(glob.escape(prefix) + "*" + suffix):
        stale.unlink(missing_ok=True)  # left by a writer that crashed
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(descriptor, "wb") as file:
            # mkstemp makes the file private (0600); keep the old file's mode, or the usual 0644.
            os.fchmod(file.fileno(), stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644)
            for piece in pieces:
                file.write(piece)
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
    """Read a file written by `save_checkpoint` (either format version); return (tensors,
    metadata). A file that is not exactly what was saved raises a one-line ValueError."""
    path = existing_file(path, "checkpoint")
    data = path.read_bytes()
    header_end, info, tensors = _parse(path, data)
    if _FILE_DIGEST in info:  # before anything in the header is believed
        span = _digest_span(data, header_end, info[_FILE_DIGEST])
        if span is None or _file_digest(data, span) != info[_FILE_DIGEST]:
            raise ValueError(f"{path} is corrupted: its header or tensor data does not match its checksum")
    if info.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is a safetensors file but not an rnnkit checkpoint "
                         "(no rnnkit format marker); load it with safetensors directly")
    version = info.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ValueError(f"{path} has checkpoint format version {version}, but this rnnkit reads "
                         f"versions {' and '.join(READABLE_VERSIONS)} only; upgrade rnnkit to load it")
    if version == "1" and info.get("sha256") != _tensor_digest(tensors):
        raise ValueError(f"{path} is corrupted: its tensor data does not match its checksum")
    if version != "1" and _FILE_DIGEST not in info:  # its field name was damaged
        raise ValueError(f"{path} is corrupted: its header has lost its checksum")
    try:
        metadata = json.loads(info.get("metadata", ""))
        if not isinstance(metadata, dict):
            raise ValueError(f"found a {type(metadata).__name__}")
    except ValueError as error:
        raise ValueError(f"{path} is corrupted: its metadata is not a JSON object "
                         f"({error})") from error
    return tensors, metadata


def _parse(path: Path, data: bytes) -> tuple[int, dict[str, str], dict[str, np.ndarray]]:
    """(where the header ends, its "__metadata__", the tensors) of a safetensors file's bytes."""
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
    return 8 + header_length, info, tensors


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
