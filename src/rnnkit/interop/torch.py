"""PyTorch interop: a `SequenceNetwork`, `SequenceClassifier` or `SequenceRegressor` as a
PyTorch state dict, and a PyTorch state dict back into an rnnkit checkpoint (of a network).
Neither direction imports torch: both read and write safetensors.

Layout. Our parameter names and gate orders are PyTorch's (LSTM blocks i, f, g, o; GRU r, z, n;
`weight_ih_l1_reverse` and so on), so the state dict is the network's own, unrenamed:

    embedding.weight                  (V, E)          torch.nn.Embedding (embedding input only)
    rnn.weight_ih_l{k}[_reverse]      (G*H, I or D*H) torch.nn.LSTM / GRU / RNN
    rnn.weight_hh_l{k}[_reverse]      (G*H, H)
    rnn.bias_ih_l{k}, rnn.bias_hh_l{k} (G*H,)
    head.weight (O, D*H), head.bias (O,)              torch.nn.Linear

The file's safetensors metadata "rnnkit.torch" is JSON describing the PyTorch modules to build:
{"modules": {name: [torch.nn class, args, kwargs]}, "input_kind", "one_hot": V or null,
"head_reads", "rnnkit.model": our NetworkConfig, and for a language model "language_model":
{"kind", "vocabulary", ...} as its checkpoint records them}, which is what the README's snippet
reads (tests/test_interop_torch.py runs that snippet). "head_reads" is "every_step" for a
network (the head maps each step's output) and "final_state" for a classifier or regressor: the
head reads the top layer's final h, [forward ; reverse], of a padded batch run as a packed
sequence; theirs also has "classifier": {"task", for a regressor "target_mean" and
"target_scale" (prediction = mean + scale * y), and from `rnnkit export` the checkpoint's
"vocabulary", "labels", "tokens", ...} (tests/test_export_classifier.py runs that snippet).
Tied weights (the head reusing the embedding matrix) are written under both names, as two equal
tensors PyTorch loads untied.

What PyTorch's layers cannot compute is refused: peepholes and Greff's variants (NP, and V
without peepholes, are the plain LSTM and fine), the textbook GRU (reset_after=False: PyTorch applies the reset gate
after the matrix product), and Elman nonlinearities other than tanh and relu.

Import infers the architecture from the tensors: the recurrent module is the one prefix with a
`weight_ih_l0`; the cell from its row count (4H LSTM, 3H GRU, H RNN, with H the width of
`weight_hh_l0`); the layers from the `_l{k}` suffixes; bidirectional from `_reverse`; the head is
the module whose weight reads D*H features, the embedding the bias-free one that writes the
recurrent input's width. Biases PyTorch was told to leave out (bias=False) become zeros, which
computes the same. What shapes cannot tell (the Elman nonlinearity, one-hot or float features
without an embedding) comes from the file's "rnnkit.torch" metadata or from the caller.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import safetensors.numpy

from rnnkit.apps.classify.model import SequenceClassifier, SequenceRegressor
from rnnkit.apps.lm.model import KIND as LANGUAGE_MODEL

from .. import __version__
from ..cells.lstm import LSTMStructure, lstm_structure
from ..checkpoint import FORMAT_NAME as CHECKPOINT_FORMAT
from ..checkpoint import save_checkpoint
from ..data.text import Vocabulary
from ..files import existing_file
from ..network import NetworkConfig, SequenceNetwork

__all__ = ["torch_modules", "export_torch", "read_state", "network_from_state", "import_torch", "METADATA_KEY"]

METADATA_KEY = "rnnkit.torch"
TORCH_CLASSES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
CELLS_BY_BLOCKS = {4: "lstm", 3: "gru", 1: "rnn"}
RECURRENT_KEY = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?")


# --------------------------------------------------------------------------------- export
def _network_config(model: SequenceNetwork | SequenceClassifier | SequenceRegressor) -> NetworkConfig:
    """The NetworkConfig of a network, or of a classifier's encoder and head."""
    if isinstance(model, (SequenceClassifier, SequenceRegressor)):
        return model.config.network
    if isinstance(model, SequenceNetwork):
        return model.config
    raise ValueError(f"can export a SequenceNetwork, a SequenceClassifier or SequenceRegressor to PyTorch, not "
                     f"{type(model).__name__}")


