"""A text's token ids on disk: tokenised once, in a streaming pass, into a memory-mapped file of
the smallest unsigned dtype that holds the vocabulary (nanoGPT's `train.bin`), cached.

A 1 GB text needs 1 GB of ids for characters (uint8 up to 256 distinct characters), not the
~26 GB of a Python list of one-character strings encoded to int64; training reads the ids through
`np.memmap`, so only the pages a batch touches are in memory (and those are page cache, which
the kernel reclaims).

    characters  pass 1 reads the bytes in chunks, hashing them and counting code points
                (ASCII chunks are used as bytes directly; others are decoded and re-encoded as
                UTF-32, all vectorised); the vocabulary is the sorted set of code points seen.
                Pass 2 maps every code point to its id through a lookup table.
    words       pass 1 decodes chunks cut after a whitespace character (no token spans one),
                finds the words with the one regex of `text.tokenize`, and writes provisional
                ids in first-seen order (uint32) to a scratch file. Then the counts of the
                training part give the vocabulary (`Vocabulary.from_words`' rule), and pass 2
                maps the provisional ids to final ones, `<unk>` for the rest.

The ids and vocabulary are exactly those of `Vocabulary.from_text(tokenize(text, "chars"))` /
`Vocabulary.from_words(training words, size)` followed by `encode`, so a run on the memory-mapped
ids trains on the same batches as one on the in-memory ids.

The cache (`cache_dir()/tokens/`) holds `<key>.ids` and `<key>.json`, the key a hash of the
text's SHA-256, the tokenizer settings and `FORMAT`. The JSON is written last (atomically) and
records the ids' count and dtype: a missing JSON, a different format, or an ids file of the wrong
size (truncated) means the entry is rebuilt. Finding the entry needs the text's checksum; so
that a second run starts at once, `by-path/` remembers each file's (size, mtime_ns, inode) with
its checksum, and the file is hashed again only when that stamp changes.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import existing_file
from .cache import cache_dir
from .text import UNKNOWN, WORD, Vocabulary

__all__ = ["FORMAT", "TokenIds", "prepare_tokens", "smallest_dtype"]

FORMAT = 1  # bump when the layout or the tokenisation changes: older entries are then rebuilt
CHUNK = 1 << 24  # bytes read at a time (16 MiB)
WORD_CHUNK = 1 << 22  # bytes per piece of the word pass (a piece's words are Python strings: ~40 MB)


@dataclass(frozen=True)
class TokenIds:
    """A prepared text: `ids` (a read-only memmap, 1-D) and its `vocabulary`."""

    ids: np.ndarray
    vocabulary: Vocabulary
    path: Path  # the ids file in the cache
    prepared: bool  # True when this call tokenised the text, False on a cache hit


def smallest_dtype(vocabulary_size: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocabulary_size - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"a vocabulary of {vocabulary_size:,} tokens does not fit in 32-bit ids")


def prepare_tokens(source: str | Path, level: str, *, text: str | None = None, vocab_size: int = 10000,
                   val_frac: float = 0.0, cache: Path | None = None, progress: bool = True,
                   chunk_bytes: int = CHUNK) -> TokenIds:
    """The token ids of the text file `source` (or of `text`, a string, when given; then
    `source` only names it), prepared once and cached. Characters: the vocabulary is every
    character of the text. Words: the `vocab_size - 1` most frequent words of the first
    1 - `val_frac` of the tokens (the training part), then `<unk>`.

    FileNotFoundError / ValueError (one line) for a missing, empty, binary or non-UTF-8 file."""
    if level not in ("chars", "words"):
        raise ValueError(f"unknown token level {level!r}; choose chars or words")
    settings = {"format": FORMAT, "level": level}
    if level == "words":
        settings.update(vocab_size=int(vocab_size), val_frac=float(val_frac))
    folder = (cache or cache_dir()) / "tokens"
    data = _Source(source, text, chunk_bytes)
    checksum = data.known_checksum(folder) or data.checksum(progress)
    key = hashlib.sha256(json.dumps({"text": checksum, **settings}, sort_keys=True).encode()).hexdigest()[:32]
    ids_path, meta_path = folder / f"{key}.ids", folder / f"{key}.json"
    found = _open(ids_path, meta_path, settings, checksum)
    built = found is None
    if built:
        folder.mkdir(parents=True, exist_ok=True)
        build = _build_chars if level == "chars" else _build_words
        meta = build(data, folder, ids_path, settings, progress)
        _write_json(meta_path, {**settings, "text_sha256": checksum, **meta})
        found = _open(ids_path, meta_path, settings, checksum)
        if found is None:
            raise ValueError(f"the token cache {ids_path} could not be read back after writing it; "
                             "check the disk (space, permissions) or set RNNKIT_CACHE")
    data.remember(folder, checksum)
    ids, vocabulary = found
    return TokenIds(ids, vocabulary, ids_path, prepared=built)


def _open(ids_path: Path, meta_path: Path, settings: dict, checksum: str):
    """(ids memmap, vocabulary) of a complete, current cache entry, else None."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if any(meta.get(k) != v for k, v in settings.items()) or meta.get("text_sha256") != checksum:
        return None
    dtype = np.dtype(meta["dtype"])
    if not ids_path.exists() or ids_path.stat().st_size != meta["count"] * dtype.itemsize or meta["count"] == 0:
        return None  # truncated (or the ids were deleted): rebuild
    ids = np.memmap(ids_path, dtype=dtype, mode="r", shape=(meta["count"],))
    return ids, Vocabulary(meta["vocabulary"], unknown=meta.get("unknown"))


