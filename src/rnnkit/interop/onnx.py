"""Export to ONNX: a recurrent layer, or a whole `SequenceNetwork`, as one ONNX graph built from
the standard `RNN`, `LSTM` and `GRU` operators (opset 17), float32, checked by onnx's checker.

The graph of a SequenceNetwork, with L layers, D directions, H hidden units, T and B dynamic:

    input   (T, B) int64 token ids, or (T, B, F) float32 features
    h0      (L*D, B, H) float32        the initial state, as `SequenceNetwork.forward` takes it
    c0      (L*D, B, H) float32        LSTM only
      -> Gather(embedding.weight) | OneHot(V) | nothing                 (T, B, E)
      -> for each layer l: one LSTM/GRU/RNN node, initial state h0[l*D:(l+1)*D]
         Y (T, D, B, H) -> Transpose(0, 2, 1, 3) -> Reshape(0, 0, -1)   (T, B, D*H)
      -> MatMul(head.weight^T) + head.bias                              (T, B, O)
    output  (T, B, O)
    hn, cn  (L*D, B, H)                the Y_h (and Y_c) of the layers, concatenated

so a caller steps the model by feeding hn/cn back as h0/c0. Dropout is the identity here
(inference); an id outside the vocabulary gives a zero one-hot vector (rnnkit raises). The
model's metadata_props hold the configuration ("rnnkit.model") and, from `rnnkit export`, a
language model's vocabulary ("rnnkit.language_model"), each as JSON. A bare RNN/LSTM/GRU layer
exports the same way without encoder and head: inputs
`input` (T, B, I) ((B, T, I) if batch_first), `h0` [, `c0`]; outputs `output`, `hn` [, `cn`].

Weight layouts. ONNX stacks the directions on a leading axis: W (D, G*H, I), R (D, G*H, H),
B (D, 2*G*H), P (D, 3*H); the reverse direction, like ours, reads the sequence backwards and
writes its outputs in input order. Within one direction the gate blocks are reordered:

    LSTM   ours i, f, g, o       ONNX i, o, f, c      (c is our candidate g)
    GRU    ours r, z, n          ONNX z, r, h         (h is our candidate n)
    RNN    one block either way
    B      ONNX's is [W biases; R biases]: our bias_ih then bias_hh, each reordered
    P      ours one row per learned gate, in order i, f, o; ONNX [P_i; P_o; P_f]

The equations agree block for block: both give the output gate's peephole the new cell state
c_t; ONNX's GRU with linear_before_reset=1 is PyTorch's formula (our reset_after=True) and with
0 the textbook one (reset_after=False). CIFG, which has no f block (f = 1 - i), is ONNX's
input_forget=1: that ignores the f rows of W, R, B and P, so they are written as zeros.

Activations go into the `activations` attribute (f for the gates, g for the candidate, h for
the cell output; one per direction): sigmoid, tanh, relu, leaky_relu (LeakyRelu, alpha = the
slope), elu (Elu, alpha 1), and the identity of NIAF / NOAF as Affine(alpha 1, beta 0).
LeakyRelu, Elu and Affine are optional in the ONNX spec; onnxruntime implements them, which
the tests check. Not expressible, so refused: NIG, NFG, NOG (ONNX cannot hold one gate at 1:
its three gates share f) and FGR (ONNX has no gate-to-gate recurrence).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import __version__
from ..cells.elman import ElmanCell
from ..cells.gru import GRUCell
from ..cells.lstm import LSTMCell
from ..network import SequenceNetwork
from ..ops import Activation
from ..recurrent import LSTM, RecurrentLayer

__all__ = ["OPSET", "to_onnx", "export_onnx", "check_exportable"]

OPSET = 17
ONNX_LSTM_BLOCKS = ("i", "o", "f", "g")  # ONNX's i, o, f, c in our names
ONNX_GRU_BLOCKS = ("z", "r", "n")  # ONNX's z, r, h in our names
ONNX_PEEPHOLES = ("i", "o", "f")


def _import_onnx():
    try:
        import onnx
    except ImportError as error:
        raise ImportError("exporting to ONNX needs the onnx package: pip install 'rnnkit[onnx]'") from error
    return onnx


# ------------------------------------------------------------------------------ what fits
def _variant_name(layer: RecurrentLayer) -> str:
    variant = getattr(layer, "variant", None)
    return f"LSTM variant {variant}" if variant else "this LSTM"


def check_exportable(layer: RecurrentLayer) -> None:
    """Raise ValueError, naming the variant, if ONNX's operators cannot express `layer`."""
    if layer.layer_norm:
        raise ValueError("a layer-normalised network cannot be exported: ONNX's LSTM/GRU/RNN operators have no "
                         "layer normalisation")
    for row in layer._cells:  # the layer keeps its cells private; interop needs their structure
        for cell in row:
            if isinstance(cell, LSTMCell):
                s = cell.structure
                missing = [gate for gate, present in (("input", s.input_gate), ("output", s.output_gate),
                                                      ("forget", s.forget_gate != "none")) if not present]
                if missing:
                    raise ValueError(f"{_variant_name(layer)} has no {missing[0]} gate, which ONNX's LSTM "
                                     "cannot express (its gates are always computed); it cannot be exported")
                if s.full_gate_recurrence:
                    raise ValueError(f"{_variant_name(layer)} (full gate recurrence) feeds the gates back into "
                                     "each other, which ONNX's LSTM cannot express; it cannot be exported")
                activations = (cell.gate_activation, cell.input_activation, cell.output_activation)
            elif isinstance(cell, GRUCell):
                activations = ()
            elif isinstance(cell, ElmanCell):
                activations = (cell.activation,)
            else:
                raise ValueError(f"cannot export a {type(cell).__name__} to ONNX")
            for activation in activations:
                onnx_activation(activation)


