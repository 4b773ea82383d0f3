"""The encoder-decoder: gradients through decoder and encoder (padded sources) by finite
differences, the generated tasks, and the CLI end to end with every bad input."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
from gradcheck import numeric_gradient, relative_error

from rnnkit.apps.seq2seq.model import Seq2Seq, Seq2SeqConfig, reverse_rows
from rnnkit.apps.seq2seq.pairs import PairVocabulary, generate_pairs, read_pairs
from rnnkit.cli import main
from rnnkit.data.batches import Conditioned
from rnnkit.losses import softmax_cross_entropy


@pytest.mark.parametrize("cell,layers,reverse", [("lstm", 2, True), ("gru", 1, False), ("rnn", 1, True)])
def test_teacher_forcing_gradients_through_encoder_and_decoder(cell, layers, reverse):
    pairs = [("ab", "ba"), ("abcab", "bacba"), ("c", "cc")]
    vocabulary = PairVocabulary.from_pairs(pairs)
    sources, inputs, targets, mask = vocabulary.arrays(pairs)
    model = Seq2Seq(Seq2SeqConfig(len(vocabulary), cell=cell, hidden_size=4, num_layers=layers, embedding_size=3,
                                  reverse_source=reverse), dtype=np.float64, rng=2)
    batch = Conditioned(sources, inputs.T)

    def loss() -> float:
        return softmax_cross_entropy(model.forward(batch)[0], targets.T, mask.T)[0]

    outputs, _, cache = model.forward(batch)
    model.zero_grad()
    model.backward(softmax_cross_entropy(outputs, targets.T, mask.T)[1], cache)
    for name, param in model.named_parameters():
        assert relative_error(param.grad, numeric_gradient(loss, param.value)) < 1e-6, name
    assert np.abs(model.encoder.weight_ih_l0.grad).sum() > 0  # the encoder is trained through the state


def test_padding_of_a_source_changes_nothing():
    pairs = [("abc", "x"), ("a", "y")]
    vocabulary = PairVocabulary.from_pairs(pairs)
    model = Seq2Seq(Seq2SeqConfig(len(vocabulary), hidden_size=5, embedding_size=3), dtype=np.float64, rng=0)
    together, _ = model.encode(vocabulary.sources(["abc", "a"]))
    alone, _ = model.encode(vocabulary.sources(["a"]))
    for both, one in zip(together, alone):
        np.testing.assert_allclose(both[:, 1], one[:, 0], rtol=0, atol=1e-14)


def test_reverse_rows_keeps_padding_at_the_end():
    ids = np.array([[4, 5, 6, 0], [7, 0, 0, 0], [1, 2, 3, 9]])
    np.testing.assert_array_equal(reverse_rows(ids), [[6, 5, 4, 0], [7, 0, 0, 0], [9, 3, 2, 1]])


def test_generated_tasks_are_right():
    for source, target in generate_pairs("addition", 200, 1):
        a, b = map(int, source.split("+"))
        assert int(target) == a + b and 0 <= a < 1000 and 0 <= b < 1000
    for source, target in generate_pairs("dates", 200, 2):
        day = datetime.date.fromisoformat(target)
        assert str(day.year) in source and str(day.day) in source
    assert all(t == s[::-1] for s, t in generate_pairs("reverse", 100, 3))
    assert len(set(generate_pairs("addition", 500, 4))) == 500  # distinct


def test_cli_trains_on_a_tsv_and_translates(tmp_path, capsys):
    pairs = generate_pairs("reverse", 600, 5)
    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"{s}\t{t}\n" for s, t in pairs))
    assert read_pairs(data) == pairs
    assert main(["seq2seq", "train", "--data", str(data), "--epochs", "2", "--hidden", "16",
                 "--out", str(tmp_path / "run")]) == 0
    assert "held-out exact match:" in capsys.readouterr().out
    checkpoint = str(tmp_path / "run" / "last.safetensors")
    assert main(["seq2seq", "translate", checkpoint, "abc", "hello", "--beam", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()  # one line per source (an untrained model may write "")
    assert len(lines) == 2 and all(set(line) <= set("abcdefghijklmnopqrstuvwxyz") for line in lines)


def exit_code(argv):
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


@pytest.mark.parametrize("content,message", [
    ("abc\tcba\nno tab here\n", "line 2: expected 'source<TAB>target'"),
    ("abc\tcba\n\tx\n", "line 2: the source is empty"),
    ("abc\t\n", "line 1: the target is empty"),
    ("a\tb\tc\n", "line 1: expected 'source<TAB>target', found 2 tabs"),
])
def test_malformed_tsv_says_which_line(tmp_path, capsys, content, message):
    data = tmp_path / "bad.tsv"
    data.write_text(content)
    assert exit_code(["seq2seq", "train", "--data", str(data), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bad_translate_input(tmp_path, capsys):
    pairs = generate_pairs("reverse", 200, 6)
    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"{s}\t{t}\n" for s, t in pairs))
    assert main(["seq2seq", "train", "--data", str(data), "--epochs", "1", "--hidden", "8",
                 "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    checkpoint = str(tmp_path / "run" / "last.safetensors")
    assert exit_code(["seq2seq", "translate", checkpoint, "ABC!"]) == 2
    assert "outside the vocabulary: '!ABC'" in capsys.readouterr().err
    assert exit_code(["seq2seq", "translate", checkpoint, "abc", "--beam", "0"]) == 2
    assert "positive integer" in capsys.readouterr().err
    assert exit_code(["seq2seq", "translate", str(tmp_path / "missing.safetensors"), "abc"]) == 2
    assert exit_code(["seq2seq", "train", "--data", str(tmp_path / "none.tsv")]) == 2
