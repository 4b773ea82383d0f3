"""Export to ONNX: a recurrent layer, a whole `SequenceNetwork`, or a many-to-one classifier or
regressor, as one ONNX graph built from the standard `RNN`, `LSTM` and `GRU` operators (opset
17), float32, checked by onnx's checker. The operators, weight layouts and what cannot be
expressed: `rnnkit.interop.onnx_recurrent`.

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
(inference); an id outside the vocabulary gives a zero one-hot vector (rnnkit raises). A bare
RNN/LSTM/GRU layer exports the same way without encoder and head: inputs `input` (T, B, I)
((B, T, I) if batch_first), `h0` [, `c0`]; outputs `output`, `hn` [, `cn`].

The graph of a SequenceClassifier or SequenceRegressor (`rnnkit.apps.classify.model`) reads
a padded batch and answers once per sequence, from the zero state:

    input          (T, B) int64 token ids, or (T, B, F) float32 features, padded at the end
    sequence_lens  (B,) int32          each sequence's real length, 1 .. T
      -> Gather(embedding.weight) | nothing, then the stack with sequence_lens on every layer
      -> the top layer's Y_h (D, B, H) -> Transpose(1, 0, 2) -> Reshape(0, -1)   (B, D*H)
         [h_fwd after the last real step ; h_rev after reading back to step 1], rnnkit's z
      -> Gemm(head.weight, head.bias, transB=1)                                 (B, K)
    logits      (B, K)                 a classifier: softmax(logits) is predict_proba
    prediction  (B,)                   a regressor: mu + sigma * y, in the target's units

ONNX's operators skip the steps past each length exactly as rnnkit's mask does, so padding
never reaches the answer; padding ids must still be valid ids (rnnkit pads with 0, `<pad>`).

The model's metadata_props hold the configuration ("rnnkit.model": a NetworkConfig, or a
classifier's {"network", "task", "target_mean", "target_scale"}) and, from `rnnkit export`, a
language model's vocabulary ("rnnkit.language_model") or a classifier's vocabulary, labels and
tokenizer settings ("rnnkit.classifier"), each as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnkit.apps.classify.model import SequenceClassifier, SequenceRegressor

from .. import __version__
from ..network import NetworkConfig, SequenceNetwork
from ..recurrent import LSTM, RecurrentLayer
from .onnx_recurrent import Graph, check_exportable, recurrent_stack

__all__ = ["OPSET", "to_onnx", "export_onnx", "check_exportable"]

OPSET = 17
MANY_TO_ONE = (SequenceClassifier, SequenceRegressor)


def _import_onnx():
    try:
        import onnx
    except ImportError as error:
        raise ImportError("exporting to ONNX needs the onnx package: pip install 'rnnkit[onnx]'") from error
    return onnx


def _encoder(graph: Graph, config: NetworkConfig, embedding):
    """The graph input `input` and the nodes that turn it into the first layer's input
    (`embedding`: the Embedding layer of an embedding input, else unused)."""
    helper, FLOAT, INT64 = graph.onnx.helper, graph.onnx.TensorProto.FLOAT, graph.onnx.TensorProto.INT64
    if config.input_kind == "features":
        return helper.make_tensor_value_info("input", FLOAT, ["T", "B", config.input_size]), "input"
    ids = helper.make_tensor_value_info("input", INT64, ["T", "B"])
    if config.input_kind == "embedding":
        weight = graph.constant("embedding.weight", embedding.weight.value.astype(np.float32))
        return ids, graph.node("Gather", [weight, "input"], ["embedded"], axis=0)[0]
    depth = graph.constant("one_hot_depth", np.array(config.input_size, np.int64))
    values = graph.constant("one_hot_values", np.array([0.0, 1.0], np.float32))  # [off, on]
    return ids, graph.node("OneHot", ["input", depth, values], ["one_hot"], axis=-1)[0]


def _state_names(layer: RecurrentLayer) -> list[str]:
    return ["h0", "c0"] if isinstance(layer, LSTM) else ["h0"]


def _state_values(graph: Graph, layer: RecurrentLayer, names: list[str]):
    """Value infos of the state inputs or outputs `names`, each (L*D, B, H)."""
    shape = [layer.num_layers * layer.num_directions, "B", layer.hidden_size]
    return [graph.onnx.helper.make_tensor_value_info(name, graph.onnx.TensorProto.FLOAT, shape) for name in names]


def _network_graph(graph: Graph, network: SequenceNetwork):
    """(inputs, outputs) of a SequenceNetwork's graph (module docstring)."""
    states = _state_names(network.rnn)
    model_input, x = _encoder(graph, network.config, getattr(network, "embedding", None))
    stack = recurrent_stack(graph, network.rnn, x, "h0", "c0" if len(states) == 2 else None)
    weight = graph.constant("head.weight_t", network.head.weight.value.T.astype(np.float32))
    projected = graph.node("MatMul", [stack.output, weight], ["head_matmul"])[0]
    if network.head.bias is not None:
        bias = graph.constant("head.bias", network.head.bias.value.astype(np.float32))
        graph.node("Add", [projected, bias], ["output"])
    else:
        graph.node("Identity", [projected], ["output"])
    helper, FLOAT = graph.onnx.helper, graph.onnx.TensorProto.FLOAT
    output = helper.make_tensor_value_info("output", FLOAT, ["T", "B", network.config.output_size])
    finals = _state_values(graph, network.rnn, ["hn", "cn"][:len(states)])
    return [model_input, *_state_values(graph, network.rnn, states)], [output, *finals]


