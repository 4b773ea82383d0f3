"""Running a study on Ray.

    prepare each task's data once, here            ray.put -> one copy in the object store
    submit trials, at most one per cluster CPU     ray.remote(run_trial), 1 CPU each, no retries
    as each finishes (ray.wait):                    append its record to results.jsonl, update progress

With no address, `ray.init` starts a local Ray on this machine's cores for the length of the
command; with an address ("auto", or "ray://HOST:PORT" through Ray Client) the same trials go to
that cluster, and this package's source travels with them (runtime_env py_modules), so the
workers run the same rnnkit (its dependencies must be installed on the nodes).

Trials that raise, or whose worker dies, are recorded as "failed" with the error; Ray is told not
to retry them, so a crash is never hidden and never repeated silently. Submitting no more trials
than there are CPUs keeps "running" in the progress line true: every submitted trial is running.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Callable

from rnnkit.optional import require

from . import tasks
from .results import ResultsDir
from .spec import StudySpec, Trial
from .trial import run_trial, trial_record

__all__ = ["run_study", "Progress"]


class Progress:
    """The one-line summary: trials done / running / failed and the best score of each task.
    On a terminal it rewrites one line; otherwise it prints one line per finished trial."""

    def __init__(self, total: int, records: list[dict], stream=None):
        self.stream = stream or sys.stderr
        self.total = total
        self.done = len(records)
        self.failed = sum(r["status"] == "failed" for r in records)
        self.diverged = sum(r["status"] == "diverged" for r in records)
        self.best: dict[str, tuple[float, str]] = {}
        self.running = 0
        self.started = time.perf_counter()
        for record in records:
            self._note_best(record)

    def _note_best(self, record: dict) -> None:
        if record["status"] == "ok":
            best = self.best.get(record["task"])
            if best is None or record["score"] < best[0]:
                self.best[record["task"]] = (record["score"], record["variant"])

    def finished(self, record: dict) -> None:
        self.done += 1
        self.failed += record["status"] == "failed"
        self.diverged += record["status"] == "diverged"
        self._note_best(record)
        self.show(final=False, last=record)

    def line(self) -> str:
        best = ", ".join(f"{task} {score:.4g} ({variant})" for task, (score, variant) in sorted(self.best.items()))
        minutes = (time.perf_counter() - self.started) / 60
        return (f"trials {self.done}/{self.total} done, {self.running} running, {self.failed} failed, "
                f"{self.diverged} diverged | best: {best or '-'} | {minutes:.1f} min")

    def show(self, final: bool = False, last: dict | None = None) -> None:
        if self.stream.isatty():
            self.stream.write("\r\033[K" + self.line() + ("\n" if final else ""))
        elif last is not None:
            self.stream.write(f"{last['key']} {last['status']}: {self.line()}\n")
        self.stream.flush()


def _failure(trial: Trial, error: BaseException, seconds: float) -> dict:
    cause = getattr(error, "cause", None) or error
    message = f"{type(cause).__name__}: {cause}".strip().splitlines()
    return trial_record(trial, status="failed", score=None, error=message[0] if message else type(cause).__name__,
                        traceback="".join(traceback.format_exception_only(type(error), error))[-4000:],
                        seconds=seconds)


def run_study(spec: StudySpec, out, *, address: str | None = None, cpus: int | None = None,
              retry_failed: bool = False, stream=None,
              trial_function: Callable = run_trial) -> ResultsDir:
    """Run every trial of `spec` not yet in the results directory `out`; returns the directory.
    `trial_function(trial, data, optimizer, steps, max_seconds) -> record` is the trial body
    (replaceable for tests)."""
    if address is not None and cpus is not None:
        raise ValueError("--cpus sizes the local Ray; a cluster given with --address has its own CPUs")
    results = ResultsDir(out, spec.source)
    try:
        _run(spec, results, address, cpus, retry_failed, stream or sys.stderr, trial_function)
    finally:
        results.close()
    return results


def _run(spec, results, address, cpus, retry_failed, stream, trial_function) -> None:
    finished = results.finished_keys(retry_failed)
    trials = spec.trial_list()
    todo = [trial for trial in trials if trial.key not in finished]
    stream.write(f"study {spec.name}: {len(trials)} trials ({len(spec.tasks)} task(s) x {len(spec.variants)} "
                 f"variant(s) x {spec.trials}), {len(trials) - len(todo)} already finished in {results.directory}, "
                 f"{len(todo)} to run\n")
    if not todo:
        return
    ray = require("ray", "study", "rnnkit study (its trials run on Ray)")
    # The data first: a task that cannot load (no music21, no corpus) fails before Ray starts.
    data = {task: tasks.prepare(task, spec.tasks[task]) for task in sorted({t.task for t in todo})}
    progress = Progress(len(trials), [r for r in results.records if r["key"] in finished], stream)
    options = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:  # "local": a new Ray of our own, even if a `ray start` cluster is running
        options.update(address="local", num_cpus=cpus or os.cpu_count() or 1)
    else:
        import rnnkit

        options["address"] = address
        options["runtime_env"] = {"py_modules": [os.path.dirname(rnnkit.__file__)]}
    try:
        ray.init(**options)
    except ConnectionError as error:
        raise ValueError(f"cannot reach the Ray cluster at {address} ({error}); is it running, and, with "
                         "Ray's token authentication, is RAY_AUTH_MODE=token set here too?") from None
    pending: dict = {}  # ObjectRef -> (trial, submitted at)
    try:
        slots = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        shared = {task: ray.put(arrays) for task, arrays in data.items()}
        remote = ray.remote(num_cpus=1, max_retries=0)(trial_function)
        queue = list(reversed(todo))
        while queue or pending:
            while queue and len(pending) < slots:
                trial = queue.pop()
                ref = remote.remote(trial, shared[trial.task], spec.optimizer, spec.steps_for(trial.task),
                                    spec.max_seconds)
                pending[ref] = (trial, time.perf_counter())
            progress.running = len(pending)
            progress.show()
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=2.0)
            for ref in ready:
                trial, submitted = pending.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as error:  # noqa: BLE001 - any crash of a trial is its result
                    record = _failure(trial, error, time.perf_counter() - submitted)
                record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                results.append(record)
                progress.running = len(pending)
                progress.finished(record)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        stream.write(f"\nstopped; the {progress.done} finished trials are kept in {results.path}: run the same "
                     "command again to go on\n")
        raise
    finally:
        ray.shutdown()
    progress.show(final=True)
