"""The LSTM's forget_bias option: where the constant goes, that the default is PyTorch's
initialisation untouched, the variants' rules, and the network configuration's old files."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from rnnkit.network import NetworkConfig, SequenceNetwork

H = 5


def blocks(layer, name):
    return layer.state_dict()[name].reshape(-1, H)  # one row of H per gate block


@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (2, True)])
def test_forget_bias_is_added_to_the_f_block_of_bias_ih_only(num_layers, bidirectional):
    plain = rnnkit.LSTM(3, H, num_layers, bidirectional=bidirectional, rng=4)
    opened = rnnkit.LSTM(3, H, num_layers, bidirectional=bidirectional, forget_bias=1.5, rng=4)
    before, after = plain.state_dict(), opened.state_dict()
    assert before.keys() == after.keys()
    for name in before:
        difference = (after[name] - before[name]).astype(np.float64)
        if name.startswith("bias_ih"):
            expected = np.zeros((4, H))
            expected[1] = 1.5  # blocks i, f, g, o: only f moves, by exactly the constant
            np.testing.assert_allclose(difference.reshape(4, H), expected, atol=1e-6)
        else:  # every other array is the same draw: the option consumes no randomness
            np.testing.assert_array_equal(difference, 0.0)
    assert opened.forget_bias == 1.5


def test_the_forget_gate_starts_near_sigmoid_of_the_bias():
    layer = rnnkit.LSTM(2, 64, forget_bias=3.0, dtype=np.float64, rng=0)
    _, _, cache = layer.forward(np.zeros((4, 8, 2)))
    f = cache.internals()["l0"]["f"]
    assert abs(f.mean() - 1 / (1 + np.exp(-3.0))) < 0.01  # the U(+-1/8) draws average out
    assert rnnkit.LSTM(2, 64, dtype=np.float64, rng=0).forward(np.zeros((4, 8, 2)))[2] \
        .internals()["l0"]["f"].mean() == pytest.approx(0.5, abs=0.01)


def test_default_is_pytorch_parity():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ours = rnnkit.LSTM(3, H, 2, forget_bias=0.0, dtype=np.float64, rng=7)
    theirs = torch.nn.LSTM(3, H, 2).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((6, 2, 3))
    y, _, _ = ours.forward(x)
    expected, _ = theirs(torch.from_numpy(x))
    np.testing.assert_allclose(y, expected.detach().numpy(), atol=1e-12)
    default = rnnkit.LSTM(3, H, 2, dtype=np.float64, rng=7).state_dict()
    assert all(np.array_equal(value, default[name]) for name, value in ours.state_dict().items())


def test_cifg_subtracts_it_from_the_input_gate_so_the_coupled_forget_gate_opens():
    plain = rnnkit.LSTM(2, H, variant="CIFG", rng=3)
    opened = rnnkit.LSTM(2, H, variant="CIFG", forget_bias=2.0, rng=3)
    difference = opened.bias_ih_l0.value - plain.bias_ih_l0.value  # blocks i, g, o
    np.testing.assert_allclose(difference.reshape(3, H), [[-2.0] * H, [0.0] * H, [0.0] * H], atol=1e-6)
    x = np.zeros((3, 4, 2), np.float32)
    f_plain = 1 - plain.forward(x)[2].internals()["l0"]["i"]
    f_opened = 1 - opened.forward(x)[2].internals()["l0"]["i"]
    assert f_opened.mean() > 0.8 > 0.6 > f_plain.mean()


@pytest.mark.parametrize("options, says", [
    ({"variant": "NFG", "forget_bias": 1.0}, "variant NFG has none"),
    ({"bias": False, "forget_bias": 1.0}, "bias=False"),
    ({"forget_bias": float("nan")}, "finite"),
])
def test_a_forget_bias_with_nowhere_to_go_is_refused(options, says):
    with pytest.raises(ValueError, match=says):
        rnnkit.LSTM(2, H, **options)


def test_nfg_takes_the_default():
    assert rnnkit.LSTM(2, H, variant="NFG", forget_bias=0.0).forget_bias == 0.0


def test_network_config_carries_it_and_old_configurations_load():
    config = NetworkConfig(input_size=3, output_size=2, hidden_size=H, forget_bias=1.0)
    assert NetworkConfig.from_dict(config.to_dict()) == config
    old = config.to_dict()
    del old["forget_bias"]  # a checkpoint written before the option
    assert NetworkConfig.from_dict(old).forget_bias == 0.0
    network = SequenceNetwork(config, rng=2)
    reference = SequenceNetwork(NetworkConfig(input_size=3, output_size=2, hidden_size=H), rng=2)
    shift = network.rnn.bias_ih_l0.value - reference.rnn.bias_ih_l0.value
    np.testing.assert_allclose(shift[H:2 * H], 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="GRU has no forget gate"):
        NetworkConfig(input_size=3, output_size=2, cell="gru", forget_bias=1.0)


class Built(Exception):
    """Raised instead of training: the model as the command built it."""


@pytest.fixture
def built_model(monkeypatch):
    def stop(trainer, *args, **kwargs):
        raise Built(trainer.model)

    monkeypatch.setattr("rnnkit.train.Trainer.fit", stop)

    def run(*argv):
        from rnnkit.cli import main
        with pytest.raises(Built) as raised:
            main([str(a) for a in argv])
        return raised.value.args[0]
    return run


def command_lines(folder):
    text = folder / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 40)
    reviews = folder / "reviews.tsv"
    reviews.write_text("id\ttext\tlabel\n" + "".join(f"{i}\t{'a fine film' if i % 2 else 'a dull film'}\t"
                                                    f"{'pos' if i % 2 else 'neg'}\n" for i in range(60)))
    pairs = folder / "pairs.tsv"
    pairs.write_text("".join(f"{w}\t{w[::-1]}\n" for w in ("abc", "hello", "world", "fox", "dog") * 20))
    small = ["--hidden", "16"]
    return {
        "lm": ["lm", "train", text, *small, "--layers", "2", "--embed", "0", "--seq-len", "8", "--batch", "4",
               "--out", folder / "lm"],
        "classify": ["classify", "train", reviews, *small, "--out", folder / "classify"],
        "forecast": ["forecast", "train", "--dataset", "nile", *small, "--ensemble", "1", "--out", folder / "fc"],
        "seq2seq": ["seq2seq", "train", "--data", pairs, *small, "--out", folder / "s2s"],
        "caption": ["caption", "train", *small, "--out", folder / "caption"],
    }


@pytest.mark.parametrize("command", ["lm", "classify", "forecast", "seq2seq", "caption"])
def test_every_command_that_builds_an_lstm_takes_forget_bias(command, built_model, tmp_path):
    argv = command_lines(tmp_path)[command]
    opened, plain = built_model(*argv, "--forget-bias", "2"), built_model(*argv)
    for model, shift in ((opened, 2.0), (plain, 0.0)):
        layers = [m for m in model.modules() if isinstance(m, rnnkit.LSTM)]
        assert layers, "the command built no LSTM"
        for layer in layers:
            for name, bias in layer.named_parameters():
                if name.startswith("bias_ih"):  # U(+-1/4) draws: f's mean sits at the shift
                    gates = bias.value.reshape(4, -1).mean(axis=1)
                    assert abs(gates[1] - shift) < 0.2 and np.all(np.abs(gates[[0, 2, 3]]) < 0.2), (name, gates)
    if command == "lm":
        assert opened.config.forget_bias == 2.0


def test_the_python_api_passes_forget_bias_on(monkeypatch):
    """The notebook API takes the same option as the commands: the estimator, the translator,
    the captioner and the forecaster build their LSTMs with it."""
    from rnnkit.apps.caption import ImageCaptioner
    from rnnkit.apps.classify import RecurrentClassifier
    from rnnkit.apps.forecast import RecurrentForecaster
    from rnnkit.apps.seq2seq import Translator

    def forget_biases(model):  # the f block (rows H..2H) of every LSTM's first-layer bias_ih
        return [layer.bias_ih_l0.value.reshape(4, -1)[1] for layer in model.modules() if isinstance(layer, rnnkit.LSTM)]

    texts, labels = ["good film", "bad plot"] * 4, ["pos", "neg"] * 4
    classifier = RecurrentClassifier(hidden=4, embed=4, epochs=1, min_freq=1, forget_bias=2.0, random_state=0)
    translator = Translator(hidden=4, embed=4, epochs=1, forget_bias=2.0).fit([("ab", "ba"), ("ba", "ab")])
    captioner = ImageCaptioner(hidden=4, embed=4, epochs=1, forget_bias=2.0).fit(
        np.eye(3, dtype=np.float32), ["a one", "a two", "a three"])
    forecaster = RecurrentForecaster(window=4, hidden=4, ensemble=1, steps=2, forget_bias=2.0).fit(
        np.sin(np.arange(60.0)))
    for model in (classifier.fit(texts, labels).model_, translator.model, captioner.model,
                  forecaster.forecaster.network):
        biases = forget_biases(model)
        assert biases and all(np.all(b > 1.0) for b in biases)  # PyTorch's draw is within +-1/sqrt(H) = +-0.5
