"""`rnnkit gradients --quick` runs end to end, prints the norms and writes its figure."""

from __future__ import annotations

import re

from clirun import run_cli


def test_quick_run_prints_the_norms_and_writes_the_figure(tmp_path, capsys):
    code, printed, err = run_cli(capsys, "gradients", "--quick", "--T", "50", "--train-steps", "5",
                                 "--explode-steps", "5", "--out", tmp_path)
    assert code == 0, err
    figure = tmp_path / "gradients.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 20_000
    assert "k = 1" in printed and "k = 50" in printed and "k = 100" not in printed  # lags up to T only
    rows = {}
    for line in printed.splitlines():
        match = re.match(r"(rnn|gru|lstm, b_f = 3|lstm, b_f = 0 \(PyTorch\)|rnn, radius 3)\s+(h|c)\s+(init|trained)"
                         r"((?:\s+\S+){3})$", line)
        if match:
            rows[match.group(1, 2, 3)] = [float(v) for v in match.group(4).split()]
    assert len(rows) == 11  # rnn, gru: h twice; the open LSTM: h, c twice; PyTorch's: h, c; exploding: h
    # The textbook picture, in numbers: the Elman RNN's gradient fades, the opened LSTM's cell state
    # keeps it, and with W_hh's spectral radius at 3 it grows.
    assert rows["rnn", "h", "init"][2] < 1e-6 * rows["rnn", "h", "init"][0]
    assert rows["lstm, b_f = 3", "c", "init"][2] > 1e-3 * rows["lstm, b_f = 3", "c", "init"][0]
    assert rows["rnn, radius 3", "h", "init"][2] > 100 * rows["rnn, radius 3", "h", "init"][0]


def test_a_bad_cell_list_is_one_line(capsys):
    code, _, err = run_cli(capsys, "gradients", "--cells", "rnn,transformer")
    assert code == 2 and "comma-separated list of rnn, lstm, gru" in err and err.count("\n") == 1


def test_an_rnn_that_overflows_at_once_is_reported_not_a_traceback(tmp_path, capsys):
    """With spectral radius 10 the gradient is not finite from the first update, clipped or not:
    the table and the figure say so (it was an IndexError)."""
    code, out, err = run_cli(capsys, "gradients", "--quick", "--cells", "rnn", "--radius", "10", "--out", tmp_path)
    assert code == 0, err
    assert "was not finite from the first update on" in out and (tmp_path / "gradients.png").stat().st_size > 0


def test_bad_lengths_and_outputs_are_one_line_errors(tmp_path, capsys):
    code, _, err = run_cli(capsys, "gradients", "--quick", "--T", "1")
    assert code == 2 and "--T: expected an integer >= 2" in err
    (tmp_path / "a_file").write_text("x")
    code, _, err = run_cli(capsys, "gradients", "--quick", "--out", tmp_path / "a_file")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "is a file, not a folder" in err
