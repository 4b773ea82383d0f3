"""The check every reader of a user's file starts with."""

from __future__ import annotations

from pathlib import Path

__all__ = ["existing_file"]


def existing_file(path: str | Path, what: str) -> Path:
    """`path` as a Path, if it names a file: FileNotFoundError if nothing is there, ValueError if
    it is a directory; `what` names the file in the message ("checkpoint", "CSV file")."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give a {what}")
    return path
