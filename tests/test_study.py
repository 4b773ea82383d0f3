"""The study's parts that need no Ray: the study file, the tasks, one trial, the report."""

import json
import math

import numpy as np
import pytest
from clirun import run_cli

from rnnkit.apps.study import tasks
from rnnkit.apps.study.chorales import LOWEST_PITCH, PITCHES, piano_roll
from rnnkit.apps.study.report import summarise, variance_shares
from rnnkit.apps.study.spec import VARIANTS, load_study, study_from_dict
from rnnkit.apps.study.trial import run_trial
from rnnkit.data.batches import ExampleBatches, Padded


def small_study(**changes):
    source = {
        "name": "small", "seed": 3, "trials": 5, "variants": ["V", "NFG", "GRU"], "optimizer": "adam",
        "budget": {"steps": 30},
        "space": {"learning_rate": {"log_uniform": [1e-3, 1e-1]}, "hidden_size": {"log_uniform_int": [4, 16]},
                  "momentum": {"one_minus_log_uniform": [0.01, 1.0]}, "input_noise": {"uniform": [0.0, 0.5]}},
        "tasks": {"adding": {"length": 8, "train_sequences": 64, "validation_sequences": 32}},
    }
    source.update(changes)
    return source


# ------------------------------------------------------------------------------ study file
def test_trials_are_paired_across_variants_and_drawn_inside_the_space():
    spec = study_from_dict(small_study())
    trials = spec.trial_list()
    assert len(trials) == 5 * 3 and len({t.key for t in trials}) == 15
    for index in range(5):
        same = [t.hyperparameters for t in trials if t.index == index]
        assert len(same) == 3 and same[0] == same[1] == same[2]
    drawn = [t.hyperparameters for t in trials if t.variant == "V"]
    assert all(1e-3 <= h["learning_rate"] <= 1e-1 and 4 <= h["hidden_size"] <= 16 for h in drawn)
    assert all(isinstance(h["hidden_size"], int) and 0 <= h["momentum"] <= 0.99 for h in drawn)
    assert all(0 <= h["input_noise"] <= 0.5 and h["batch_size"] == 32 for h in drawn)
    assert len({h["learning_rate"] for h in drawn}) == 5  # every trial draws anew
    # Deterministic, and a trial's draw does not depend on how many trials the study has.
    again = study_from_dict(small_study(trials=2)).trial_list()
    assert [t.hyperparameters for t in again] == [t.hyperparameters for t in trials[:6]]


def test_log_uniform_draws_spread_evenly_over_decades():
    spec = study_from_dict(small_study(trials=400, variants=["V"]))
    rates = np.log10([t.hyperparameters["learning_rate"] for t in spec.trial_list()])
    counts = np.histogram(rates, bins=2, range=(-3, -1))[0]
    assert abs(counts[0] - counts[1]) < 60  # 200 +- 3 sigma per decade


@pytest.mark.parametrize("change, message", [
    ({"variants": ["V", "XYZ"]}, "unknown variant 'XYZ'"),
    ({"variants": ["V", "vanilla"]}, "listed twice"),
    ({"budget": {}}, "needs steps"),
    ({"budget": {"steps": 0}}, "budget.steps must be an integer >= 1"),
    ({"optimizer": "lbfgs"}, "optimizer must be one of"),
    ({"space": {"hidden_size": 8}}, "needs learning_rate"),
    ({"space": {"learning_rate": {"log_uniform": [0, 1]}, "hidden_size": 8}}, "needs positive bounds"),
    ({"space": {"learning_rate": {"gauss": [0, 1]}, "hidden_size": 8}}, "unknown distribution 'gauss'"),
    ({"space": {"learning_rate": 0.1, "hidden_size": 8, "momentum": {"uniform": [0.5, 1.5]}}}, "momentum cannot be"),
    ({"space": {"learning_rate": 0.1, "hidden_size": 8, "dropout": 0.1}}, "unknown key(s) dropout"),
    ({"tasks": {"translation": {}}}, "unknown task 'translation'"),
    ({"tasks": {"adding": {"lenght": 5}}}, "unknown option(s) lenght"),
    ({"tasks": {"adding": {"length": -5}}}, "tasks.adding.length must be a positive integer"),
    ({"tasks": {}}, "name at least one task"),
    ({"epochs": 3}, "unknown key(s) epochs"),
    ({"tasks": {"charlm": {"validation_chars": 3000}}}, "validation_chars must exceed 3,200"),
    ({"tasks": {"charlm": {"train_chars": 1000, "seq_len": 50}}}, "train_chars must exceed batch_size x seq_len"),
])
def test_a_bad_study_file_names_what_is_wrong(change, message):
    with pytest.raises(ValueError) as error:
        study_from_dict(small_study(**change))
    assert message in str(error.value)