class _Source:
    """The text's bytes in chunks, checked as `read_text` checks a whole file."""

    def __init__(self, source, text: str | None, chunk_bytes: int):
        self.name, self.text, self.chunk_bytes = str(source), text, chunk_bytes
        self.path = None if text is not None else existing_file(source, "text file").resolve()

    def _stamp(self) -> list[int]:
        stat = self.path.stat()
        return [stat.st_size, stat.st_mtime_ns, stat.st_ino]

    def _stamp_file(self, folder: Path) -> Path:
        return folder / "by-path" / (hashlib.sha256(str(self.path).encode()).hexdigest()[:32] + ".json")

    def known_checksum(self, folder: Path) -> str | None:
        if self.path is None:
            return None
        try:
            known = json.loads(self._stamp_file(folder).read_text())
        except (OSError, ValueError):
            return None
        return known["sha256"] if known.get("stamp") == self._stamp() else None

    def remember(self, folder: Path, checksum: str) -> None:
        if self.path is not None:
            self._stamp_file(folder).parent.mkdir(parents=True, exist_ok=True)
            _write_json(self._stamp_file(folder), {"path": str(self.path), "stamp": self._stamp(), "sha256": checksum})

    def size(self) -> int:
        return len(self.text.encode()) if self.path is None else self.path.stat().st_size

    def chunks(self, progress: bool, what: str, chunk_bytes: int | None = None) -> Iterator[bytes]:
        """The raw bytes, chunk by chunk, with a byte-counting tqdm bar."""
        from tqdm import tqdm

        step = chunk_bytes or self.chunk_bytes
        size = self.size()
        if size == 0:
            raise ValueError(f"text file {self.name} is empty; give a file with some text in it")
        with tqdm(total=size, unit="B", unit_scale=True, desc=what, file=sys.stderr,
                  disable=None if progress else True, leave=False) as bar:
            if self.path is None:
                data = self.text.encode()
                for begin in range(0, len(data), step):
                    bar.update(min(step, len(data) - begin))
                    yield data[begin:begin + step]
                return
            with open(self.path, "rb") as file:
                while chunk := file.read(step):
                    bar.update(len(chunk))
                    yield chunk

    def checksum(self, progress: bool) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks(progress, f"checksum {Path(self.name).name}"):
            digest.update(chunk)
        return digest.hexdigest()

    def texts(self, progress: bool, what: str, decode: bool = True,
              chunk_bytes: int | None = None) -> Iterator[tuple[bytes, str | None]]:
        """(bytes, text) per chunk: text None when the chunk is ASCII (its bytes are its code
        points) or `decode` is false. ValueError for NUL bytes or invalid UTF-8, with the offset."""
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        offset = 0
        for chunk in self.chunks(progress, what, chunk_bytes):
            if b"\x00" in chunk:
                raise ValueError(f"{self.name} looks binary (it contains NUL bytes); give a UTF-8 text file")
            if not decode:
                yield chunk, None
                continue
            try:
                if chunk.isascii() and not decoder.getstate()[0]:
                    yield chunk, None
                else:
                    yield chunk, decoder.decode(chunk)
            except UnicodeDecodeError as error:
                at = offset + error.start
                raise ValueError(f"{self.name} is not UTF-8 text (byte 0x{chunk[error.start]:02x} at offset {at}); "
                                 "convert it to UTF-8 first") from None
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ValueError(f"{self.name} is not UTF-8 text (it ends inside a character); "
                             "convert it to UTF-8 first") from None


