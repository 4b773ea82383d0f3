"""PyTorch interop both ways, to 1e-5 in float32, on many configurations: rnnkit -> the README's
PyTorch snippet (run exactly as documented) and PyTorch modules -> `import_torch` -> rnnkit;
the export never imports torch; what PyTorch lacks is refused."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from safetensors.torch import save_file  # noqa: E402

from rnnkit.apps.lm.model import LanguageModel  # noqa: E402
from rnnkit.checkpoint import load_checkpoint  # noqa: E402
from rnnkit.data.text import Vocabulary  # noqa: E402
from rnnkit.interop.torch import export_torch, import_torch, read_state  # noqa: E402
from rnnkit.network import NetworkConfig, SequenceNetwork  # noqa: E402
from rnnkit.train import load_model_weights  # noqa: E402

TOLERANCE = dict(rtol=1e-5, atol=1e-5)

# The README's snippet, verbatim but for its input line, which the tests swap for their own.
README_SNIPPET = r'''
import json, torch
from safetensors import safe_open
from safetensors.torch import load_file

with safe_open("model.safetensors", "pt") as file:        # from: rnnkit export CKPT --to torch model.safetensors
    arch = json.loads(file.metadata()["rnnkit.torch"])
net = torch.nn.ModuleDict({name: getattr(torch.nn, kind)(*args, **kwargs)
                           for name, (kind, args, kwargs) in arch["modules"].items()})
net.load_state_dict(load_file("model.safetensors"))
net.eval()

x = torch.tensor([[0], [1], [2]])                         # (T, B) token ids, or (T, B, F) float features
if "embedding" in net: x = net["embedding"](x)
elif arch["one_hot"]: x = torch.nn.functional.one_hot(x, arch["one_hot"]).float()
y, state = net["rnn"](x)                                  # state: h, or (h, c) for an LSTM; pass it back to go on
logits = net["head"](y)                                   # (T, B, outputs), as rnnkit's forward
'''
INPUT_LINE = "x = torch.tensor([[0], [1], [2]])"

CONFIGS = [  # cell options PyTorch has, cycled through with random sizes
    ("lstm", {}), ("lstm", {"variant": "NP"}), ("gru", {}), ("rnn", {}), ("rnn", {"nonlinearity": "relu"}),
    ("lstm", {"variant": "V", "peephole": False}),  # Greff's vanilla without peepholes is PyTorch's LSTM
]
KINDS = ("embedding", "one_hot", "features")


def random_config(seed: int) -> NetworkConfig:
    rng = np.random.default_rng(seed)
    cell, options = CONFIGS[seed % len(CONFIGS)]
    kind = KINDS[seed % 3]
    return NetworkConfig(input_size=int(rng.integers(2, 9)), output_size=int(rng.integers(1, 7)), cell=cell,
                         hidden_size=int(rng.integers(1, 6)), num_layers=1 + seed % 3, input_kind=kind,
                         embedding_size=int(rng.integers(1, 5)) if kind == "embedding" else 0,
                         bidirectional=bool(seed % 2), **options)


def inputs_for(config: NetworkConfig, rng, steps=None, batch=None) -> np.ndarray:
    steps = steps or int(rng.integers(1, 7))
    batch = batch or int(rng.integers(1, 4))
    if config.input_kind == "features":
        return rng.standard_normal((steps, batch, config.input_size)).astype(np.float32)
    return rng.integers(0, config.input_size, (steps, batch))


def run_readme_snippet(folder, inputs: np.ndarray, monkeypatch) -> dict:
    assert INPUT_LINE in README_SNIPPET
    monkeypatch.chdir(folder)
    namespace = {"INPUT": torch.from_numpy(inputs)}
    with torch.no_grad():
        exec(README_SNIPPET.replace(INPUT_LINE, "x = INPUT"), namespace)
    return namespace


def as_list(state):
    parts = state if isinstance(state, tuple) else (state,)
    return [s.detach().numpy() if hasattr(s, "detach") else s for s in parts]


@pytest.mark.parametrize("seed", range(12))
def test_exported_state_dict_runs_in_the_readme_snippet(seed, tmp_path, monkeypatch):
    config = random_config(seed)
    network = SequenceNetwork(config, rng=seed).eval()
    export_torch(network, tmp_path / "model.safetensors")
    rng = np.random.default_rng(seed)
    inputs = inputs_for(config, rng, *((1, 1) if seed % 4 == 0 else (None, None)))
    namespace = run_readme_snippet(tmp_path, inputs, monkeypatch)
    expected, final, _ = network.forward(inputs)
    np.testing.assert_allclose(namespace["logits"].numpy(), expected, **TOLERANCE)
    for got, want in zip(as_list(namespace["state"]), as_list(final)):
        np.testing.assert_allclose(got, want, **TOLERANCE)


def torch_network(config: NetworkConfig, seed: int, names=("embedding", "rnn", "head"), bias=True):
    """PyTorch modules of `config`'s shape with PyTorch's own random initialisation."""
    torch.manual_seed(seed)
    directions = 2 if config.bidirectional else 1
    rnn_input = config.embedding_size if config.input_kind == "embedding" else config.input_size
    kwargs = {"nonlinearity": config.nonlinearity} if config.cell == "rnn" else {}
    rnn_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[config.cell]
    modules = {names[1]: rnn_class(rnn_input, config.hidden_size, config.num_layers, bias=bias,
                                   bidirectional=config.bidirectional, **kwargs),
               names[2]: torch.nn.Linear(config.hidden_size * directions, config.output_size)}
    if config.input_kind == "embedding":
        modules[names[0]] = torch.nn.Embedding(config.input_size, config.embedding_size)
    return torch.nn.ModuleDict(modules).eval()


def torch_forward(net, config, names, inputs, state):
    x = torch.from_numpy(inputs)
    if config.input_kind == "embedding":
        x = net[names[0]](x)
    elif config.input_kind == "one_hot":
        x = torch.nn.functional.one_hot(x, config.input_size).float()
    state = tuple(torch.from_numpy(s) for s in state)
    with torch.no_grad():
        y, final = net[names[1]](x, state if len(state) == 2 else state[0])
        return net[names[2]](y).numpy(), as_list(final)


@pytest.mark.parametrize("seed", range(12))
def test_torch_state_dict_imports_into_an_equal_network(seed, tmp_path):
    config = random_config(seed)
    names = ("embedding", "rnn", "head") if seed % 2 else ("encoder", "lstm_stack", "decoder")
    net = torch_network(config, seed, names, bias=seed % 5 != 3)
    save_file(net.state_dict(), tmp_path / "torch.safetensors")
    nonlinearity = config.nonlinearity if config.cell == "rnn" else None
    network = import_torch(tmp_path / "torch.safetensors", tmp_path / "rnnkit.safetensors",
                           nonlinearity=nonlinearity, input_kind=None if config.input_kind == "embedding"
                           else config.input_kind)
    assert network.config == replace(config, variant=None, peephole=None)  # nothing tells NP from PyTorch's
    tensors, info = load_checkpoint(tmp_path / "rnnkit.safetensors")
    loaded = SequenceNetwork(NetworkConfig.from_dict(info["model"]))  # as a checkpoint reader rebuilds it
    load_model_weights(loaded, tensors, "imported")
    rng = np.random.default_rng(seed)
    inputs = inputs_for(config, rng)
    zero = loaded.initial_state(inputs.shape[1])
    state = tuple(rng.standard_normal(s.shape).astype(np.float32) for s in as_list(zero))
    expected, final = torch_forward(net, config, names, inputs, state)
    got, got_final, _ = loaded.forward(inputs, state if len(state) == 2 else state[0])
    np.testing.assert_allclose(got, expected, **TOLERANCE)
    for g, e in zip(as_list(got_final), final):
        np.testing.assert_allclose(g, e, **TOLERANCE)


def test_import_with_a_vocabulary_makes_a_language_model(tmp_path):
    config = NetworkConfig(input_size=5, output_size=5, cell="gru", hidden_size=6, num_layers=2,
                           input_kind="one_hot")
    save_file(torch_network(config, 0).state_dict(), tmp_path / "torch.safetensors")
    import_torch(tmp_path / "torch.safetensors", tmp_path / "lm.safetensors", vocabulary=Vocabulary(list("\nabcd")))
    model = LanguageModel.load(tmp_path / "lm.safetensors")
    assert model.network.config == config and model.vocabulary.tokens == list("\nabcd")
    assert len(model.generate(20, rng=np.random.default_rng(0))) == 20
    with pytest.raises(ValueError, match="the vocabulary has 3 tokens"):
        import_torch(tmp_path / "torch.safetensors", tmp_path / "x.safetensors", vocabulary=Vocabulary(list("abc")))


def test_export_then_import_gives_back_the_same_network_and_vocabulary(tmp_path):
    config = NetworkConfig(input_size=4, output_size=4, cell="rnn", hidden_size=3, num_layers=2, dropout=0.2,
                           input_kind="one_hot", bidirectional=True, nonlinearity="relu")
    network = SequenceNetwork(config, rng=5)
    language_model = {"kind": "char-lm", "vocabulary": list("wxyz")}
    export_torch(network, tmp_path / "state.safetensors", language_model=language_model)
    back = import_torch(tmp_path / "state.safetensors", tmp_path / "back.safetensors")
    assert back.config == config
    for (name, p), (_, q) in zip(network.named_parameters(), back.named_parameters()):
        np.testing.assert_array_equal(p.value, q.value, err_msg=name)
    assert LanguageModel.load(tmp_path / "back.safetensors").vocabulary.tokens == list("wxyz")
    tensors, description = read_state(tmp_path / "state.safetensors")
    assert sorted(tensors) == sorted(name for name, _ in network.named_parameters())
    assert description["language_model"]["vocabulary"] == list("wxyz") and description["one_hot"] == 4


@pytest.mark.skipif(not hasattr(NetworkConfig, "tie_weights"), reason="no tied weights in this rnnkit")
def test_tied_weights_export_under_both_names_and_come_back_tied(tmp_path, monkeypatch):
    config = NetworkConfig(input_size=6, output_size=6, cell="gru", hidden_size=4, input_kind="embedding",
                           embedding_size=4, tie_weights=True)
    network = SequenceNetwork(config, rng=4).eval()
    export_torch(network, tmp_path / "model.safetensors")
    inputs = np.random.default_rng(4).integers(0, 6, (5, 2))
    namespace = run_readme_snippet(tmp_path, inputs, monkeypatch)
    np.testing.assert_allclose(namespace["logits"].numpy(), network.forward(inputs)[0], **TOLERANCE)
    back = import_torch(tmp_path / "model.safetensors", tmp_path / "back.safetensors")
    assert back.config == config and back.head.weight is back.embedding.weight


def test_export_does_not_import_torch(tmp_path):
    script = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now fails
        "from rnnkit.network import NetworkConfig, SequenceNetwork\n"
        "from rnnkit.interop.torch import export_torch, import_torch\n"
        "net = SequenceNetwork(NetworkConfig(input_size=3, output_size=3, hidden_size=2))\n"
        f"export_torch(net, {str(tmp_path / 'a.safetensors')!r})\n"
        f"import_torch({str(tmp_path / 'a.safetensors')!r}, {str(tmp_path / 'b.safetensors')!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("options, says", [
    ({"cell": "lstm", "peephole": True}, "peephole"),
    ({"cell": "lstm", "variant": "V"}, "variant V"),
    ({"cell": "lstm", "variant": "CIFG"}, "variant CIFG"),
    ({"cell": "gru", "reset_after": False}, "textbook GRU"),
    ({"cell": "rnn", "nonlinearity": "elu"}, "nonlinearity 'elu'"),
    ({"cell": "rnn", "nonlinearity": "sigmoid"}, "nonlinearity 'sigmoid'"),
])
def test_what_pytorch_lacks_is_refused(options, says, tmp_path):
    network = SequenceNetwork(NetworkConfig(input_size=3, output_size=3, hidden_size=2, **options))
    with pytest.raises(ValueError, match=says):
        export_torch(network, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_import_refusals(tmp_path):
    lstm = torch.nn.ModuleDict({"rnn": torch.nn.LSTM(3, 4, proj_size=2), "head": torch.nn.Linear(2, 3)})
    save_file(lstm.state_dict(), tmp_path / "proj.safetensors")
    with pytest.raises(ValueError, match="proj_size"):
        import_torch(tmp_path / "proj.safetensors", tmp_path / "out.safetensors")
    extra = torch.nn.ModuleDict({"rnn": torch.nn.GRU(3, 4), "head": torch.nn.Linear(4, 3),
                                 "norm": torch.nn.LayerNorm(4)})
    save_file(extra.state_dict(), tmp_path / "extra.safetensors")
    with pytest.raises(ValueError, match="no place for: norm.bias, norm.weight"):
        import_torch(tmp_path / "extra.safetensors", tmp_path / "out.safetensors")
    bare = torch.nn.GRU(3, 4)
    save_file(bare.state_dict(), tmp_path / "bare.safetensors")
    with pytest.raises(ValueError, match="no output layer"):
        import_torch(tmp_path / "bare.safetensors", tmp_path / "out.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ValueError, match="not a readable safetensors state dict"):
        import_torch(tmp_path / "junk.safetensors", tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()