def torch_modules(model: SequenceNetwork | SequenceClassifier | SequenceRegressor) -> dict:
    """The "rnnkit.torch" description (module docstring); ValueError if PyTorch's layers cannot
    compute this model."""
    config = _network_config(model)
    pool = getattr(getattr(model, "config", None), "pool", "last")
    if pool != "last":
        raise ValueError(f"this model's head reads the {pool} of every step's output; the PyTorch description "
                         "reads the final state only, so only a --pool last model can be exported")
    if config.layer_norm:
        raise ValueError("a layer-normalised network cannot be exported to PyTorch, whose nn.LSTM/GRU/RNN have "
                         "no layer normalisation (neither has ONNX's LSTM/GRU/RNN)")
    if config.cell == "lstm" and lstm_structure(config.variant, config.peephole) != LSTMStructure():
        plain_but_peepholes = lstm_structure(config.variant, False) == LSTMStructure()
        variant = f"variant {config.variant}" if config.variant else ""
        what = f"peephole connections{f' ({variant})' if variant else ''}" if plain_but_peepholes else variant
        raise ValueError(f"an LSTM with {what} cannot be exported to PyTorch, whose nn.LSTM has neither "
                         "peepholes nor Greff et al.'s variants (--to onnx can express peepholes, CIFG, NIAF "
                         "and NOAF)")
    if config.cell == "gru" and not config.reset_after:
        raise ValueError("the textbook GRU (reset_after=False) cannot be exported to PyTorch, whose nn.GRU "
                         "applies the reset gate after the matrix product (reset_after=True)")
    if config.cell == "rnn" and config.nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"an Elman RNN with nonlinearity {config.nonlinearity!r} cannot be exported to "
                         "PyTorch, whose nn.RNN has tanh and relu only")
    rnn_input = config.embedding_size if config.input_kind == "embedding" else config.input_size
    rnn_kwargs = {"bidirectional": config.bidirectional}
    if config.cell == "rnn":
        rnn_kwargs["nonlinearity"] = config.nonlinearity
    if config.num_layers > 1 and config.dropout > 0:  # PyTorch warns about dropout on one layer
        rnn_kwargs["dropout"] = config.dropout
    modules = {}
    if config.input_kind == "embedding":
        modules["embedding"] = ["Embedding", [config.input_size, config.embedding_size], {}]
    modules["rnn"] = [TORCH_CLASSES[config.cell], [rnn_input, config.hidden_size, config.num_layers], rnn_kwargs]
    directions = 2 if config.bidirectional else 1
    modules["head"] = ["Linear", [config.hidden_size * directions, config.output_size], {}]
    many_to_one = not isinstance(model, SequenceNetwork)
    return {"modules": modules, "input_kind": config.input_kind,
            "one_hot": config.input_size if config.input_kind == "one_hot" else None,
            "head_reads": "final_state" if many_to_one else "every_step", "rnnkit.model": config.to_dict()}


def _task(model: SequenceClassifier | SequenceRegressor) -> dict:
    """What the snippet needs to read a classifier's or regressor's head: the task and the
    regressor's target scaling (prediction = target_mean + target_scale * y)."""
    task = {"task": model.config.task}
    if model.config.task == "regression":
        task.update(target_mean=model.config.target_mean, target_scale=model.config.target_scale)
    return task