def test_study_file_errors_reach_the_command_line_as_one_line(tmp_path, capsys):
    code, _, err = run_cli(capsys, "study", "run", tmp_path / "missing.toml")
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [unclosed\n")
    code, _, err = run_cli(capsys, "study", "run", broken)
    assert code == 2 and err.count("\n") == 1 and "not a valid TOML file" in err
    code, _, err = run_cli(capsys, "study", "report", tmp_path / "nowhere")
    assert code == 2 and "does not exist" in err


def test_the_shipped_study_files_are_valid():
    from pathlib import Path

    root = Path(__file__).parent.parent / "examples" / "studies"
    odyssey = load_study(root / "odyssey.toml")
    assert set(odyssey.variants) == set(VARIANTS) and set(odyssey.tasks) == {"adding", "charlm", "jsb"}
    assert odyssey.steps_for("adding") == 1500 and odyssey.steps_for("charlm") == 1000
    assert len(odyssey.trial_list()) == 3 * 11 * 6
    enough = load_study(root / "odyssey20.toml")  # issue 18: >= 20 trials per LSTM variant
    assert set(enough.variants) == set(VARIANTS) - {"GRU", "RNN"} and set(enough.tasks) == {"charlm", "jsb"}
    assert enough.trials == 20 and len(enough.trial_list()) == 2 * 9 * 20
    # Its character-model trials are odyssey.toml's first six, drawn the same way.
    first = {t.key: t.hyperparameters for t in odyssey.trial_list() if t.task == "charlm"}
    assert all(first[t.key] == t.hyperparameters for t in enough.trial_list() if t.key in first)
    assert len(load_study(root / "quick.toml").trial_list()) == 3 * 4


def test_a_trials_random_streams_are_independent():
    """Weights, data order and noise must not be drawn from the stream the hyperparameters came
    from: the first weight would then be a function of the learning rate."""
    from rnnkit.network import SequenceNetwork

    trials = study_from_dict(small_study(trials=40, variants=["GRU"])).trial_list()
    rates = np.log([t.hyperparameters["learning_rate"] for t in trials])
    first_weights = [SequenceNetwork(tasks.network_config("GRU", 2, 1, 4),
                                     rng=np.random.default_rng(t.seed_for("weights"))).parameters()[0].value.flat[0]
                     for t in trials]
    assert abs(np.corrcoef(rates, first_weights)[0, 1]) < 0.5
    assert len({t.seed_for(p) for t in trials[:1] for p in ("hyperparameters", "weights", "data_order")}) == 3


def test_cpus_belong_to_the_local_ray_only(tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text('[budget]\nsteps = 1\n[space]\nlearning_rate = 0.1\nhidden_size = 4\n[tasks.adding]\n')
    code, _, err = run_cli(capsys, "study", "run", study, "--address", "auto", "--cpus", "2", "--out", tmp_path)
    assert code == 2 and "--cpus sizes the local Ray" in err


# ------------------------------------------------------------------------------ results dir
def test_one_writer_per_results_directory_and_a_study_may_grow(tmp_path):
    from rnnkit.apps.study.results import ResultsDir

    first = ResultsDir(tmp_path, small_study())
    with pytest.raises(ValueError, match="another `rnnkit study run` is writing"):
        ResultsDir(tmp_path, small_study())
    first.append({"key": "adding/V/0", "status": "failed", "error": "boom"})
    first.append({"key": "adding/V/0", "status": "ok", "score": 0.1})  # a retry replaces the failure
    assert [r["status"] for r in first.records] == ["ok"]
    first.close()
    grown = ResultsDir(tmp_path, small_study(trials=9))  # only `trials` changed: allowed
    assert grown.finished_keys() == {"adding/V/0"}
    assert json.loads((tmp_path / "study.json").read_text())["trials"] == 9
    grown.close()
    with pytest.raises(ValueError, match="different study"):
        ResultsDir(tmp_path, small_study(seed=4))


# ---------------------------------------------------------------------------------- tasks
def test_piano_roll_samples_the_notes_sounding_on_each_beat():
    notes = [(0.0, 2.0, 60), (0.0, 1.0, 64), (1.5, 1.0, 67), (2.5, 0.5, 72), (3.0, 1.0, 20)]
    roll = piano_roll(notes, 4.0)
    assert roll.shape == (4, PITCHES) and roll.dtype == np.uint8
    sounding = [sorted(LOWEST_PITCH + np.flatnonzero(row)) for row in roll]
    # beat 0: 60 and 64 start; beat 1: 60 still sounds; beat 2: 67 (started at 1.5) still
    # sounds; 72 (2.5-3.0) falls between beats; MIDI 20 is below the range.
    assert sounding == [[60, 64], [60], [67], []]


def test_a_real_chorale_becomes_a_four_voice_roll():
    music21 = pytest.importorskip("music21")
    from rnnkit.apps.study.chorales import score_roll

    roll = score_roll(music21.corpus.parse("bach/bwv269"))
    assert roll.shape == (63, PITCHES)
    assert sorted(LOWEST_PITCH + np.flatnonzero(roll[0])) == [43, 59, 62, 67]
    voices = roll.sum(axis=1)
    assert voices.max() <= 4 and np.mean(voices == 4) > 0.8


def test_chorale_split_keeps_each_piece_in_one_part():
    from rnnkit.apps.study.chorales import chorale_split

    rng = np.random.default_rng(0)
    rolls = [(rng.random((int(rng.integers(5, 20)), PITCHES)) < 0.1).astype(np.uint8) for _ in range(300)]
    rolls += [rolls[k].copy() for k in range(0, 60, 3)]  # 20 pieces filed twice
    train, validation, test = chorale_split(rolls)
    assert (len(train), len(validation), len(test)) == (229, 60, 11)
    digests = [[r.tobytes() + bytes(r.shape) for r in part] for part in (train, validation, test)]
    assert len(set().union(*map(set, digests))) == 300 == sum(map(len, digests))


def test_jsb_validation_score_is_the_nll_per_real_step_over_padded_batches():
    """A trial's JSB score, through the padded batches and the trainer's evaluation, equals the
    per-step negative log-likelihood computed one chorale at a time without padding."""
    from rnnkit.network import SequenceNetwork
    from rnnkit.optim import SGD
    from rnnkit.train import Trainer

    rng = np.random.default_rng(1)
    rolls = [(rng.random((int(rng.integers(4, 30)), PITCHES)) < 0.08).astype(np.uint8) for _ in range(7)]
    data = {**tasks._padded_rolls(rolls, "train"), **tasks._padded_rolls(rolls, "val")}
    trial = study_from_dict(small_study(trials=1, variants=["NP"])).trial_list()[0]
    setup = tasks.setup("jsb", data, 3, 0.0, trial)
    model = SequenceNetwork(tasks.network_config("NP", PITCHES, PITCHES, 6), dtype=np.float64, rng=2)
    score = Trainer(model, SGD(model.parameters(), lr=0.1), setup.loss).evaluate(setup.validation)
    model.eval()
    total, steps = 0.0, 0
    for roll in rolls:
        logits, _, _ = model.forward(roll[:-1, None, :].astype(np.float64))
        p = 1 / (1 + np.exp(-logits[:, 0]))
        target = roll[1:]
        total += -(target * np.log(p) + (1 - target) * np.log(1 - p)).sum()
        steps += len(roll) - 1
    assert score == pytest.approx(total / steps, rel=1e-9)


def test_per_step_nll_sums_over_pitches_and_averages_over_real_steps():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 3, 4))
    targets = (rng.random((5, 3, 4)) < 0.3).astype(float)
    mask = np.ones((5, 3), bool)
    mask[3:, 1] = False
    loss, grad = tasks.per_step_bce(logits, targets, mask)
    p = 1 / (1 + np.exp(-logits))
    nll = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).sum(axis=2)
    assert loss == pytest.approx(nll[mask].mean(), rel=1e-12)
    expected = (p - targets) * mask[..., None] / mask.sum()
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-15)


