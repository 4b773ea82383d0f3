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
