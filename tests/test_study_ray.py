"""Studies on a real local Ray: end to end, crashed trials, a killed study resumed, and a study
sent to an existing cluster with --address."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rnnkit.apps.study import read_results, run_study, write_report
from rnnkit.apps.study.results import RESULTS
from rnnkit.apps.study.spec import study_from_dict
from rnnkit.apps.study.trial import run_trial

ray = pytest.importorskip("ray")


def tiny_study(trials=4, variants=("V", "NFG", "GRU"), steps=40, name="tiny"):
    return {
        "name": name, "seed": 1, "trials": trials, "variants": list(variants), "optimizer": "adam",
        "budget": {"steps": steps},
        "space": {"learning_rate": {"log_uniform": [3e-3, 3e-2]}, "hidden_size": {"log_uniform_int": [4, 12]},
                  "momentum": 0.9},
        "tasks": {"adding": {"length": 10, "train_sequences": 256, "validation_sequences": 64}},
    }


def write_toml(path, study):
    lines = [f'name = "{study["name"]}"', f'seed = {study["seed"]}', f'trials = {study["trials"]}',
             "variants = [" + ", ".join(f'"{v}"' for v in study["variants"]) + "]",
             f'optimizer = "{study["optimizer"]}"', "[budget]", f'steps = {study["budget"]["steps"]}', "[space]",
             "learning_rate = { log_uniform = [3e-3, 3e-2] }", "hidden_size = { log_uniform_int = [4, 12] }",
             "momentum = 0.9", "[tasks.adding]", "length = 10", "train_sequences = 256", "validation_sequences = 64"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_small_study_runs_end_to_end_on_local_ray(tmp_path):
    spec = study_from_dict(tiny_study())
    stream = io.StringIO()
    run_study(spec, tmp_path, cpus=2, stream=stream)
    records = read_results(tmp_path)
    assert sorted(r["key"] for r in records) == sorted(t.key for t in spec.trial_list())
    assert all(r["status"] == "ok" and 0 < r["score"] < 1 and r["steps"] == 40 for r in records)
    # The same hyperparameters as the trial list drew, recorded with each result.
    drawn = {t.key: t.hyperparameters for t in spec.trial_list()}
    assert all(r["hyperparameters"] == drawn[r["key"]] for r in records)
    log = stream.getvalue()
    assert "12 trials (1 task(s) x 3 variant(s) x 4), 0 already finished" in log
    assert "trials 12/12 done, 0 running, 0 failed" in log and "best: adding" in log
    text, files = write_report(tmp_path)
    for variant in ("V", "NFG", "GRU"):
        assert f"| {variant} | 4 | 0 | 0 |" in text
    assert all(f.exists() for f in files)


def test_crashed_trials_are_recorded_as_failed_and_rerun_only_when_asked(tmp_path):
    spec = study_from_dict(tiny_study(trials=2))

    def crashing(trial, data, *rest):
        if trial.variant == "NFG":
            raise RuntimeError(f"injected crash in {trial.key}")
        if trial.key == "adding/GRU/1":
            os._exit(3)  # the worker process dies
        return run_trial(trial, data, *rest)

    run_study(spec, tmp_path, cpus=2, stream=io.StringIO(), trial_function=crashing)
    records = {r["key"]: r for r in read_results(tmp_path)}
    assert len(records) == 6
    for index in (0, 1):
        failed = records[f"adding/NFG/{index}"]
        assert failed["status"] == "failed" and failed["error"] == f"RuntimeError: injected crash in adding/NFG/{index}"
    assert records["adding/GRU/1"]["status"] == "failed" and records["adding/GRU/1"]["error"]
    assert [records[k]["status"] for k in ("adding/V/0", "adding/V/1", "adding/GRU/0")] == ["ok"] * 3

    stream = io.StringIO()
    run_study(spec, tmp_path, cpus=2, stream=stream)  # failed trials count as finished
    assert "6 already finished" in stream.getvalue() and "0 to run" in stream.getvalue()

    stream = io.StringIO()
    results = run_study(spec, tmp_path, cpus=2, stream=stream, retry_failed=True)
    assert "3 already finished" in stream.getvalue()
    assert {r["status"] for r in read_results(tmp_path)} == {"ok"}
    assert {r["status"] for r in results.records} == {"ok"} and len(results.records) == 6
    lines = (tmp_path / RESULTS).read_text().splitlines()
    assert len(lines) == 9  # the failures stay on record; the retries come after them


def test_a_killed_study_resumes_without_repeating_finished_trials(tmp_path):
    study_file = write_toml(tmp_path / "study.toml", tiny_study(trials=6, steps=150, name="killed"))
    out = tmp_path / "out"
    results = out / RESULTS
    process = subprocess.Popen([sys.executable, "-m", "rnnkit", "study", "run", str(study_file), "--out", str(out),
                                "--cpus", "2"], start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if results.exists() and results.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the command and the local Ray it started
        process.wait()
    before = results.read_bytes()
    finished_before = before.count(b"\n")
    assert 3 <= finished_before < 18, "the study should have been killed part of the way through"
    with open(results, "ab") as handle:
        handle.write(b'{"key": "adding/V/5", "status": "o')  # as if killed in the middle of a write

    stream = io.StringIO()
    spec = study_from_dict(tiny_study(trials=6, steps=150, name="killed"))
    run_study(spec, out, cpus=2, stream=stream)
    assert f"{finished_before} already finished" in stream.getvalue()
    after = results.read_bytes()
    assert after.startswith(before)  # finished trials kept as they were, torn line cut
    keys = [json.loads(line)["key"] for line in after.splitlines()]
    assert len(keys) == len(set(keys)) == 18  # nothing repeated, nothing missing


def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_study_goes_to_an_existing_cluster_through_ray_client(tmp_path):
    """`--address ray://HOST:PORT`: a cluster started apart from the command (`ray start
    --head`, in its own process group so that only it is stopped afterwards) runs the trials,
    with rnnkit's source shipped to its workers. Both sides use Ray's token authentication
    (RAY_AUTH_MODE=token, read by Ray when it is imported, so the command runs as a process of
    its own), with the token in ~/.ray/auth_token (created if missing)."""
    pytest.importorskip("grpc", reason="ray:// needs Ray Client: pip install 'ray[client]'")
    ray_command = os.path.join(os.path.dirname(sys.executable), "ray")
    if not os.path.exists(ray_command):
        pytest.skip("the ray command is not installed beside this Python")
    client_port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    subprocess.run([ray_command, "get-auth-token", "--generate"], check=True, capture_output=True, env=env,
                   timeout=120)
    head = subprocess.Popen([ray_command, "start", "--head", "--block", "--num-cpus", "1", "--port", str(free_port()),
                             "--ray-client-server-port", str(client_port), "--include-dashboard", "false"],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        study_file = write_toml(tmp_path / "study.toml", tiny_study(trials=1, variants=("V", "GRU"), name="remote"))
        command = [sys.executable, "-m", "rnnkit", "study", "run", str(study_file), "--out", str(tmp_path / "out"),
                   "--address", f"ray://127.0.0.1:{client_port}"]
        deadline = time.monotonic() + 150
        while True:  # the head takes a few seconds to start listening
            run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
            if run.returncode == 0 or time.monotonic() > deadline or head.poll() is not None:
                break
            time.sleep(2)
        assert run.returncode == 0, run.stderr
        records = read_results(tmp_path / "out")
        assert sorted(r["key"] for r in records) == ["adding/GRU/0", "adding/V/0"]
        assert all(r["status"] == "ok" for r in records)
        assert "report:  rnnkit study report" in run.stdout
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()