def test_input_noise_is_reproducible_training_only_and_padding_is_cut():
    x = np.zeros((4, 10, 2), np.float32)
    padding = np.zeros((4, 10), bool)
    padding[:, :3] = True
    padding[0, :6] = True
    source = ExampleBatches(x, x, mask=padding, padding=padding, batch_size=4, strategy="full")
    noisy = tasks.NoisyInputs(source, 0.5, (1, 2))
    first, targets, mask = noisy.batch(0, 0)
    assert isinstance(first, Padded) and first.inputs.shape == (6, 4, 2) and mask.shape == (6, 4)
    assert 0.4 < first.inputs.std() < 0.6
    np.testing.assert_array_equal(noisy.batch(0, 0)[0].inputs, first.inputs)
    assert not np.array_equal(noisy.batch(1, 0)[0].inputs, first.inputs)
    clean = list(noisy.in_order())
    assert len(clean) == 1 and not clean[0][0].inputs.any()


def test_adding_data_counts_only_the_last_step():
    data = tasks.prepare("adding", {"length": 12, "train_sequences": 50, "validation_sequences": 20})
    assert data["train_x"].shape == (50, 12, 2) and data["val_y"].shape == (20, 12, 1)
    marked = data["train_x"][:, :, 1] == 1
    assert (marked.sum(axis=1) == 2).all()
    sums = (data["train_x"][:, :, 0] * marked).sum(axis=1)
    np.testing.assert_allclose(data["train_y"][:, -1, 0], sums, rtol=1e-6)


