"""Data-parallel training over MPI (rnnkit.distributed), through `mpiexec` in subprocesses with
timeouts: 2 ranks train the weights 1 process trains, ranks stay bitwise identical, two "nodes"
over TCP on the loopback, resume, the classifier, and a dead or interrupted rank ends the job
with the last checkpoint intact. Skipped only where mpi4py or mpiexec is missing (the test extra
installs both: pip install mpi4py mpich)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
MPIEXEC = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
                                reason="MPI is absent: pip install mpi4py mpich (rnnkit[distributed])")
# MPICH over TCP on the loopback (the wheel's default transport fails there): two "nodes" on one machine.
LOOPBACK = {"MPIR_CVAR_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp", "FI_TCP_IFACE": "lo"}


def environment(tmp_path: Path, extra: dict | None = None) -> dict:
    return {**os.environ, "PYTHONPATH": str(SRC), "RNNKIT_CACHE": str(tmp_path / "cache"), **(extra or {})}


def run_worker(tmp_path: Path, name: str, mode: str = "straight", ranks: int = 0, launcher=(), extra=None) -> dict:
    out = tmp_path / name
    out.mkdir()
    python = [sys.executable] + (["-m", "mpi4py"] if ranks else []) + [str(TESTS / "mpi_worker.py"), str(out), mode]
    command = ([MPIEXEC, *launcher, "-n", str(ranks)] if ranks else []) + python
    result = subprocess.run(command, env=environment(tmp_path, extra), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    with np.load(out / "weights.npz") as weights:
        return {"weights": dict(weights), **json.loads((out / "ranks.json").read_text())}


def assert_close(ours: dict, reference: dict, rtol: float = 1e-5) -> None:
    for name, value in reference.items():
        scale = np.abs(value).max() + 1e-12
        assert np.abs(ours[name] - value).max() / scale < rtol, name


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    return run_worker(tmp_path_factory.mktemp("one"), "one")


def test_two_ranks_train_the_weights_of_one_process_and_stay_identical(one_process, tmp_path):
    two = run_worker(tmp_path, "two", ranks=2)
    assert len(set(two["checksums"])) == 1 and len(two["checksums"]) == 2
    assert_close(two["weights"], one_process["weights"])
    losses = [(r["loss"], r.get("val_loss")) for r in two["history"]]
    reference = [(r["loss"], r.get("val_loss")) for r in one_process["history"]]
    np.testing.assert_allclose(np.array(losses, dtype=float), np.array(reference, dtype=float), rtol=1e-5)
    # resuming under the same number of ranks: the carried streams of both ranks come back
    resumed = run_worker(tmp_path, "resumed", mode="resume", ranks=2)
    assert len(set(resumed["checksums"])) == 1
    for name, value in two["weights"].items():
        assert np.array_equal(resumed["weights"][name], value), name


def test_with_dropout_two_ranks_draw_the_masks_of_one_process(tmp_path):
    """Each rank draws the dropout masks of the whole global batch and keeps its rows
    (rnnkit.batchshare): the weights are one process's, and resuming stays exact. (With masks
    drawn per rank from identically seeded generators they differed by 100 %.)"""
    one = run_worker(tmp_path, "one", mode="straight+dropout")
    two = run_worker(tmp_path, "two", mode="straight+dropout", ranks=2)
    assert len(set(two["checksums"])) == 1
    assert_close(two["weights"], one["weights"])
    resumed = run_worker(tmp_path, "resumed", mode="resume+dropout", ranks=2)
    for name, value in two["weights"].items():
        assert np.array_equal(resumed["weights"][name], value), name


def test_two_nodes_over_tcp_on_the_loopback(one_process, tmp_path):
    hostfile = tmp_path / "hosts"
    hostfile.write_text("localhost:1\n127.0.0.1:1\n")
    two = run_worker(tmp_path, "nodes", ranks=2, launcher=("-f", str(hostfile)), extra=LOOPBACK)
    assert two["shared_sizes"] == [1, 1]  # no shared memory between the ranks: separate "nodes"
    assert len(set(two["checksums"])) == 1
    assert_close(two["weights"], one_process["weights"])


def test_the_classifier_trains_data_parallel(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["text\tlabel"] + [f"{' '.join(rng.choice(['good', 'fine', 'great'] if y else ['bad', 'awful', 'poor'], 5))}"
                              f" {'word ' * int(rng.integers(0, 6))}\t{'pos' if y else 'neg'}"
                              for y in rng.integers(0, 2, size=90)]
    data = tmp_path / "reviews.tsv"
    data.write_text("\n".join(rows) + "\n")
    arguments = ["classify", "train", str(data), "--epochs", "2", "--batch", "7", "--hidden", "8", "--embed", "8",
                 "--min-freq", "1", "--dropout", "0", "--no-baseline"]
    runs = {}
    for ranks in (0, 3):  # 3 ranks: blocks of 3, 2, 2 rows, and a last batch smaller than the ranks
        out = tmp_path / f"run{ranks}"
        command = ([MPIEXEC, "-n", str(ranks), sys.executable, "-m", "mpi4py"] if ranks else [sys.executable])
        result = subprocess.run(command + ["-m", "rnnkit", *arguments, "--out", str(out)], env=environment(tmp_path),
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[ranks] = out / "best.safetensors"
    from safetensors.numpy import load_file

    one, three = load_file(runs[0]), load_file(runs[3])
    assert_close({k: v for k, v in three.items() if "/" not in k}, {k: v for k, v in one.items() if "/" not in k},
                 rtol=1e-4)


def rank_pid(launcher_pid: int, rank: int) -> int | None:
    """The pid of MPI rank `rank` among the launcher's descendants (PMI_RANK in its environment)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    pending, found = [launcher_pid], []
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending += children.get(pid, [])
    for pid in found:
        try:
            if f"PMI_RANK={rank}".encode() in (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0"):
                return pid
        except OSError:
            continue
    return None


@pytest.mark.parametrize("how", ["kill a rank", "ctrl-c"])
def test_a_dead_or_interrupted_rank_ends_the_job_and_the_last_checkpoint_loads(tmp_path, how):
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question\n" * 400)
    out = tmp_path / "run"
    command = [MPIEXEC, "-n", "2", sys.executable, "-m", "mpi4py", "-m", "rnnkit", "lm", "train", str(text),
               "--hidden", "16", "--layers", "1", "--embed", "8", "--batch", "4", "--seq-len", "16",
               "--steps", "1000000", "--eval-every", "3", "--sample-every", "0", "--out", str(out)]
    job = subprocess.Popen(command, env=environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "last.safetensors").exists() and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.2)
        assert (out / "last.safetensors").exists(), job.stderr.read().decode()[-2000:] if job.poll() else "no save"
        time.sleep(0.5)  # into the steps after the first save
        if how == "kill a rank":
            os.kill(rank_pid(job.pid, 1), signal.SIGKILL)
        else:
            os.killpg(job.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends to the whole job
        job.wait(timeout=30)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    assert job.returncode != 0
    sys.path.insert(0, str(SRC))
    from rnnkit.apps.lm.model import LanguageModel

    model = LanguageModel.load(out / "last.safetensors")
    assert model.vocabulary.tokens[0] == "\n"