class _TooManyTokens(Exception):
    """More distinct characters than the provisional ids' dtype holds: start again, wider."""


def _build_chars(data: _Source, folder: Path, ids_path: Path, settings: dict, progress: bool) -> dict:
    for width in (np.uint8, np.uint16, np.uint32):
        try:
            return _build_chars_as(np.dtype(width), data, folder, ids_path, progress)
        except _TooManyTokens:
            continue
    raise AssertionError("unreachable: 32-bit ids hold every code point")


def _build_chars_as(width: np.dtype, data: _Source, folder: Path, ids_path: Path, progress: bool) -> dict:
    """One pass: code points (Latin-1 text as its bytes, anything else as UTF-32) -> provisional
    ids in first-seen order through a lookup table, written out; then the ids file is renumbered
    in place to the sorted order of the characters."""
    seen = np.zeros(0x110000, dtype=bool)
    table = np.zeros(0x110000, dtype=width)
    order: list[int] = []  # code points by provisional id
    count = 0
    with _atomic(folder, ids_path) as out:
        for raw, text in data.texts(progress, "character ids"):
            points = _code_points(raw, text)
            if not seen[points].all():
                for point in np.unique(points[~seen[points]]).tolist():
                    if len(order) > np.iinfo(width).max:
                        raise _TooManyTokens
                    seen[point], table[point] = True, len(order)
                    order.append(point)
            out.write(table[points].tobytes())
            count += len(points)
        out.flush()
        ranks = np.empty(len(order), dtype=width)  # provisional id -> final id
        ranks[np.argsort(order, kind="stable")] = np.arange(len(order))
        if not np.array_equal(ranks, np.arange(len(order))):  # renumber in place, chunk by chunk
            for begin in range(0, count, CHUNK):
                chunk = _read(out.name, width, begin, min(CHUNK, count - begin))
                os.pwrite(out.fileno(), ranks[chunk].tobytes(), begin * width.itemsize)
    # The widths are tried smallest first, so `width` is the smallest that holds the vocabulary.
    return {"dtype": width.name, "count": count, "vocabulary": [chr(c) for c in sorted(order)], "unknown": None}


