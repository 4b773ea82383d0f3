"""The Python API of the applications (issue 20, item 2): the language model, the forecaster, the
translator and the captioner learn, predict what their underlying models predict, save what the
command reads (and load what it writes), and refuse bad input in one line."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from rnnkit.apps import lm
from rnnkit.apps.caption import ImageCaptioner
from rnnkit.apps.forecast import RecurrentForecaster
from rnnkit.apps.seq2seq import Translator
from rnnkit.cli import main

matplotlib.use("Agg")
pd = pytest.importorskip("pandas")


# ------------------------------------------------------------------------ language model
@pytest.fixture(scope="module")
def hello():
    return lm.train("hello", steps=300, progress=False)


def test_lm_train_learns_hello_and_samples(hello):
    history = hello.history
    assert history["loss"].iloc[:10].mean() > 1.0 > 0.05 > history["loss"].iloc[-10:].mean()
    assert hello.sample(4, prime="h", greedy=True) == "hello"
    assert hello.sample(10, prime="h", seed=3) == hello.sample(10, prime="h", seed=3)
    assert hello.perplexity("hello") == pytest.approx(np.exp(hello.loss("hello")[0]))
    assert hello.plot_history().get_ylabel() == "nats/char"


def test_lm_save_and_load_are_the_commands_checkpoints(hello, tmp_path, capsys):
    path = tmp_path / "hello.safetensors"
    hello.save(path)
    loaded = lm.load(path)
    assert loaded.sample(12, prime="h", seed=1) == hello.sample(12, prime="h", seed=1)
    assert len(loaded.history) == 300
    assert main(["lm", "sample", str(path), "--length", "4", "--prime", "h", "--greedy"]) == 0
    assert capsys.readouterr().out == "hello\n"


def test_lm_trains_on_a_text_given_as_a_string_and_validates():
    model = lm.train("the quick brown fox jumps over the lazy dog. " * 20, hidden=16, layers=1, embed=8,
                     seq_len=16, batch=4, steps=60, eval_every=30, progress=False)
    assert model.history["val_loss"].dropna().shape == (2,)
    assert set(model.sample(30, seed=0)) <= set("the quick brown fox jumps over the lazy dog. ")


@pytest.mark.parametrize("call, message", [
    (lambda m: lm.train("hello", hiden=3), "unknown setting 'hiden'"),
    (lambda m: lm.train("hello", hidden=0), "hidden=0: expected a positive integer"),
    (lambda m: lm.train("", progress=False), "the text is empty"),
    (lambda m: lm.train("abc", progress=False), "shorter than one window"),
    (lambda m: m.sample(5, prime="z"), "the prime has characters 'z'"),
    (lambda m: m.sample(0), "n=0: expected a positive integer"),
    (lambda m: m.sample(5, temperature=0), "temperature=0"),
    (lambda m: m.perplexity("hex"), "characters 'x'"),
    (lambda m: lm.load("/nonexistent.safetensors"), "does not exist"),
])
def test_lm_errors_are_one_line(hello, call, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        call(hello)


# --------------------------------------------------------------------------- forecaster
def monthly(n: int = 96):
    index = pd.date_range("2000-01-01", periods=n, freq="MS")
    rng = np.random.default_rng(0)
    return pd.Series(10 + np.sin(np.arange(n) * 2 * np.pi / 12) + 0.05 * rng.standard_normal(n), index=index,
                     name="demand")


@pytest.fixture(scope="module")
def forecaster():
    return RecurrentForecaster(window=12, hidden=8, ensemble=1, steps=150, eval_every=25, lr=0.01).fit(monthly())


def test_forecaster_predicts_a_frame_on_the_future_index(forecaster):
    frame = forecaster.predict(6, samples=20)
    assert list(frame.columns) == ["mean", "lower", "upper"]
    assert list(frame.index) == list(pd.date_range("2008-01-01", periods=6, freq="MS"))
    assert (frame["lower"] < frame["mean"]).all() and (frame["mean"] < frame["upper"]).all()
    direct = forecaster.forecaster.forecast(monthly().to_numpy(), horizon=6, samples=20, rng=0)
    np.testing.assert_allclose(frame["mean"], direct.mean[0])
    np.testing.assert_allclose(frame["upper"], direct.upper[0])


def test_forecaster_learns_and_backtests_beside_the_baselines(forecaster):
    losses = forecaster.history["loss"]
    assert losses.iloc[-10:].mean() < losses.iloc[:10].mean()
    table = forecaster.backtest(1)
    assert list(table.columns) == ["MAE", "RMSE", "MASE", "coverage"] and table.index[0].startswith("LSTM 1x8")
    assert "naive" in table.index and table.loc["naive", "MAE"] > table.iloc[0]["MAE"]
    assert forecaster.plot(6).get_title() == "demand: 6-step forecast"


def test_forecaster_save_load_and_the_command(forecaster, tmp_path, capsys):
    path = tmp_path / "model.safetensors"
    forecaster.save(path)
    loaded = RecurrentForecaster.load(path)
    pd.testing.assert_frame_equal(loaded.predict(3), forecaster.predict(3), check_freq=False)
    assert main(["forecast", "predict", str(path), "--horizon", "3", "--plot", str(tmp_path / "p.png")]) == 0
    assert "2008-01-01" in capsys.readouterr().out  # the command reads the series inside the checkpoint


def test_forecaster_on_a_plain_array_continues_the_positions():
    model = RecurrentForecaster(window=4, hidden=4, ensemble=1, steps=20).fit(np.sin(np.arange(50) / 3))
    assert list(model.predict(2, samples=0).index) == [50, 51]


@pytest.mark.parametrize("call, message", [
    (lambda: RecurrentForecaster(window=0), "window=0: expected a positive integer"),
    (lambda: RecurrentForecaster(target="levels"), "target='levels': expected one of"),
    (lambda: RecurrentForecaster().fit("nope"), "unknown dataset 'nope'"),
    (lambda: RecurrentForecaster(window=30).fit(np.arange(20.0)), "fewer than --window 30"),
    (lambda: RecurrentForecaster(window=3).fit([1.0, np.nan] * 20), "1 missing|20 missing"),
    (lambda: RecurrentForecaster().predict(3), "has not been fitted"),
    (lambda: RecurrentForecaster.load("/nonexistent.safetensors"), "does not exist"),
])
def test_forecaster_errors_are_one_line(call, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        call()


# ------------------------------------------------------------------- translator, captioner
PAIRS = [(w, w[::-1]) for w in ["ab", "ba", "abc", "cab", "bca", "aab", "bba", "cc", "ac", "cba", "abca", "bcab"]]


def test_translator_learns_reversal_and_round_trips(tmp_path, capsys):
    model = Translator(hidden=32, embed=8, epochs=60, batch=4, lr=0.02).fit(PAIRS)
    losses = model.history["loss"]
    assert losses.iloc[-5:].mean() < 0.2 * losses.iloc[:5].mean()
    assert model.score(PAIRS) >= 0.9
    assert model.translate("abc") == model.translate(["abc"])[0]
    assert model.translate(["abc"], beam=3) == [model.translate("abc", beam=3)]
    ids = model.vocabulary.sources(["cab"])[0]
    assert model.translate("cab") == model.vocabulary.decode(model.model.decode(ids, max_length=model.max_length))
    path = tmp_path / "reverse.safetensors"
    model.save(path)
    assert Translator.load(path).translate(["abc", "cc"]) == model.translate(["abc", "cc"])
    assert main(["seq2seq", "translate", str(path), "abc"]) == 0
    assert capsys.readouterr().out.strip() == model.translate("abc")
    with pytest.raises(ValueError, match="characters outside the vocabulary: 'z'"):
        model.translate("abz")
    with pytest.raises(ValueError, match="source 1 is empty"):
        model.translate([""])
    with pytest.raises(ValueError, match="pair 1 is"):
        Translator().fit([("a",)])
    with pytest.raises(ValueError, match="beam=0"):
        model.translate("ab", beam=0)


def test_captioner_describes_images(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((40, 6)).astype(np.float32)
    captions = ["a bright square" if image.mean() > 0.5 else "a dark square" for image in images]
    model = ImageCaptioner(hidden=16, embed=4, epochs=150, lr=0.02).fit(images, captions)
    assert model.score(images, captions) >= 0.9
    written = model.describe(images[:3], beam=2)
    assert all(caption in ("a bright square", "a dark square") for caption in written)
    path = tmp_path / "captioner.safetensors"
    model.save(path)
    assert ImageCaptioner.load(path).describe(images[:3], beam=2) == written
    with pytest.raises(ValueError, match="reads images of 6 values, got 5"):
        model.describe(np.zeros((1, 5)))
    with pytest.raises(ValueError, match="40 images but 3 captions"):
        ImageCaptioner().fit(images, captions[:3])


def test_a_model_trained_from_python_resumes_through_the_command(tmp_path, capsys):
    """`lm.train` on a string, `save`, then `rnnkit lm train --resume`: without the text the
    command says what to give (it was a TypeError); with it, training goes on beside the file."""
    from clirun import run_cli

    from rnnkit.apps import lm

    text = "the quick brown fox jumps over the lazy dog. " * 20
    lm.train(text, hidden=16, layers=1, embed=8, seq_len=16, batch=4, steps=10, eval_every=5,
             progress=False).save(tmp_path / "fox.safetensors")
    code, _, err = run_cli(capsys, "lm", "train", "--resume", tmp_path / "fox.safetensors", "--steps", "15")
    assert code == 2 and "trained on a text given in Python" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "fox.txt").write_text(text)
    code, _, err = run_cli(capsys, "lm", "train", tmp_path / "fox.txt", "--resume", tmp_path / "fox.safetensors",
                           "--steps", "15", "--sample-every", "0")
    assert code == 0, err
    assert (tmp_path / "last.safetensors").exists()  # written beside the checkpoint it continued