def onnx_activation(activation: Activation) -> tuple[str, float | None, float | None]:
    """(ONNX name, alpha or None, beta or None) of one of our activations."""
    kind = activation.name.split("(")[0]
    if kind == "leaky_relu":  # the slope is only in the function: read it off f(-1) = -slope
        slope = -float(activation(np.array([-1.0]))[0])
        return "LeakyRelu", slope, None
    simple = {"sigmoid": ("Sigmoid", None, None), "tanh": ("Tanh", None, None), "relu": ("Relu", None, None),
              "elu": ("Elu", 1.0, None), "identity": ("Affine", 1.0, 0.0)}
    if kind not in simple:
        raise ValueError(f"activation {activation.name!r} has no ONNX equivalent; it cannot be exported")
    return simple[kind]


# -------------------------------------------------------------------------------- layouts
def reorder_blocks(array: np.ndarray, ours: tuple[str, ...], theirs: tuple[str, ...], hidden: int) -> np.ndarray:
    """Rows of `array` (blocks of `hidden` rows named `ours`) rearranged into the block order
    `theirs`; a block we lack (CIFG's f) becomes zeros."""
    blocks = {name: array[k * hidden:(k + 1) * hidden] for k, name in enumerate(ours)}
    zeros = np.zeros_like(array[:hidden])
    return np.concatenate([blocks.get(name, zeros) for name in theirs], axis=0)


def onnx_weights(cell) -> dict[str, np.ndarray]:
    """One direction's W (G*H, I), R (G*H, H), B (2*G*H,) or None, P (3*H,) or None, in ONNX's
    block order (module docstring), float32."""
    H = cell.hidden_size
    if isinstance(cell, LSTMCell):
        ours, theirs = cell.block_names, ONNX_LSTM_BLOCKS
    elif isinstance(cell, GRUCell):
        ours, theirs = ("r", "z", "n"), ONNX_GRU_BLOCKS
    else:
        ours = theirs = ("h",)
    reorder = lambda array: reorder_blocks(array, ours, theirs, H).astype(np.float32)  # noqa: E731
    weights = {"W": reorder(cell.weight_ih.value), "R": reorder(cell.weight_hh.value), "B": None, "P": None}
    if cell.bias_ih is not None:
        weights["B"] = np.concatenate([reorder(cell.bias_ih.value), reorder(cell.bias_hh.value)])
    if isinstance(cell, LSTMCell) and cell.weight_peephole is not None:
        rows = dict(zip(cell.gate_names, cell.weight_peephole.value))
        weights["P"] = np.concatenate([rows.get(gate, np.zeros(H)) for gate in ONNX_PEEPHOLES]).astype(np.float32)
    return weights