# ---------------------------------------------------------------------------------- trials
def trial_with(variant, **hyperparameters):
    source = small_study(variants=[variant], trials=1,
                         space={"learning_rate": 0.02, "hidden_size": 16, "momentum": 0.9, **hyperparameters})
    return study_from_dict(source).trial_list()[0]


def test_a_trial_learns_the_adding_problem_with_short_lags():
    data = tasks.prepare("adding", {"length": 6, "train_sequences": 2000, "validation_sequences": 200})
    record = run_trial(trial_with("GRU"), data, "adam", 300, None)
    assert record["status"] == "ok" and record["steps"] == 300
    assert record["score"] < 0.02  # from 1/6 for a network that always answers 1
    assert record["solved_fraction"] > 0.3
    json.dumps(record, allow_nan=False)  # what the results file will hold


def test_a_trial_with_a_hopeless_learning_rate_is_recorded_as_diverged():
    data = tasks.prepare("adding", {"length": 6, "train_sequences": 64, "validation_sequences": 32})
    record = run_trial(trial_with("RNN", learning_rate=1e6, momentum=0.9), data, "sgd", 50, None)
    assert record["status"] == "diverged" and record["score"] is None and "diverged" in record["error"]


# ---------------------------------------------------------------------------------- report
def synthetic_records(rng):
    """V and NP alike; NFG 0.3 worse; GRU 0.3 better; the score driven by the learning rate.
    Trials are paired, as a study draws them: trial k has the same hyperparameters everywhere."""
    records = []
    offsets = {"V": 0.0, "NP": 0.0, "NFG": 0.3, "GRU": -0.3}
    rates, noises = 10 ** rng.uniform(-4, -1, 40), rng.uniform(0, 1, 40)
    for variant, offset in offsets.items():
        for k, (rate, noise) in enumerate(zip(rates, noises)):
            score = 2.0 + offset + 0.5 * (np.log10(rate) + 2.5) ** 2 + rng.normal(0, 0.02)
            records.append({"key": f"charlm/{variant}/{k}", "task": "charlm", "variant": variant, "trial": k,
                            "status": "ok", "score": score,
                            "hyperparameters": {"learning_rate": rate, "input_noise": noise, "hidden_size": 32}})
    records.append({"key": "charlm/NP/99", "task": "charlm", "variant": "NP", "trial": 99, "status": "failed",
                    "score": None, "error": "MemoryError: out of memory", "hyperparameters": {}})
    return records


