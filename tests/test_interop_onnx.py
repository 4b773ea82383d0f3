"""ONNX export checked in onnxruntime: for layers and whole networks of many configurations
(every cell, 1-3 layers, both directions, T and B down to 1, every input kind, peephole, CIFG,
NIAF/NOAF, the textbook GRU, every Elman activation), onnxruntime's outputs and final states
equal rnnkit's to 1e-5 from random non-zero initial states; what ONNX cannot express is refused."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import rnnkit  # noqa: E402
from rnnkit.interop.onnx import export_onnx, to_onnx  # noqa: E402
from rnnkit.network import NetworkConfig, SequenceNetwork  # noqa: E402
from rnnkit.ops import leaky_relu  # noqa: E402

TOLERANCE = dict(rtol=1e-5, atol=1e-5)

# Cell options cycled through by the seeded configurations, so each is covered whatever the seed.
LAYER_OPTIONS = [
    ("lstm", {}),
    ("lstm", {"peephole": True}),
    ("lstm", {"variant": "V"}),
    ("lstm", {"variant": "NP"}),
    ("lstm", {"variant": "CIFG"}),
    ("lstm", {"variant": "CIFG", "peephole": False}),
    ("lstm", {"variant": "NIAF"}),
    ("lstm", {"variant": "NOAF", "cell_activation": "elu"}),
    ("lstm", {"gate_activation": leaky_relu(0.3), "cell_activation": "relu"}),
    ("lstm", {"variant": "NIAF", "gate_activation": "tanh", "cell_activation": "elu"}),
    ("lstm", {"bias": False, "peephole": True}),
    ("gru", {}),
    ("gru", {"reset_after": False}),
    ("gru", {"bias": False}),
    ("rnn", {}),
    ("rnn", {"nonlinearity": "relu"}),
    ("rnn", {"nonlinearity": "sigmoid"}),
    ("rnn", {"nonlinearity": "leaky_relu", "negative_slope": 0.25}),
    ("rnn", {"nonlinearity": "elu", "bias": False}),
]
NETWORK_OPTIONS = [
    ("lstm", {}), ("lstm", {"peephole": True}), ("lstm", {"variant": "CIFG"}), ("lstm", {"variant": "NOAF"}),
    ("gru", {}), ("gru", {"reset_after": False}),
    ("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("rnn", {"nonlinearity": "leaky_relu"}),
    ("rnn", {"nonlinearity": "elu"}),
]
LAYERS = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}


def session(proto):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the tests share two cores
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def random_state(model, batch, rng):
    zero = model.initial_state(batch)
    parts = zero if isinstance(zero, tuple) else (zero,)
    parts = tuple(rng.standard_normal(p.shape).astype(np.float32) for p in parts)
    return parts if isinstance(zero, tuple) else parts[0], dict(zip(("h0", "c0"), parts))


def assert_matches(model, proto_or_session, inputs, rng):
    """Run both from the same random initial state; return the largest difference."""
    runner = proto_or_session if isinstance(proto_or_session, ort.InferenceSession) else session(proto_or_session)
    batch = inputs.shape[0] if getattr(model, "batch_first", False) else inputs.shape[1]
    state, feeds = random_state(model, batch, rng)
    expected, final, _ = model.forward(inputs, state)
    expected = [expected, *(final if isinstance(final, tuple) else (final,))]
    got = runner.run(None, {"input": inputs, **feeds})
    assert [g.shape for g in got] == [e.shape for e in expected]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, **TOLERANCE)
    return max(float(np.abs(g - e).max()) for g, e in zip(got, expected))


@pytest.mark.parametrize("seed", range(2 * len(LAYER_OPTIONS)))
def test_layer_matches_onnxruntime(seed):
    rng = np.random.default_rng(seed)
    cell, options = LAYER_OPTIONS[seed % len(LAYER_OPTIONS)]
    batch_first = seed >= len(LAYER_OPTIONS) and seed % 3 == 0
    layer = LAYERS[cell](int(rng.integers(1, 6)), int(rng.integers(1, 7)), int(rng.integers(1, 4)),
                         bidirectional=bool(seed % 2), batch_first=batch_first, rng=seed, **options)
    layer.eval()
    steps, batch = (1, 1) if seed % 5 == 0 else (int(rng.integers(1, 8)), int(rng.integers(1, 5)))
    shape = (batch, steps) if batch_first else (steps, batch)
    assert_matches(layer, to_onnx(layer), rng.standard_normal(shape + (layer.input_size,)).astype(np.float32), rng)


def network_inputs(config: NetworkConfig, steps: int, batch: int, rng) -> np.ndarray:
    if config.input_kind == "features":
        return rng.standard_normal((steps, batch, config.input_size)).astype(np.float32)
    return rng.integers(0, config.input_size, (steps, batch)).astype(np.int64)


@pytest.mark.parametrize("seed", range(2 * len(NETWORK_OPTIONS)))
def test_network_matches_onnxruntime(seed):
    rng = np.random.default_rng(100 + seed)
    cell, options = NETWORK_OPTIONS[seed % len(NETWORK_OPTIONS)]
    kind = ("embedding", "one_hot", "features")[seed % 3]
    config = NetworkConfig(input_size=int(rng.integers(2, 10)), output_size=int(rng.integers(1, 8)), cell=cell,
                           hidden_size=int(rng.integers(1, 7)), num_layers=1 + seed % 3, input_kind=kind,
                           embedding_size=int(rng.integers(1, 5)) if kind == "embedding" else 0,
                           dropout=0.3, bidirectional=seed >= len(NETWORK_OPTIONS), **options)
    network = SequenceNetwork(config, rng=seed).eval()
    proto = to_onnx(network)
    runner = session(proto)
    for steps, batch in ((1, 1), (int(rng.integers(2, 9)), int(rng.integers(1, 5)))):  # one graph, any T and B
        assert_matches(network, runner, network_inputs(config, steps, batch, rng), rng)


@pytest.mark.skipif(not hasattr(NetworkConfig, "tie_weights"), reason="no tied weights in this rnnkit")
def test_tied_weights_network_matches_onnxruntime():
    config = NetworkConfig(input_size=9, output_size=9, cell="lstm", hidden_size=4, num_layers=2,
                           input_kind="embedding", embedding_size=4, tie_weights=True)
    network = SequenceNetwork(config, rng=2).eval()
    rng = np.random.default_rng(2)
    assert_matches(network, to_onnx(network), rng.integers(0, 9, (5, 3)), rng)


def test_stepping_the_graph_one_step_at_a_time_equals_one_run():
    config = NetworkConfig(input_size=7, output_size=7, cell="lstm", hidden_size=5, num_layers=2,
                           input_kind="embedding", embedding_size=3, bidirectional=False)
    network = SequenceNetwork(config, rng=3).eval()
    runner = session(to_onnx(network))
    ids = np.random.default_rng(0).integers(0, 7, (6, 2))
    expected, (h, c), _ = network.forward(ids)
    states = {name: np.zeros((2, 2, 5), np.float32) for name in ("h0", "c0")}
    for t in range(6):
        output, hn, cn = runner.run(None, {"input": ids[t:t + 1], **states})
        np.testing.assert_allclose(output[0], expected[t], **TOLERANCE)
        states = {"h0": hn, "c0": cn}
    np.testing.assert_allclose(states["h0"], h, **TOLERANCE)
    np.testing.assert_allclose(states["c0"], c, **TOLERANCE)


def test_a_float64_model_exports_as_float32():
    layer = rnnkit.GRU(3, 4, 2, bidirectional=True, dtype=np.float64, rng=0).eval()
    proto = to_onnx(layer)
    weights = [t for t in proto.graph.initializer if t.name.endswith(("W", "R", "B"))]
    assert {t.data_type for t in weights} == {onnx.TensorProto.FLOAT}
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    assert_matches(layer, proto, x, np.random.default_rng(1))


def test_onnxruntime_honours_input_forget_for_cifg():
    """CIFG's f rows are zeros in the graph: without input_forget=1, f would be sigmoid(0) = 0.5
    instead of 1 - i, so a runtime that ignored the attribute would fail the parity tests."""
    layer = rnnkit.LSTM(3, 4, variant="CIFG", rng=0).eval()
    proto = to_onnx(layer)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    assert_matches(layer, proto, x, np.random.default_rng(1))
    (node,) = [n for n in proto.graph.node if n.op_type == "LSTM"]
    (attribute,) = [a for a in node.attribute if a.name == "input_forget"]
    assert attribute.i == 1
    attribute.i = 0
    with pytest.raises(AssertionError):
        assert_matches(layer, proto, x, np.random.default_rng(1))


@pytest.mark.parametrize("variant, says", [("NIG", "no input gate"), ("NFG", "no forget gate"),
                                           ("NOG", "no output gate"), ("FGR", "full gate recurrence")])
def test_inexpressible_variants_are_refused(variant, says):
    with pytest.raises(ValueError, match=f"variant {variant} .*{says}"):
        to_onnx(rnnkit.LSTM(3, 4, variant=variant))
    config = NetworkConfig(input_size=5, output_size=5, cell="lstm", hidden_size=4, variant=variant)
    with pytest.raises(ValueError, match=f"variant {variant}"):
        to_onnx(SequenceNetwork(config))


def test_the_written_file_passes_the_checker_and_records_the_configuration(tmp_path):
    config = NetworkConfig(input_size=6, output_size=6, cell="gru", hidden_size=4, num_layers=2,
                           input_kind="one_hot", bidirectional=True)
    path = tmp_path / "model.onnx"
    language_model = {"kind": "char-lm", "vocabulary": list("abcdef")}
    export_onnx(SequenceNetwork(config), path, metadata={"rnnkit.language_model": language_model})
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    properties = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert properties == {"rnnkit.model": config.to_dict(), "rnnkit.language_model": language_model}
    assert [n.op_type for n in model.graph.node].count("GRU") == 2  # one node per layer
    assert [i.name for i in model.graph.input] == ["input", "h0"]
    assert [o.name for o in model.graph.output] == ["output", "hn"]


def test_without_onnx_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    with pytest.raises(ImportError, match=r"rnnkit\[onnx\]"):
        to_onnx(rnnkit.GRU(2, 3))
