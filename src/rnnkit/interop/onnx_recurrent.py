"""A stack of recurrent layers as nodes of the standard ONNX `RNN`, `LSTM` and `GRU` operators:
what those operators can express, the weights in their layout, and the nodes of the stack (what
`rnnkit.interop.onnx` builds every graph from).

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

from typing import NamedTuple

import numpy as np

from ..cells.elman import ElmanCell
from ..cells.gru import GRUCell
from ..cells.lstm import LSTMCell
from ..ops import Activation
from ..recurrent import RecurrentLayer

__all__ = ["Graph", "StackOutputs", "check_exportable", "onnx_activation", "onnx_weights", "recurrent_stack",
           "reorder_blocks"]

ONNX_LSTM_BLOCKS = ("i", "o", "f", "g")  # ONNX's i, o, f, c in our names
ONNX_GRU_BLOCKS = ("z", "r", "n")  # ONNX's z, r, h in our names
ONNX_PEEPHOLES = ("i", "o", "f")


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
class Graph:
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


class StackOutputs(NamedTuple):
    """Names in the graph: output (T, B, D*H) of the top layer; hn, cn (L*D, B, H) the final
    states of all layers (cn None unless c0 was given); top_h (D, B, H) the top layer's final h."""

    output: str
    hn: str
    cn: str | None
    top_h: str


def _state_slice(graph: Graph, state: str | None, name: str, prefix: str, level: int, directions: int) -> str:
    """Rows level*D .. (level+1)*D of an initial state (L*D, B, H), or "" (zeros) without one."""
    if state is None:
        return ""
    bounds = [graph.constant(prefix + f"{name}_{k}", np.array([v], np.int64)) for k, v in
              (("start", level * directions), ("end", (level + 1) * directions), ("axis", 0))]
    return graph.node("Slice", [state, *bounds], [prefix + name])[0]


def _activation_attributes(activations: list[Activation], directions: int) -> dict:
    """The activations, activation_alpha and activation_beta attributes (one set per direction)."""
    found = [onnx_activation(a) for a in activations] * directions
    if not found:
        return {}
    attributes = {"activations": [name for name, _, _ in found]}
    alphas = [alpha for _, alpha, _ in found if alpha is not None]
    betas = [beta for _, _, beta in found if beta is not None]
    if alphas:
        attributes["activation_alpha"] = alphas
    if betas:
        attributes["activation_beta"] = betas
    return attributes


def recurrent_stack(graph: Graph, layer: RecurrentLayer, x: str, h0: str | None = None, c0: str | None = None,
                    sequence_lens: str | None = None) -> StackOutputs:
    """Nodes of the whole stack reading x (T, B, I). h0, c0: initial states (L*D, B, H), None for
    zeros; sequence_lens: (B,) int32 real lengths (padding at the end), None when every sequence
    runs all T steps. With lengths, ONNX's operators do what our mask does: the forward direction
    stops at each sequence's last real step, the reverse one starts there, so Y_h is the state
    after the last real step in both directions."""
    D, H = layer.num_directions, layer.hidden_size
    finals_h, finals_c = [], []
    for level, row in enumerate(layer._cells):
        op, attributes = _operator(row[0])
        weights = [onnx_weights(cell) for cell in row]
        p = f"l{level}_"
        stacked = {key: graph.constant(p + key, np.stack([w[key] for w in weights])) if weights[0][key] is not None
                   else "" for key in ("W", "R", "B", "P")}  # "": an optional input left out
        inputs = [x, stacked["W"], stacked["R"], stacked["B"], sequence_lens or "",
                  _state_slice(graph, h0, "h0", p, level, D), _state_slice(graph, c0, "c0", p, level, D), stacked["P"]]
        while not inputs[-1]:  # optional inputs left out at the end
            inputs.pop()
        outputs = [p + "Y", p + "Y_h"] + ([p + "Y_c"] if c0 is not None else [])
        attributes.update(_activation_attributes(attributes.pop("activations"), D))
        graph.node(op, inputs, outputs, hidden_size=H,
                   direction="bidirectional" if D == 2 else "forward", **attributes)
        # Y is (T, D, B, H); the next layer and the head read (T, B, D*H), directions side by side.
        graph.node("Transpose", [p + "Y"], [p + "Y_tbdh"], perm=[0, 2, 1, 3])
        x = graph.node("Reshape", [p + "Y_tbdh", graph.constant(p + "shape", np.array([0, 0, -1], np.int64))],
                       [p + "output"])[0]
        finals_h.append(p + "Y_h")
        finals_c += outputs[2:]
    concat = lambda names, out: graph.node("Concat", names, [out], axis=0)[0]  # noqa: E731
    return StackOutputs(x, concat(finals_h, "hn"), concat(finals_c, "cn") if c0 is not None else None, finals_h[-1])
