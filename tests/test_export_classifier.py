"""Export of many-to-one models (issue 19, item 9): a classifier and a regressor, to ONNX and to
PyTorch, give rnnkit's answers to 1e-5 on a padded batch of different lengths; `rnnkit export`
writes a classifier trained by `rnnkit classify train` with its vocabulary and labels; what
export cannot write is refused in one line. Before the fix, every export here raised ("unknown
network configuration key(s): network, target_mean, target_scale, task" from the CLI; "can export
a SequenceNetwork or an RNN/LSTM/GRU layer, not SequenceClassifier" from Python)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from clirun import run_cli
from test_classify_cli import TINY, write_marker_file

from rnnkit.apps.classify.model import ClassifierConfig, SequenceClassifier, SequenceRegressor, load_model
from rnnkit.apps.seq2seq.model import Seq2Seq, Seq2SeqConfig
from rnnkit.cli import main
from rnnkit.losses import softmax_cross_entropy
from rnnkit.network import NetworkConfig
from rnnkit.optim import Adam
from rnnkit.train import Trainer

TOLERANCE = dict(rtol=1e-5, atol=1e-5)
ROOT = Path(__file__).resolve().parents[1]
LENGTHS = np.array([3, 7, 1, 5, 7])  # a padded batch: every length, the longest twice

# The README's PyTorch snippet for a classifier, verbatim but for its two input lines.
README_CLASSIFIER_SNIPPET = r'''
import json, torch
from safetensors import safe_open
from safetensors.torch import load_file

with safe_open("classifier.safetensors", "pt") as file:   # from: rnnkit export CKPT --to torch classifier.safetensors
    arch = json.loads(file.metadata()["rnnkit.torch"])
net = torch.nn.ModuleDict({name: getattr(torch.nn, kind)(*args, **kwargs)
                           for name, (kind, args, kwargs) in arch["modules"].items()})
net.load_state_dict(load_file("classifier.safetensors"))
net.eval()

x = torch.tensor([[4, 9], [7, 0], [5, 0]])                 # (T, B) token ids padded at the end, or (T, B, F) features
lengths = torch.tensor([3, 1])                             # each sequence's real length
if "embedding" in net: x = net["embedding"](x)
packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
_, state = net["rnn"](packed)                              # each sequence stops at its own length
h = state[0] if isinstance(state, tuple) else state        # (layers * directions, B, H)
top = h[-2:] if net["rnn"].bidirectional else h[-1:]       # the top layer's final h: forward, then reverse
y = net["head"](torch.cat(list(top), dim=1))               # (B, classes): the logits
task = arch["classifier"]
if task["task"] == "regression":                           # one number per sequence, in the target's units
    y = task["target_mean"] + task["target_scale"] * y[:, 0]
'''
INPUT_LINES = ("x = torch.tensor([[4, 9], [7, 0], [5, 0]])", "lengths = torch.tensor([3, 1])")


def randomised(model):
    """The model with every parameter moved off its initial value (biases included), in eval mode."""
    rng = np.random.default_rng(7)
    for p in model.parameters():
        p.value += rng.normal(0, 0.3, p.value.shape).astype(p.value.dtype)
    return model.eval()


@pytest.fixture
def classifier() -> SequenceClassifier:
    network = NetworkConfig(input_size=12, output_size=3, cell="lstm", hidden_size=5, num_layers=2,
                            input_kind="embedding", embedding_size=4, dropout=0.3, bidirectional=True)
    return randomised(SequenceClassifier(ClassifierConfig(network), rng=1))


@pytest.fixture
def regressor() -> SequenceRegressor:
    network = NetworkConfig(input_size=3, output_size=1, cell="gru", hidden_size=4, num_layers=2,
                            input_kind="features", bidirectional=True)
    return randomised(SequenceRegressor(ClassifierConfig(network, "regression", 2.5, 3.0), rng=2))


def padded_batch(model, seed: int = 0):
    """Batch-major inputs (N, T) ids or (N, T, F) features with their mask (N, T): LENGTHS real
    steps each, padded at the end (ids with 0, rnnkit's <pad>; features with noise)."""
    rng = np.random.default_rng(seed)
    network = model.config.network
    mask = np.arange(LENGTHS.max())[None, :] < LENGTHS[:, None]
    if network.input_kind == "features":
        return rng.standard_normal(mask.shape + (network.input_size,)).astype(np.float32), mask
    return np.where(mask, rng.integers(2, network.input_size, mask.shape), 0), mask


def onnx_answer(path, inputs, mask) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"input": np.ascontiguousarray(np.swapaxes(inputs, 0, 1)), "sequence_lens": mask.sum(1).astype(np.int32)}
    return session.run(None, feed)[0]


def test_classifier_to_onnx_matches_outputs_and_probabilities(classifier, tmp_path):
    pytest.importorskip("onnx")
    from rnnkit.interop.onnx import export_onnx

    ids, mask = padded_batch(classifier)
    export_onnx(classifier, tmp_path / "c.onnx")
    logits = onnx_answer(tmp_path / "c.onnx", ids, mask)
    np.testing.assert_allclose(logits, classifier.outputs(ids, mask), **TOLERANCE)
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probabilities / probabilities.sum(1, keepdims=True),
                               classifier.predict_proba(ids, mask), **TOLERANCE)


def test_regressor_to_onnx_predicts_in_the_targets_units(regressor, tmp_path):
    onnx = pytest.importorskip("onnx")
    from rnnkit.interop.onnx import export_onnx

    features, mask = padded_batch(regressor)
    export_onnx(regressor, tmp_path / "r.onnx")
    prediction = onnx_answer(tmp_path / "r.onnx", features, mask)
    assert prediction.shape == (len(LENGTHS),)
    np.testing.assert_allclose(prediction, regressor.predict(features, mask), **TOLERANCE)
    properties = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "r.onnx")).metadata_props}
    assert properties["rnnkit.model"] == regressor.config.to_dict()


