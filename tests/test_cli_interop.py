"""`rnnkit export CKPT --to onnx|torch OUT` and `rnnkit import-torch STATE OUT` on checkpoints
written by the trainer: what they write runs elsewhere and comes back; every bad input is one
line on stderr and exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from clirun import run_cli

from rnnkit.apps.lm.model import LanguageModel
from rnnkit.checkpoint import load_checkpoint
from rnnkit.cli import main
from rnnkit.losses import mse, softmax_cross_entropy
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam
from rnnkit.train import Trainer

VOCABULARY = list("\n abcdefgh")


def save_trained(path: Path, config: NetworkConfig, loss_fn, metadata: dict) -> SequenceNetwork:
    """A checkpoint exactly as training writes it (weights, optimizer, metadata)."""
    network = SequenceNetwork(config, rng=1)
    Trainer(network, Adam(network.parameters(), lr=0.01), loss_fn).save(path, metadata)
    return network.eval()


@pytest.fixture
def language_model(tmp_path):
    config = NetworkConfig(input_size=len(VOCABULARY), output_size=len(VOCABULARY), cell="lstm", hidden_size=8,
                           num_layers=2, input_kind="embedding", embedding_size=4, dropout=0.1)
    path = tmp_path / "lm.safetensors"
    network = save_trained(path, config, softmax_cross_entropy, {"kind": "char-lm", "vocabulary": VOCABULARY})
    return path, network


def run(argv, capsys):
    return run_cli(capsys, *argv)


def test_export_to_onnx_runs_in_onnxruntime(language_model, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    path, network = language_model
    code, out, err = run(["export", path, "--to", "onnx", tmp_path / "lm.onnx"], capsys)
    assert (code, err) == (0, "") and "lm.onnx" in out
    session = ort.InferenceSession(str(tmp_path / "lm.onnx"), providers=["CPUExecutionProvider"])
    language_model = json.loads(session.get_modelmeta().custom_metadata_map["rnnkit.language_model"])
    assert language_model == {"kind": "char-lm", "vocabulary": VOCABULARY}
    ids = np.random.default_rng(0).integers(0, len(VOCABULARY), (9, 3))
    expected, (h, c), _ = network.forward(ids)
    zeros = np.zeros((2, 3, 8), np.float32)
    output, hn, cn = session.run(None, {"input": ids, "h0": zeros, "c0": zeros})
    for got, want in ((output, expected), (hn, h), (cn, c)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# The README's onnxruntime snippet, verbatim: greedy sampling from an exported language model.
README_ONNX_SNIPPET = r'''
import json
import numpy as np
import onnxruntime as ort

session = ort.InferenceSession("model.onnx")        # from: rnnkit export runs/lm/best.safetensors --to onnx model.onnx
metadata = session.get_modelmeta().custom_metadata_map
vocabulary = json.loads(metadata["rnnkit.language_model"])["vocabulary"]
state = {i.name: np.zeros((i.shape[0], 1, i.shape[2]), np.float32) for i in session.get_inputs()[1:]}  # h0 [, c0]
token, text = vocabulary.index("\n"), ""
for _ in range(200):                                 # greedy: always the likeliest next character
    output, *final = session.run(None, {"input": np.array([[token]]), **state})
    state = dict(zip(state, final))                  # hn [, cn] are the next step's h0 [, c0]
    token = int(output[0, 0].argmax())
    text += vocabulary[token]
print(text)
'''


def test_readme_onnx_snippet_samples_what_rnnkit_samples(language_model, tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnxruntime")
    path, _ = language_model
    monkeypatch.chdir(tmp_path)
    assert run(["export", path, "--to", "onnx", "model.onnx"], capsys)[0] == 0
    exec(README_ONNX_SNIPPET, {})
    printed = capsys.readouterr().out
    assert printed == LanguageModel.load(path).generate(200, greedy=True) + "\n"


def test_any_sequence_network_exports_not_only_language_models(tmp_path, capsys):
    pytest.importorskip("onnx")
    config = NetworkConfig(input_size=3, output_size=1, cell="gru", hidden_size=5, bidirectional=True)
    save_trained(tmp_path / "f.safetensors", config, mse, {})
    for target, name in (("onnx", "f.onnx"), ("torch", "f.pt-state.safetensors")):
        code, _, err = run(["export", tmp_path / "f.safetensors", "--to", target, tmp_path / name], capsys)
        assert (code, err) == (0, "") and (tmp_path / name).stat().st_size > 0


def test_torch_export_and_import_round_trip_to_a_sampling_language_model(language_model, tmp_path, capsys):
    path, network = language_model
    state = tmp_path / "lm.pt-state.safetensors"
    assert run(["export", path, "--to", "torch", state], capsys)[0] == 0
    code, out, err = run(["import-torch", state, tmp_path / "back.safetensors"], capsys)
    assert (code, err) == (0, "") and "2 x 8 LSTM, embedding input" in out
    back = LanguageModel.load(tmp_path / "back.safetensors")
    assert back.vocabulary.tokens == VOCABULARY and back.network.config == network.config
    for (name, p), (_, q) in zip(network.named_parameters(), back.network.named_parameters()):
        np.testing.assert_array_equal(p.value, q.value, err_msg=name)
    code, out, err = run(["lm", "sample", tmp_path / "back.safetensors", "--length", "30"], capsys)
    assert code == 0 and len(out) == 31 and set(out) <= set(VOCABULARY)


def test_a_word_level_language_model_keeps_its_level_and_unknown_token(tmp_path, capsys):
    words = ["the", "cat", "sat", "\n", "<unk>"]
    user = {"kind": "char-lm", "vocabulary": words, "level": "words", "unknown": "<unk>",
            "settings": {"source_file": "/home/someone/private.txt"}}
    config = NetworkConfig(input_size=5, output_size=5, cell="gru", hidden_size=4, input_kind="embedding",
                           embedding_size=3)
    save_trained(tmp_path / "words.safetensors", config, softmax_cross_entropy, user)
    assert run(["export", tmp_path / "words.safetensors", "--to", "torch", tmp_path / "state.safetensors"],
               capsys)[0] == 0
    assert run(["import-torch", tmp_path / "state.safetensors", tmp_path / "back.safetensors"], capsys)[0] == 0
    _, info = load_checkpoint(tmp_path / "back.safetensors")
    assert info["user"] == {"kind": "char-lm", "vocabulary": words, "level": "words", "unknown": "<unk>"}
    assert info["model"] == config.to_dict()


def test_import_of_a_foreign_torch_state_with_a_vocabulary(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    model = torch.nn.ModuleDict({"rnn": torch.nn.RNN(4, 6, 2, nonlinearity="relu"), "fc": torch.nn.Linear(6, 4)})
    save_file(model.state_dict(), tmp_path / "torch.safetensors")
    (tmp_path / "vocab.json").write_text(json.dumps(["a", "b", "c", "\n"]))
    code, out, err = run(["import-torch", tmp_path / "torch.safetensors", tmp_path / "lm.safetensors",
                          "--vocabulary", tmp_path / "vocab.json", "--nonlinearity", "relu"], capsys)
    assert (code, err) == (0, "") and "one_hot input" in out
    loaded = LanguageModel.load(tmp_path / "lm.safetensors")
    assert loaded.vocabulary.tokens == ["a", "b", "c", "\n"] and loaded.network.config.nonlinearity == "relu"
    (tmp_path / "corpus.txt").write_text("cab\ncab")  # a text: its sorted characters
    code, _, err = run(["import-torch", tmp_path / "torch.safetensors", tmp_path / "lm2.safetensors",
                        "--vocabulary", tmp_path / "corpus.txt", "--nonlinearity", "relu"], capsys)
    assert code == 0 and LanguageModel.load(tmp_path / "lm2.safetensors").vocabulary.tokens == ["\n", "a", "b", "c"]


def corrupt(path: Path, tmp_path: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    (tmp_path / "corrupt.safetensors").write_bytes(bytes(data))
    return tmp_path / "corrupt.safetensors"


def variant_checkpoint(tmp_path: Path, **options) -> Path:
    config = NetworkConfig(input_size=4, output_size=4, cell="lstm", hidden_size=3, **options)
    save_trained(tmp_path / "variant.safetensors", config, mse, {})
    return tmp_path / "variant.safetensors"


BAD = {
    "missing checkpoint": (lambda d, ckpt: ["export", d / "none.safetensors", "--to", "onnx", d / "o"],
                           "does not exist"),
    "corrupt checkpoint": (lambda d, ckpt: ["export", corrupt(ckpt, d), "--to", "torch", d / "o"], "corrupted"),
    "not a checkpoint": (lambda d, ckpt: ["export", ckpt.parent, "--to", "torch", d / "o"], "is a directory"),
    "unknown target": (lambda d, ckpt: ["export", ckpt, "--to", "tflite", d / "o"], "invalid choice: 'tflite'"),
    "no target": (lambda d, ckpt: ["export", ckpt, d / "o"], "--to"),
    "NIG to onnx": (lambda d, ckpt: ["export", variant_checkpoint(d, variant="NIG"), "--to", "onnx", d / "o"],
                    "variant NIG has no input gate"),
    "FGR to onnx": (lambda d, ckpt: ["export", variant_checkpoint(d, variant="FGR"), "--to", "onnx", d / "o"],
                    "variant FGR"),
    "peephole to torch": (lambda d, ckpt: ["export", variant_checkpoint(d, peephole=True), "--to", "torch",
                                           d / "o"], "peephole"),
    "output folder missing": (lambda d, ckpt: ["export", ckpt, "--to", "torch", d / "no" / "o"],
                              "/no does not exist"),
    "onnx output folder missing": (lambda d, ckpt: ["export", ckpt, "--to", "onnx", d / "no" / "o"],
                                   "/no does not exist"),
    "missing state": (lambda d, ckpt: ["import-torch", d / "none.safetensors", d / "o"], "does not exist"),
    "state is an rnnkit checkpoint": (lambda d, ckpt: ["import-torch", ckpt, d / "o"],
                                      "already an rnnkit checkpoint"),
    "state is not safetensors": (lambda d, ckpt: ["import-torch", write(d / "s.safetensors", "hello" * 9), d / "o"],
                                 "not a readable safetensors state dict"),
    "vocabulary of the wrong size": (lambda d, ckpt: ["import-torch", exported(ckpt, d), d / "o", "--vocabulary",
                                                      write(d / "v.txt", "xyz")], "the vocabulary has 3 tokens"),
    "vocabulary not a list": (lambda d, ckpt: ["import-torch", exported(ckpt, d), d / "o", "--vocabulary",
                                               write(d / "v.json", '{"a": 1}')], "JSON list of strings"),
    "nonlinearity for an LSTM": (lambda d, ckpt: ["import-torch", exported(ckpt, d), d / "o", "--nonlinearity",
                                                  "relu"], "Elman RNN only"),
}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def exported(checkpoint: Path, folder: Path) -> Path:
    assert main(["export", str(checkpoint), "--to", "torch", str(folder / "state.safetensors")]) == 0
    return folder / "state.safetensors"


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(case, language_model, tmp_path, capsys):
    make_args, message = BAD[case]
    argv = make_args(tmp_path, language_model[0])
    capsys.readouterr()
    code, _, err = run(argv, capsys)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_missing_onnx_package_is_one_line(language_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    code, _, err = run(["export", language_model[0], "--to", "onnx", tmp_path / "o.onnx"], capsys)
    assert code == 2 and "pip install 'rnnkit[onnx]'" in err and len(err.strip().splitlines()) == 1