def test_report_marks_the_variants_that_differ_from_vanilla():
    summaries = {s.variant: s for s in summarise(synthetic_records(np.random.default_rng(0)), "charlm")}
    assert summaries["NFG"].direction == "+" and summaries["NFG"].p_value < 0.05
    assert summaries["GRU"].direction == "-" and summaries["GRU"].p_value < 0.05
    assert summaries["NP"].direction == "" and summaries["NP"].failed == 1 and summaries["NP"].scored == 40
    assert summaries["V"].p_value is None
    for s in summaries.values():
        assert s.best <= s.top_mean <= s.median


def test_variance_shares_find_the_hyperparameter_that_matters():
    shares = variance_shares(synthetic_records(np.random.default_rng(1)), "charlm")
    assert set(shares) == {"learning_rate", "input_noise", "variant"}  # hidden_size never varied
    assert shares["learning_rate"] > 0.5 and shares["input_noise"] < 0.05
    assert shares["learning_rate"] > shares["variant"] > shares["input_noise"]


def test_rank_shares_are_not_taken_over_by_a_few_blown_up_runs():
    records = synthetic_records(np.random.default_rng(5))
    gru = [r for r in records if r["variant"] == "GRU" and r["status"] == "ok"]
    for record in gru[:3]:
        record["score"] = 300.0  # three runs blow up (test above: learning_rate > 0.5 without them)
    on_scores = variance_shares(records, "charlm")
    on_ranks = variance_shares(records, "charlm", ranks=True)
    assert on_scores["learning_rate"] < 0.4  # three runs out of 160 take most of the scores' variance
    assert on_ranks["learning_rate"] > 0.6 and on_ranks["variant"] < 0.3


