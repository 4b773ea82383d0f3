"""`rnnkit export CKPT --to onnx|torch OUT` and `rnnkit import-torch STATE OUT`: moving a model
to ONNX or PyTorch and back (`rnnkit.interop`)."""

from __future__ import annotations

from rnnkit.network import INPUT_KINDS

from .loading import classifier_metadata, language_model_metadata, load_exportable, read_vocabulary

TARGETS = ("onnx", "torch")


def add_parser(tasks) -> None:
    export = tasks.add_parser(
        "export", help="write a trained network as ONNX or as a PyTorch state dict",
        description="Export the model of a training checkpoint: a language model, a classifier or regressor "
                    "(rnnkit classify train), a forecaster or any other SequenceNetwork. --to onnx writes one "
                    ".onnx graph of the standard LSTM/GRU/RNN operators (needs pip install 'rnnkit[onnx]'): a "
                    "network's takes and returns the state; a classifier's takes a padded batch and its "
                    "sequence_lens and returns logits (a regressor's: the prediction). --to torch writes a "
                    "safetensors state dict for torch.nn.Embedding/LSTM/GRU/RNN/Linear, its architecture in "
                    "the file's metadata (no torch needed). A classifier's vocabulary and labels go into the "
                    "metadata of both.")
    export.add_argument("checkpoint", metavar="CKPT",
                        help="a checkpoint written by training (e.g. runs/lm/best.safetensors)")
    export.add_argument("--to", required=True, choices=TARGETS, help="the format to write")
    export.add_argument("out", metavar="OUT", help="the file to write (e.g. model.onnx, model.pt-state.safetensors)")
    export.set_defaults(run=run_export)

    imported = tasks.add_parser(
        "import-torch", help="turn a PyTorch state dict into an rnnkit checkpoint",
        description="Read a PyTorch state dict saved with safetensors.torch.save_file (an nn.LSTM/GRU/RNN, "
                    "an nn.Linear head reading its outputs, optionally an nn.Embedding before it) and write "
                    "an rnnkit checkpoint. Layers, hidden size, directions and cell are read from the "
                    "tensors' names and shapes; with --vocabulary the result is a character-level language "
                    "model that `rnnkit lm sample` and `rnnkit lm eval` read.")
    imported.add_argument("state", metavar="STATE", help="the PyTorch state dict (.safetensors)")
    imported.add_argument("out", metavar="OUT", help="the rnnkit checkpoint to write (.safetensors)")
    imported.add_argument("--vocabulary", metavar="FILE",
                          help="a .json file with the list of tokens in id order, or a UTF-8 text whose "
                               "sorted distinct characters are the vocabulary (what `rnnkit lm train` "
                               "builds from its training text)")
    imported.add_argument("--input", dest="input_kind", choices=INPUT_KINDS,
                          help="what the network reads when there is no embedding: token ids as one-hot "
                               "vectors, or float features (default: one_hot with --vocabulary, else features)")
    imported.add_argument("--nonlinearity", choices=("tanh", "relu"),
                          help="of an nn.RNN, which its tensors do not record (default: tanh)")
    imported.add_argument("--rnn", metavar="NAME", help="the recurrent module's name, if the shapes cannot tell")
    imported.add_argument("--embedding", metavar="NAME", help="the embedding module's name, if the shapes cannot tell")
    imported.add_argument("--head", metavar="NAME", help="the output Linear's name, if the shapes cannot tell")
    imported.set_defaults(run=run_import)


def run_export(args) -> int:
    model, user = load_exportable(args.checkpoint)
    language_model, classifier = language_model_metadata(user), classifier_metadata(model, user)
    if args.to == "onnx":
        try:
            from .onnx import export_onnx
            metadata = {key: value for key, value in (("rnnkit.language_model", language_model),
                                                      ("rnnkit.classifier", classifier)) if value}
            export_onnx(model, args.out, metadata=metadata)
        except ImportError as error:  # the optional extra is missing: a user error, one line
            raise ValueError(str(error)) from None
    else:
        from .torch import export_torch
        export_torch(model, args.out, language_model=language_model, classifier=classifier)
    print(f"wrote {args.out} ({args.to})")
    return 0


def run_import(args) -> int:
    from .torch import import_torch

    vocabulary = read_vocabulary(args.vocabulary) if args.vocabulary else None
    network = import_torch(args.state, args.out, vocabulary=vocabulary, input_kind=args.input_kind,
                           nonlinearity=args.nonlinearity, rnn=args.rnn, embedding=args.embedding, head=args.head)
    config = network.config
    print(f"wrote {args.out}: {config.num_layers} x {config.hidden_size} "
          f"{'bidirectional ' if config.bidirectional else ''}{config.cell.upper()}, {config.input_kind} input, "
          f"{config.output_size} outputs")
    return 0