def export_torch(model: SequenceNetwork | SequenceClassifier | SequenceRegressor, path: str | Path, *,
                 language_model: dict | None = None, classifier: dict | None = None) -> None:
    """Write the model's parameters as a PyTorch state dict (safetensors, float32) with the
    "rnnkit.torch" metadata; `language_model` (a checkpoint's {"kind", "vocabulary", ...}) is
    stored there too. A classifier or regressor also gets "classifier": `classifier` (its
    vocabulary, labels, tokenizer settings) with its task and target scaling."""
    description = torch_modules(model)
    if not Path(path).parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {Path(path).parent} does not exist")
    if language_model:
        description["language_model"] = dict(language_model)
    if not isinstance(model, SequenceNetwork):
        description["classifier"] = {**(classifier or {}), **_task(model)}
    # Module by module, so that a weight the head shares with the embedding is written under both names.
    parts = [("embedding", getattr(model, "embedding", None)), ("rnn", model.rnn), ("head", model.head)]
    tensors = {name: np.array(p.value, dtype=np.float32) for prefix, module in parts if module is not None
               for name, p in module.named_parameters(prefix + ".")}
    safetensors.numpy.save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(description)})


# --------------------------------------------------------------------------------- import
def read_state(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors, the "rnnkit.torch" description or {}) of a safetensors state dict."""
    path = existing_file(path, ".safetensors state dict")
    try:
        with safetensors.safe_open(str(path), framework="np") as file:
            metadata = file.metadata() or {}
            tensors = {name: file.get_tensor(name) for name in file.keys()}
    except Exception as error:  # SafetensorError, or a dtype NumPy lacks (bfloat16)
        reason = " ".join(str(error).split())
        raise ValueError(f"{path} is not a readable safetensors state dict ({reason}); save it with "
                         "safetensors.torch.save_file(model.float().state_dict(), path)") from error
    if metadata.get("format") == CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is already an rnnkit checkpoint, not a PyTorch state dict; use it as it is "
                         "(rnnkit export --to torch makes a PyTorch state dict of it)")
    try:
        description = json.loads(metadata.get(METADATA_KEY, "{}"))
    except ValueError as error:
        raise ValueError(f"{path} has unreadable {METADATA_KEY} metadata ({error})") from error
    for name, array in tensors.items():
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"tensor {name} of {path} has dtype {array.dtype}; a state dict of weights is float")
    return tensors, description


def _modules(tensors: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Tensors grouped by module: "head.weight" -> modules["head"]["weight"]."""
    modules: dict[str, dict[str, np.ndarray]] = {}
    for name, array in tensors.items():
        module, _, parameter = name.rpartition(".")
        modules.setdefault(module, {})[parameter] = array
    return modules


def _pick(modules: dict, given: str | None, default: str, candidates: list[str], what: str, flag: str) -> str | None:
    """The module the caller named, else the one with our name, else the only candidate."""
    if given is not None:
        if given not in modules:
            raise ValueError(f"the state dict has no module {given!r} for the {what}; "
                             f"it has {', '.join(sorted(modules))}")
        return given
    if default in modules:
        return default
    if len(candidates) > 1:
        raise ValueError(f"cannot tell which of {', '.join(candidates)} is the {what}; name it with {flag}")
    return candidates[0] if candidates else None


