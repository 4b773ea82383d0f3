"""A study's results directory:

    study.json       the study as it was read (so a resume can check it is the same study)
    results.jsonl    one JSON object per finished trial, appended as each trial finishes

A line is written in one `write` call and fsync'ed before the next trial is recorded, so a study
killed at any moment keeps every trial it had recorded; a line torn by the kill (no newline at its
end) is cut off when the file is next opened. Resuming skips every key already in the file
(failed trials too, unless asked to retry them). A lock file keeps a second `rnnkit study run`
from writing to the same directory at the same time (both would run every trial).

A study may grow: the same study with more trials per variant (only `trials` changed) resumes
into the same directory and runs the new trial indices, which draw exactly what a study that
asked for that many from the start would have drawn.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

__all__ = ["ResultsDir", "read_results"]

RESULTS = "results.jsonl"
STUDY = "study.json"
LOCK = ".lock"


def read_results(directory: str | Path) -> list[dict]:
    """Every complete trial record of a results directory, in the order they finished (the last
    record of a key wins, so a retried trial replaces its failure)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"results directory {directory} does not exist; run `rnnkit study run` first")
    path = directory / RESULTS
    if not path.exists():
        raise FileNotFoundError(f"{directory} has no {RESULTS}; is it a study's results directory?")
    records = {}
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                break  # a line torn by a kill
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ValueError(f"{path} line {number} is not a JSON object; the file was edited or damaged") from None
            if not isinstance(record, dict) or "key" not in record or "status" not in record:
                raise ValueError(f"{path} line {number} is not a trial record")
            records.pop(record["key"], None)
            records[record["key"]] = record
    return list(records.values())


class ResultsDir:
    """Opens (creates) a results directory for one study and appends trial records to it."""

    def __init__(self, directory: str | Path, study_source: dict):
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"{self.directory} is a file; give a directory for the results")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.directory / LOCK, "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise ValueError(f"another `rnnkit study run` is writing to {self.directory}; wait for it to finish "
                             "or give another --out directory") from None
        self.path = self.directory / RESULTS
        study_path = self.directory / STUDY
        recorded = None
        if study_path.exists():
            try:
                recorded = json.loads(study_path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ValueError(f"{study_path} is damaged; use a new results directory") from None
            if _without_trials(recorded) != _without_trials(study_source):
                raise ValueError(f"{self.directory} holds results of a different study (its {STUDY} differs "
                                 "from this study file in more than `trials`); give another --out directory")
        if recorded != study_source:
            temporary = study_path.with_suffix(".json.tmp")
            temporary.write_text(json.dumps(study_source, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(temporary, study_path)
        self._cut_torn_line()
        # The latest record of each key (a retried trial replaces its failure).
        self._records = {r["key"]: r for r in read_results(self.directory)} if self.path.exists() else {}

    @property
    def records(self) -> list[dict]:
        return list(self._records.values())

    def close(self) -> None:
        """Release the directory's lock (also released when the process ends)."""
        self._lock.close()

    def _cut_torn_line(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def finished_keys(self, retry_failed: bool = False) -> set[str]:
        return {key for key, r in self._records.items() if not (retry_failed and r["status"] == "failed")}

    def append(self, record: dict) -> None:
        line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
        with open(self.path, "ab") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self._records.pop(record["key"], None)
        self._records[record["key"]] = record


def _without_trials(source: dict) -> dict:
    return {key: value for key, value in source.items() if key != "trials"}
