"""Checkpoints written before the move to `apps/` (commit 1728f97, by
tests/fixtures/checkpoints/make_fixtures.sh) still load, and each `rnnkit` command prints for them
exactly what it printed then: checkpoints record kind strings, configurations and tensor names,
never module paths, so moving the code must not change what a saved model predicts."""

from pathlib import Path

import pytest
from clirun import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints"

COMMANDS = {
    "lm": [("lm", "eval", "lm.safetensors", "hello.txt"),
           ("lm", "sample", "lm.safetensors", "--length", "20", "--seed", "3")],
    "forecast": [("forecast", "predict", "forecast.safetensors", "series.csv", "--horizon", "3", "--samples", "20",
                  "--plot", "{tmp}/plot.png")],
    "classify": [("classify", "predict", "classify.safetensors", "--text", "fine great film",
                  "--text", "awful dull plot")],
    "seq2seq": [("seq2seq", "translate", "seq2seq.safetensors", "12+34", "535+61")],
    "caption": [("caption", "describe", "caption.safetensors", "--index", "0", "1", "2")],
}


@pytest.mark.parametrize("kind", sorted(COMMANDS))
def test_a_checkpoint_written_before_the_move_predicts_the_same(kind, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(FIXTURES)
    printed = ""
    for command in COMMANDS[kind]:
        code, out, err = run_cli(capsys, *(str(a).format(tmp=tmp_path) for a in command))
        assert code == 0, err
        printed += out if kind == "forecast" else out + err
    assert printed == (FIXTURES / f"{kind}.expected").read_text()


def test_the_committed_study_results_resume_with_nothing_left_to_run(tmp_path):
    """The study's results written before the move (docs/study/odyssey) are read by the moved
    code as finished trials: running the same study again has nothing to do (no Ray is started)."""
    import io
    import shutil

    from rnnkit.apps.study import load_study, run_study

    root = Path(__file__).resolve().parents[1]
    results = tmp_path / "odyssey"
    shutil.copytree(root / "docs" / "study" / "odyssey", results)
    log = io.StringIO()
    run_study(load_study(root / "examples" / "studies" / "odyssey.toml"), results, stream=log)
    assert "198 trials" in log.getvalue() and "198 already finished" in log.getvalue()
    assert log.getvalue().rstrip().endswith("0 to run")