def _layer_graph(graph: Graph, layer: RecurrentLayer):
    """(inputs, outputs) of a bare recurrent layer's graph (module docstring)."""
    helper, FLOAT = graph.onnx.helper, graph.onnx.TensorProto.FLOAT
    states = _state_names(layer)
    # batch_first: the operators are time-major, so transpose on the way in and out.
    time_batch = ["B", "T"] if layer.batch_first else ["T", "B"]
    model_input = helper.make_tensor_value_info("input", FLOAT, time_batch + [layer.input_size])
    x = graph.node("Transpose", ["input"], ["input_tbf"], perm=[1, 0, 2])[0] if layer.batch_first else "input"
    stack = recurrent_stack(graph, layer, x, "h0", "c0" if len(states) == 2 else None)
    if layer.batch_first:
        graph.node("Transpose", [stack.output], ["output"], perm=[1, 0, 2])
    else:
        graph.node("Identity", [stack.output], ["output"])
    output = helper.make_tensor_value_info("output", FLOAT, time_batch + [layer.hidden_size * layer.num_directions])
    finals = _state_values(graph, layer, ["hn", "cn"][:len(states)])
    return [model_input, *_state_values(graph, layer, states)], [output, *finals]


def _many_to_one_graph(graph: Graph, model: SequenceClassifier | SequenceRegressor):
    """(inputs, outputs) of a classifier's or regressor's graph (module docstring)."""
    helper, FLOAT = graph.onnx.helper, graph.onnx.TensorProto.FLOAT
    if model.config.pool != "last":
        raise ValueError(f"this model's head reads the {model.config.pool} of every step's output; the ONNX "
                         "graph reads the final state only, so only a --pool last model can be exported")
    config = model.config.network
    model_input, x = _encoder(graph, config, getattr(model, "embedding", None))
    lengths = helper.make_tensor_value_info("sequence_lens", graph.onnx.TensorProto.INT32, ["B"])
    stack = recurrent_stack(graph, model.rnn, x, sequence_lens="sequence_lens")
    top = graph.node("Transpose", [stack.top_h], ["top_h_bdh"], perm=[1, 0, 2])[0]  # (B, D, H)
    final = graph.node("Reshape", [top, graph.constant("final_shape", np.array([0, -1], np.int64))], ["final"])[0]
    head = [graph.constant("head.weight", model.head.weight.value.astype(np.float32))]
    if model.head.bias is not None:
        head.append(graph.constant("head.bias", model.head.bias.value.astype(np.float32)))
    if model.config.task == "classification":
        graph.node("Gemm", [final, *head], ["logits"], transB=1)
        return [model_input, lengths], [helper.make_tensor_value_info("logits", FLOAT, ["B", config.output_size])]
    y = graph.node("Gemm", [final, *head], ["standardised"], transB=1)[0]  # (B, 1)
    scale = graph.constant("target_scale", np.array(model.config.target_scale, np.float32))
    mean = graph.constant("target_mean", np.array(model.config.target_mean, np.float32))
    scaled = graph.node("Add", [graph.node("Mul", [y, scale], ["scaled"])[0], mean], ["unsqueezed"])[0]
    graph.node("Squeeze", [scaled, graph.constant("squeeze_axes", np.array([1], np.int64))], ["prediction"])
    return [model_input, lengths], [helper.make_tensor_value_info("prediction", FLOAT, ["B"])]


def to_onnx(model, metadata: dict | None = None):
    """The model (a SequenceNetwork, a SequenceClassifier or SequenceRegressor, or an
    RNN/LSTM/GRU layer) as an `onnx.ModelProto` (layouts in the module docstring), checked by
    `onnx.checker`. `metadata` (JSON-able values) goes into the model's metadata_props, each
    value JSON-encoded; a model's configuration is always there as "rnnkit.model"."""
    onnx = _import_onnx()
    helper = onnx.helper
    graph = Graph(onnx)
    if isinstance(model, MANY_TO_ONE):
        check_exportable(model.rnn)
        inputs, outputs = _many_to_one_graph(graph, model)
    elif isinstance(model, SequenceNetwork):
        check_exportable(model.rnn)
        inputs, outputs = _network_graph(graph, model)
    elif isinstance(model, RecurrentLayer):
        check_exportable(model)
        inputs, outputs = _layer_graph(graph, model)
    else:
        raise ValueError(f"can export a SequenceNetwork, a SequenceClassifier or SequenceRegressor, or an "
                         f"RNN/LSTM/GRU layer, not {type(model).__name__}")
    proto = helper.make_model(
        helper.make_graph(graph.nodes, "rnnkit", inputs, outputs, graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rnnkit", producer_version=__version__)
    properties = dict(metadata or {})
    if not isinstance(model, RecurrentLayer):
        properties["rnnkit.model"] = model.config.to_dict()
    helper.set_model_props(proto, {key: json.dumps(value) for key, value in properties.items()})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path: str | Path, metadata: dict | None = None):
    """Write `to_onnx(model, metadata)` to `path`; returns the ModelProto."""
    proto = to_onnx(model, metadata)
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    path.write_bytes(proto.SerializeToString())
    return proto