def _operator(cell) -> tuple[str, dict]:
    """The ONNX operator of one direction and its attributes (activations for that direction)."""
    if isinstance(cell, LSTMCell):
        activations = [cell.gate_activation, cell.input_activation, cell.output_activation]
        coupled = cell.structure.forget_gate == "coupled"
        return "LSTM", {"activations": activations, "input_forget": int(coupled)}
    if isinstance(cell, GRUCell):
        return "GRU", {"activations": [], "linear_before_reset": int(cell.reset_after)}
    return "RNN", {"activations": [cell.activation]}


# --------------------------------------------------------------------------------- graph
class _Graph:
    """Nodes and initializers under construction."""

    def __init__(self, onnx):
        self.onnx, self.nodes, self.initializers = onnx, [], []

    def constant(self, name: str, array) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], **attributes) -> list[str]:
        name = f"{op}_{len(self.nodes)}"
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outputs, name=name, **attributes))
        return outputs


def _recurrent_stack(graph: _Graph, layer: RecurrentLayer, x: str, h0: str, c0: str | None):
    """Nodes of the whole stack: returns the names of (output (T, B, D*H), hn, cn or None)."""
    D, H = layer.num_directions, layer.hidden_size
    finals_h, finals_c = [], []
    for level, row in enumerate(layer._cells):
        op, attributes = _operator(row[0])
        weights = [onnx_weights(cell) for cell in row]
        p = f"l{level}_"
        inputs = [x, graph.constant(p + "W", np.stack([w["W"] for w in weights])),
                  graph.constant(p + "R", np.stack([w["R"] for w in weights])),
                  graph.constant(p + "B", np.stack([w["B"] for w in weights])) if weights[0]["B"] is not None else "",
                  ""]  # sequence_lens: every sequence runs all T steps
        for state, name in ((h0, "h0"), (c0, "c0")):
            if state is not None:
                bounds = [graph.constant(p + f"{name}_{k}", np.array([v], np.int64)) for k, v in
                          (("start", level * D), ("end", (level + 1) * D), ("axis", 0))]
                inputs += graph.node("Slice", [state, *bounds], [p + name])
        if weights[0]["P"] is not None:
            inputs.append(graph.constant(p + "P", np.stack([w["P"] for w in weights])))
        outputs = [p + "Y", p + "Y_h"] + ([p + "Y_c"] if c0 is not None else [])
        activations = [onnx_activation(a) for a in attributes.pop("activations")] * D
        if activations:
            attributes["activations"] = [name for name, _, _ in activations]
            alphas = [alpha for _, alpha, _ in activations if alpha is not None]
            betas = [beta for _, _, beta in activations if beta is not None]
            if alphas:
                attributes["activation_alpha"] = alphas
            if betas:
                attributes["activation_beta"] = betas
        graph.node(op, inputs, outputs, hidden_size=H,
                   direction="bidirectional" if D == 2 else "forward", **attributes)
        # Y is (T, D, B, H); the next layer and the head read (T, B, D*H), directions side by side.
        graph.node("Transpose", [p + "Y"], [p + "Y_tbdh"], perm=[0, 2, 1, 3])
        x = graph.node("Reshape", [p + "Y_tbdh", graph.constant(p + "shape", np.array([0, 0, -1], np.int64))],
                       [p + "output"])[0]
        finals_h.append(p + "Y_h")
        finals_c += outputs[2:]
    concat = lambda names, out: graph.node("Concat", names, [out], axis=0)[0]  # noqa: E731
    return x, concat(finals_h, "hn"), (concat(finals_c, "cn") if c0 is not None else None)