def test_report_writes_tables_plots_and_failures(tmp_path, capsys):
    with open(tmp_path / "results.jsonl", "w") as handle:
        for record in synthetic_records(np.random.default_rng(2)):
            handle.write(json.dumps(record) + "\n")
        handle.write('{"key": "charlm/V/7", "sta')  # a line torn by a kill: ignored
    code, out, _ = run_cli(capsys, "study", "report", tmp_path, "--out", tmp_path / "report")
    assert code == 0
    assert "| NFG | 40 | 0 | 0 |" in out and "worse" in out and "better" in out
    assert "Variance of the scores explained by each input alone" in out and "learning_rate" in out
    assert "Variance of the ranks of the scores explained" in out
    assert "charlm/NP/99: MemoryError: out of memory" in out
    assert (tmp_path / "report" / "report.md").read_text() in out
    png = (tmp_path / "report" / "charlm_boxplot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_report_rejects_a_damaged_results_file(tmp_path, capsys):
    (tmp_path / "results.jsonl").write_text('{"key": "a", "status": "ok"}\nnot json\n')
    code, _, err = run_cli(capsys, "study", "report", tmp_path)
    assert code == 2 and "line 2 is not a JSON object" in err and err.count("\n") == 1


def test_median_and_best_are_what_they_say():
    records = [{"key": f"adding/V/{k}", "task": "adding", "variant": "V", "trial": k, "status": "ok",
                "score": s, "solved_fraction": f, "hyperparameters": {}}
               for k, (s, f) in enumerate([(0.5, 0.0), (0.1, 0.995), (0.3, 0.5)])]
    (summary,) = summarise(records, "adding")
    assert summary.best == 0.1 and summary.median == 0.3 and summary.solved == 1
    assert math.isclose(summary.top_mean, 0.3)  # the top 10 % is at least three trials


def test_paired_split_separates_configuration_from_variant():
    from rnnkit.apps.study.report import paired_shares

    config_effect = {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0}   # variance 1.25 per cell
    variant_effect = {"V": 0.0, "GRU": 0.5}            # variance 0.0625 per cell
    records = [{"key": f"jsb/{v}/{k}", "task": "jsb", "variant": v, "trial": k, "status": "ok",
                "score": 5 + config_effect[k] + variant_effect[v], "hyperparameters": {}}
               for k in config_effect for v in variant_effect]
    records.append({"key": "jsb/V/4", "task": "jsb", "variant": "V", "trial": 4, "status": "ok", "score": 99.0,
                    "hyperparameters": {}})  # GRU has no trial 4: left out of the paired split
    shares = paired_shares(records, "jsb")
    assert shares["configurations"] == 4
    assert shares["configuration"] == pytest.approx(1.25 / 1.3125)
    assert shares["variant"] == pytest.approx(0.0625 / 1.3125)
    assert shares["interaction"] == pytest.approx(0.0, abs=1e-12)
    from rnnkit.apps.study.report import _variance_text

    text = _variance_text(records, "jsb")
    assert "over the 4 configurations" in text and "need at least 20 trials per variant" in text


def test_the_paired_test_compares_each_configuration_with_vanilla_on_the_same_configuration():
    rng = np.random.default_rng(4)
    # A spread of 1.0 between configurations drowns a 0.05 offset for an unpaired test; paired
    # by configuration, the offset is all there is (noise 0.01).
    spread = rng.normal(0, 1.0, 12)
    offsets = {"V": 0.0, "NP": 0.0, "NOG": 0.05, "CIFG": -0.05}
    records = [{"key": f"jsb/{v}/{k}", "task": "jsb", "variant": v, "trial": k, "status": "ok",
                "score": 9 + spread[k] + offset + rng.normal(0, 0.01), "hyperparameters": {}}
               for v, offset in offsets.items() for k in range(12)]
    records.append({"key": "jsb/NOG/12", "task": "jsb", "variant": "NOG", "trial": 12, "status": "ok",
                    "score": 50.0, "hyperparameters": {}})  # vanilla has no trial 12: not a pair
    summaries = {s.variant: s for s in summarise(records, "jsb")}
    assert summaries["NOG"].paired_direction == "+" and summaries["NOG"].paired_count == 12
    assert summaries["CIFG"].paired_direction == "-" and summaries["CIFG"].paired_p < 0.01
    assert summaries["NP"].paired_direction == "" and summaries["NP"].paired_p > 0.05
    assert summaries["NOG"].direction == ""  # the top trials alone cannot see it
    assert summaries["V"].paired_p is None
    few = [r for r in records if r["trial"] < 4]
    assert all(s.paired_p is None for s in summarise(few, "jsb"))


def test_the_committed_odyssey20_results_rebuild_their_report(tmp_path):
    """docs/study/odyssey20 holds the 20-trial study's results and the report written from them:
    `rnnkit study report` rebuilds the same tables and tests (the random forest's shares are
    left out of the comparison: they may move with the scikit-learn version)."""
    from pathlib import Path

    from rnnkit.apps.study.report import write_report

    committed = Path(__file__).resolve().parents[1] / "docs" / "study" / "odyssey20"
    text, _ = write_report(committed, out=tmp_path)

    def stable(report: str) -> list[str]:
        return [line for line in report.splitlines() if not line.startswith("Variance of the")]

    assert stable(text) == stable((committed / "report.md").read_text(encoding="utf-8"))
    assert "# Study report: 360 trials" in text and text.count("Variance of the ranks of the scores") == 2