def _code_points(raw: bytes, text: str | None) -> np.ndarray:
    """The chunk's code points: its bytes when it is ASCII, its Latin-1 bytes when every
    character is below 256 (CPython copies those), else UTF-32."""
    if text is None:
        return np.frombuffer(raw, dtype=np.uint8)
    try:
        return np.frombuffer(text.encode("latin-1"), dtype=np.uint8)
    except UnicodeEncodeError:
        return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _build_words(data: _Source, folder: Path, ids_path: Path, settings: dict, progress: bool) -> dict:
    index: dict[str, int] = {}  # word -> provisional id, in first-seen order
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".provisional") as scratch:
        count = 0
        for local, words in _parallel_words(data, progress):
            table = np.fromiter((index.setdefault(word, len(index)) for word in words), dtype=np.uint32,
                                count=len(words))
            scratch.write(table[local].tobytes())
            count += len(local)
        scratch.flush()
        if count == 0:
            raise ValueError(f"{data.name} has no words; give a text with some words in it")
        uint32 = np.dtype(np.uint32)
        training = count - int(round(count * settings["val_frac"]))
        counts = np.zeros(len(index), dtype=np.int64)
        for begin in range(0, training, CHUNK):
            counts += np.bincount(_read(scratch.name, uint32, begin, min(CHUNK, training - begin)),
                                  minlength=len(index))
        words = list(index)
        vocabulary = Vocabulary.from_words({words[i]: int(counts[i]) for i in np.flatnonzero(counts)},
                                           settings["vocab_size"])
        dtype = smallest_dtype(len(vocabulary))
        table = np.full(len(index), vocabulary.index[UNKNOWN], dtype=dtype)
        for final, word in enumerate(vocabulary.tokens[:-1]):
            table[index[word]] = final
        with _atomic(folder, ids_path) as out:
            for begin in range(0, count, CHUNK):
                out.write(table[_read(scratch.name, uint32, begin, min(CHUNK, count - begin))].tobytes())
    return {"dtype": dtype.name, "count": count, "vocabulary": vocabulary.tokens, "unknown": UNKNOWN}


def _read(path: str, dtype: np.dtype, begin: int, count: int) -> np.ndarray:
    """`count` ids of a file from id `begin`, read (not mapped: mapped pages would count as the
    process's resident memory until the kernel drops them)."""
    return np.fromfile(path, dtype=dtype, count=count, offset=begin * dtype.itemsize)


def _word_pieces(data: _Source, progress: bool) -> Iterator[tuple[bytes, int]]:
    """(bytes, offset) pieces of the text cut after a space or a line break: those bytes never
    occur inside a UTF-8 character, and no word spans them."""
    rest, offset = b"", 0
    for raw, _ in data.texts(progress, "words", decode=False, chunk_bytes=min(WORD_CHUNK, data.chunk_bytes)):
        piece = rest + raw
        cut = max(piece.rfind(b" "), piece.rfind(b"\n")) + 1
        if cut:
            yield piece[:cut], offset
            rest, offset = piece[cut:], offset + cut
        else:
            rest = piece
    if rest:
        yield rest, offset


def _words_of(piece: tuple[bytes, int, str]) -> tuple[np.ndarray, list[str]]:
    """A piece's words as local ids (first-seen order) and the local words (run in a worker)."""
    raw, offset, name = piece
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{name} is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset "
                         f"{offset + error.start}); convert it to UTF-8 first") from None
    words = WORD.findall(text)
    index: dict[str, int] = {}
    local = np.fromiter((index.setdefault(word, len(index)) for word in words), dtype=np.uint32, count=len(words))
    return local, list(index)


def _parallel_words(data: _Source, progress: bool) -> Iterator[tuple[np.ndarray, list[str]]]:
    """`_words_of` every piece, in order, on every core when the text is large (the regex is
    most of the time); at most two pieces per worker in flight, so memory stays bounded."""
    pieces = ((raw, offset, data.name) for raw, offset in _word_pieces(data, progress))
    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or data.size() < 4 * WORD_CHUNK:
        yield from map(_words_of, pieces)
        return
    import multiprocessing
    from collections import deque

    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pending: deque = deque()
        for piece in pieces:
            pending.append(pool.apply_async(_words_of, (piece,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


class _atomic:
    """A file written under a temporary name in `folder` and renamed into place when complete."""

    def __init__(self, folder: Path, path: Path):
        self.folder, self.path = folder, path

    def __enter__(self):
        self.file = tempfile.NamedTemporaryFile(dir=self.folder, suffix=".partial", delete=False)
        return self.file

    def __exit__(self, kind, error, trace):
        self.file.close()
        if kind is None:
            os.replace(self.file.name, self.path)
        else:
            os.unlink(self.file.name)


def _write_json(path: Path, content: dict) -> None:
    with _atomic(path.parent, path) as out:
        out.write(json.dumps(content).encode())