def _encoder(graph: _Graph, network: SequenceNetwork):
    """The graph input `input` and the nodes that turn it into the first layer's input."""
    helper, FLOAT, INT64 = graph.onnx.helper, graph.onnx.TensorProto.FLOAT, graph.onnx.TensorProto.INT64
    config = network.config
    if config.input_kind == "features":
        return helper.make_tensor_value_info("input", FLOAT, ["T", "B", config.input_size]), "input"
    ids = helper.make_tensor_value_info("input", INT64, ["T", "B"])
    if config.input_kind == "embedding":
        weight = graph.constant("embedding.weight", network.embedding.weight.value.astype(np.float32))
        return ids, graph.node("Gather", [weight, "input"], ["embedded"], axis=0)[0]
    depth = graph.constant("one_hot_depth", np.array(config.input_size, np.int64))
    values = graph.constant("one_hot_values", np.array([0.0, 1.0], np.float32))  # [off, on]
    return ids, graph.node("OneHot", ["input", depth, values], ["one_hot"], axis=-1)[0]


def to_onnx(model: SequenceNetwork | RecurrentLayer, metadata: dict | None = None):
    """The model as an `onnx.ModelProto` (layout in the module docstring), checked by
    `onnx.checker`. `metadata` (JSON-able values) goes into the model's metadata_props, each
    value JSON-encoded; a network's configuration is always there as "rnnkit.model"."""
    onnx = _import_onnx()
    helper, FLOAT = onnx.helper, onnx.TensorProto.FLOAT
    network = model if isinstance(model, SequenceNetwork) else None
    layer = model.rnn if network is not None else model
    if not isinstance(layer, RecurrentLayer):
        raise ValueError(f"can export a SequenceNetwork or an RNN/LSTM/GRU layer, not {type(model).__name__}")
    check_exportable(layer)
    graph = _Graph(onnx)
    states = ["h0", "c0"] if isinstance(layer, LSTM) else ["h0"]
    c0 = "c0" if len(states) == 2 else None
    if network is not None:
        model_input, x = _encoder(graph, network)
        hidden, _, _ = _recurrent_stack(graph, layer, x, "h0", c0)
        weight = graph.constant("head.weight_t", network.head.weight.value.T.astype(np.float32))
        projected = graph.node("MatMul", [hidden, weight], ["head_matmul"])[0]
        if network.head.bias is not None:
            bias = graph.constant("head.bias", network.head.bias.value.astype(np.float32))
            graph.node("Add", [projected, bias], ["output"])
        else:
            graph.node("Identity", [projected], ["output"])
        output_dims = ["T", "B", network.config.output_size]
    else:
        # batch_first: the operators are time-major, so transpose on the way in and out.
        time_batch = ["B", "T"] if layer.batch_first else ["T", "B"]
        model_input = helper.make_tensor_value_info("input", FLOAT, time_batch + [layer.input_size])
        x = graph.node("Transpose", ["input"], ["input_tbf"], perm=[1, 0, 2])[0] if layer.batch_first else "input"
        hidden, _, _ = _recurrent_stack(graph, layer, x, "h0", c0)
        if layer.batch_first:
            graph.node("Transpose", [hidden], ["output"], perm=[1, 0, 2])
        else:
            graph.node("Identity", [hidden], ["output"])
        output_dims = time_batch + [layer.hidden_size * layer.num_directions]
    state_shape = [layer.num_layers * layer.num_directions, "B", layer.hidden_size]
    inputs = [model_input] + [helper.make_tensor_value_info(name, FLOAT, state_shape) for name in states]
    outputs = [helper.make_tensor_value_info("output", FLOAT, output_dims)]
    outputs += [helper.make_tensor_value_info(name, FLOAT, state_shape) for name in ("hn", "cn")[:len(states)]]
    proto = helper.make_model(
        helper.make_graph(graph.nodes, "rnnkit", inputs, outputs, graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rnnkit", producer_version=__version__)
    properties = dict(metadata or {})
    if network is not None:
        properties["rnnkit.model"] = network.config.to_dict()
    helper.set_model_props(proto, {key: json.dumps(value) for key, value in properties.items()})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: SequenceNetwork | RecurrentLayer, path: str | Path, metadata: dict | None = None):
    """Write `to_onnx(model, metadata)` to `path`; returns the ModelProto."""
    proto = to_onnx(model, metadata)
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    path.write_bytes(proto.SerializeToString())
    return proto