def _recurrent_shape(params: dict[str, np.ndarray], name: str) -> dict:
    """cell, hidden_size, num_layers, bidirectional of a torch.nn.LSTM/GRU/RNN's tensors."""
    unknown = sorted(key for key in params if not RECURRENT_KEY.fullmatch(key))
    if unknown:
        detail = " (an LSTM with proj_size)" if any(key.startswith("weight_hr") for key in unknown) else ""
        raise ValueError(f"the recurrent layer {name!r} has parameters rnnkit does not have{detail}: "
                         f"{', '.join(unknown)}")
    hidden = params["weight_hh_l0"].shape[1]
    rows = params["weight_ih_l0"].shape[0]
    if rows % hidden or rows // hidden not in CELLS_BY_BLOCKS:
        raise ValueError(f"weight_ih_l0 has {rows} rows for hidden size {hidden}: not an RNN (H), GRU (3H) "
                         "or LSTM (4H)")
    return {"cell": CELLS_BY_BLOCKS[rows // hidden], "hidden_size": hidden,
            "num_layers": 1 + max(int(RECURRENT_KEY.fullmatch(key).group(2)) for key in params),
            "bidirectional": "weight_ih_l0_reverse" in params}


def _parts(tensors: dict[str, np.ndarray], rnn: str | None, embedding: str | None, head: str | None):
    """(recurrent tensors and shape, head tensors, embedding tensors or None), found by name or
    shape; every tensor must find a place."""
    modules = _modules(tensors)
    rnn = _pick(modules, rnn, "rnn", [m for m, p in modules.items() if "weight_ih_l0" in p], "recurrent layer", "--rnn")
    if rnn is None or "weight_ih_l0" not in modules[rnn]:
        raise ValueError("found no recurrent layer (no tensor named ...weight_ih_l0) in the state dict")
    rnn_params = modules.pop(rnn)
    shape = _recurrent_shape(rnn_params, rnn)
    width = shape["hidden_size"] * (2 if shape["bidirectional"] else 1)
    rnn_input = rnn_params["weight_ih_l0"].shape[1]

    heads = [m for m, p in modules.items() if getattr(p.get("weight"), "shape", (0, 0))[1:] == (width,)]
    heads = [m for m in heads if "bias" in modules[m]] or heads  # a Linear has a bias, an embedding none
    head = _pick(modules, head, "head", heads, "output layer", "--head")
    if head is None:
        raise ValueError(f"found no output layer (a Linear whose weight reads {width} features) in the state dict")
    head_params = modules.pop(head)
    embeddings = [m for m, p in modules.items() if set(p) == {"weight"} and p["weight"].shape[1:] == (rnn_input,)]
    embedding = _pick(modules, embedding, "embedding", embeddings, "embedding", "--embedding")
    embedding_params = modules.pop(embedding) if embedding is not None else None
    if modules:
        leftover = sorted(f"{m}.{p}" if m else p for m, params in modules.items() for p in params)
        more = f" and {len(leftover) - 6} more" if len(leftover) > 6 else ""
        raise ValueError(f"the state dict has tensors rnnkit's network has no place for: "
                         f"{', '.join(leftover[:6])}{more}")
    return rnn_params, shape, head_params, embedding_params


def network_from_state(tensors: dict[str, np.ndarray], description: dict | None = None, *,
                       nonlinearity: str | None = None, input_kind: str | None = None,
                       default_input_kind: str = "features", rnn: str | None = None,
                       embedding: str | None = None, head: str | None = None) -> SequenceNetwork:
    """A SequenceNetwork computing what the PyTorch modules of `tensors` compute (module
    docstring). `rnn`, `embedding`, `head` name the modules when their names are not rnn,
    embedding, head and the shapes cannot tell; `nonlinearity` and `input_kind` override the
    description's; without an embedding, either, the input is `default_input_kind`."""
    description = description or {}
    rnn_params, shape, head_params, embedding_params = _parts(tensors, rnn, embedding, head)
    rnn_input = rnn_params["weight_ih_l0"].shape[1]
    if embedding_params is not None:
        if input_kind not in (None, "embedding"):
            raise ValueError(f"the state dict has an embedding, so the input cannot be {input_kind}")
        kind = "embedding"
    else:
        kind = input_kind or description.get("input_kind") or default_input_kind
        if kind == "embedding":
            raise ValueError("the input is an embedding, but the state dict has no embedding (a bias-free "
                             f"module whose weight writes {rnn_input} features)")
    if shape["cell"] != "rnn" and nonlinearity not in (None, "tanh"):
        raise ValueError("a nonlinearity applies to an Elman RNN only; this state dict holds "
                         f"{'a GRU' if shape['cell'] == 'gru' else 'an LSTM'}")
    rnn_kwargs = (description.get("modules", {}).get("rnn") or [None, None, {}])[2]
    saved = description.get("rnnkit.model") or {}  # what an rnnkit export recorded
    config = NetworkConfig(
        input_size=embedding_params["weight"].shape[0] if embedding_params is not None else rnn_input,
        output_size=head_params["weight"].shape[0], input_kind=kind,
        embedding_size=rnn_input if embedding_params is not None else 0,
        dropout=float(saved.get("dropout", rnn_kwargs.get("dropout", 0.0))),
        nonlinearity=nonlinearity or rnn_kwargs.get("nonlinearity", "tanh"), **shape)
    tied = bool(saved.get("tie_weights")) and embedding_params is not None and np.array_equal(
        embedding_params["weight"], head_params["weight"])  # tied in rnnkit, and still equal: tie again
    network = SequenceNetwork(replace(config, tie_weights=True) if tied else config)
    state = {f"rnn.{name}": value for name, value in rnn_params.items()}
    for name, p in network.rnn.named_parameters():  # bias=False in PyTorch: zero biases compute the same
        if name.startswith("bias_") and name not in rnn_params and name.replace("bias", "weight") in rnn_params:
            state[f"rnn.{name}"] = np.zeros_like(p.value)
    state["head.weight"] = head_params["weight"]
    state["head.bias"] = head_params.get("bias", np.zeros(config.output_size, np.float32))
    if embedding_params is not None:
        state["embedding.weight"] = embedding_params["weight"]
    if tied:
        del state["head.weight"]  # the same Parameter as embedding.weight
    ours = {name for name, _ in network.named_parameters()}
    extra, missing = sorted(set(state) - ours), sorted(ours - set(state))
    if extra or missing:
        raise ValueError(f"the recurrent layer's tensors do not form a {config.num_layers}-layer "
                         f"{'bidirectional ' if config.bidirectional else ''}{config.cell.upper()}: "
                         + "; ".join(filter(None, [extra and "unexpected " + ", ".join(extra),
                                                   missing and "missing " + ", ".join(missing)])))
    network.load_state_dict(state)
    return network.eval()


def import_torch(source: str | Path, target: str | Path, *, vocabulary: Vocabulary | None = None,
                 **options) -> SequenceNetwork:
    """Read the PyTorch state dict `source`, write an rnnkit checkpoint `target` holding the
    network's weights and {"rnnkit_version", "model", "user"} metadata, as `Trainer.save` does
    (no optimizer: the checkpoint is for inference, `rnnkit lm sample` and the like). With a
    vocabulary it is a character-level language model that `LanguageModel.load` reads; without
    one, the language model an rnnkit export recorded (if any) comes back. A language model
    without an embedding reads its ids as one-hot vectors unless the caller says otherwise.
    `options` go to `network_from_state`."""
    tensors, description = read_state(source)
    if description.get("head_reads") == "final_state":
        raise ValueError(f"{source} holds a classifier (its head reads the final state), which import-torch "
                         "cannot turn back into a network whose head reads every step; keep its rnnkit checkpoint")
    user = dict(description.get("language_model") or {})
    if vocabulary is not None:
        user = {"kind": LANGUAGE_MODEL, "vocabulary": vocabulary.tokens}
    options.setdefault("default_input_kind", "one_hot" if user else "features")
    network = network_from_state(tensors, description, **options)
    if user:
        config, size = network.config, len(user["vocabulary"])
        if config.input_kind == "features" or (config.input_size, config.output_size) != (size, size):
            reads = "float features" if config.input_kind == "features" else f"{config.input_size} symbols"
            raise ValueError(f"the network reads {reads} and writes {config.output_size}, but the vocabulary has "
                             f"{size} tokens; a language model reads and writes one per token")
    tensors = {name: p.value for name, p in network.named_parameters()}
    metadata = {"rnnkit_version": __version__, "model": network.config.to_dict(), "user": user}
    save_checkpoint(target, tensors, metadata)
    return network