def run_readme_snippet(folder, inputs, mask, monkeypatch) -> dict:
    torch = pytest.importorskip("torch")
    assert f"```python{README_CLASSIFIER_SNIPPET}```" in (ROOT / "README.md").read_text()
    snippet = README_CLASSIFIER_SNIPPET
    for line, replacement in zip(INPUT_LINES, ("x = INPUT", "lengths = LENGTHS")):
        assert line in snippet
        snippet = snippet.replace(line, replacement)
    monkeypatch.chdir(folder)
    namespace = {"INPUT": torch.from_numpy(np.ascontiguousarray(np.swapaxes(inputs, 0, 1))),
                 "LENGTHS": torch.from_numpy(mask.sum(1))}
    with torch.no_grad():
        exec(snippet, namespace)
    return namespace


@pytest.mark.parametrize("which", ["classifier", "regressor"])
def test_the_readme_torch_snippet_reproduces_rnnkit(which, request, tmp_path, monkeypatch):
    from rnnkit.interop.torch import export_torch

    model = request.getfixturevalue(which)
    inputs, mask = padded_batch(model, seed=1)
    export_torch(model, tmp_path / "classifier.safetensors")
    answer = run_readme_snippet(tmp_path, inputs, mask, monkeypatch)["y"].numpy()
    expected = model.outputs(inputs, mask) if which == "classifier" else model.predict(inputs, mask)
    np.testing.assert_allclose(answer, expected, **TOLERANCE)


# ------------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A bidirectional LSTM classifier trained for one epoch by `rnnkit classify train`."""
    folder = tmp_path_factory.mktemp("export_classifier")
    data = write_marker_file(folder / "reviews.tsv", rows=60)
    argv = ["classify", "train", data, *TINY, "--epochs", "1", "--no-baseline", "--out", folder / "run"]
    assert main([str(a) for a in argv]) == 0
    return folder / "run" / "best.safetensors"


def test_cli_exports_a_trained_classifier_to_onnx(trained, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    model, user = load_model(trained)
    code, out, err = run_cli(capsys, "export", trained, "--to", "onnx", tmp_path / "x.onnx")
    assert (code, err) == (0, "") and "x.onnx" in out
    session = ort.InferenceSession(str(tmp_path / "x.onnx"), providers=["CPUExecutionProvider"])
    metadata = json.loads(session.get_modelmeta().custom_metadata_map["rnnkit.classifier"])
    assert metadata["vocabulary"] == user["vocabulary"] and metadata["labels"] == ["neg", "pos"]
    assert (metadata["task"], metadata["input"], metadata["tokens"]) == ("classification", "text", "words")
    ids, mask = padded_batch(model)
    np.testing.assert_allclose(onnx_answer(tmp_path / "x.onnx", ids, mask), model.outputs(ids, mask), **TOLERANCE)


def test_cli_exports_a_trained_classifier_to_torch(trained, tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    model, user = load_model(trained)
    code, out, err = run_cli(capsys, "export", trained, "--to", "torch", tmp_path / "classifier.safetensors")
    assert (code, err) == (0, "") and "unknown network configuration" not in err
    ids, mask = padded_batch(model, seed=2)
    namespace = run_readme_snippet(tmp_path, ids, mask, monkeypatch)
    np.testing.assert_allclose(namespace["y"].numpy(), model.outputs(ids, mask), **TOLERANCE)
    assert namespace["task"]["labels"] == ["neg", "pos"] and namespace["task"]["vocabulary"] == user["vocabulary"]
    assert namespace["arch"]["head_reads"] == "final_state"
    code, _, err = run_cli(capsys, "import-torch", tmp_path / "classifier.safetensors", tmp_path / "back.safetensors")
    assert code == 2 and "holds a classifier" in err and len(err.strip().splitlines()) == 1


def test_what_export_cannot_write_is_one_line(tmp_path, capsys):
    model = Seq2Seq(Seq2SeqConfig(vocabulary_size=6, hidden_size=3, embedding_size=2))
    Trainer(model, Adam(model.parameters()), softmax_cross_entropy).save(
        tmp_path / "s2s.safetensors", {"kind": "seq2seq", "vocabulary": list("abc"), "max_length": 4})
    for target in ("onnx", "torch"):
        code, _, err = run_cli(capsys, "export", tmp_path / "s2s.safetensors", "--to", target, tmp_path / "o")
        assert code == 2 and "holds a seq2seq" in err and len(err.strip().splitlines()) == 1, err
        assert "unknown network configuration" not in err and not (tmp_path / "o").exists()


def test_cli_exports_a_regressor_with_its_target_scaling(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    data = write_marker_file(tmp_path / "counts.tsv", rows=60, regression=True)
    argv = ["classify", "train", data, "--regression", *TINY, "--epochs", "1", "--no-baseline", "--out", tmp_path]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()  # training's progress
    model, _ = load_model(tmp_path / "best.safetensors")
    code, _, err = run_cli(capsys, "export", tmp_path / "best.safetensors", "--to", "onnx", tmp_path / "r.onnx")
    assert (code, err) == (0, "")
    ids, mask = padded_batch(model)
    np.testing.assert_allclose(onnx_answer(tmp_path / "r.onnx", ids, mask), model.predict(ids, mask), **TOLERANCE)
    import onnx

    properties = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "r.onnx")).metadata_props}
    scaling = {key: properties["rnnkit.classifier"][key] for key in ("task", "target_mean", "target_scale")}
    assert scaling == {"task": "regression", "target_mean": model.config.target_mean,
                       "target_scale": model.config.target_scale} and model.config.target_scale != 1.0
