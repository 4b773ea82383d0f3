"""`rnnkit lm train | sample | eval`: the character-level language model."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from rnnkit.argtypes import finite_float, fraction, non_negative_float, non_negative_int, positive_float, positive_int
from rnnkit.cells.lstm import VARIANTS
from rnnkit.data.corpora import CORPORA
from rnnkit.data.text import read_text
from rnnkit.train import TrainingDiverged

from . import training
from .model import LanguageModel
from .progress import Progress, Sampler, finish

DEFAULTS = D = training.DEFAULTS


def add_parser(tasks) -> None:
    lm = tasks.add_parser("lm", help="character-level language model (char-rnn): train, sample, eval",
                          description="A character-level language model: train it on a text, sample from "
                                      "it, measure its perplexity.")
    verbs = lm.add_subparsers(dest="verb", metavar="VERB", required=True)
    add_train(verbs)
    add_sample(verbs)
    add_eval(verbs)
    add_inspect(verbs)


def add_train(verbs) -> None:
    p = verbs.add_parser(
        "train", help="train on a text file or a named corpus",
        description="Train a character-level language model. With no arguments: a 2-layer LSTM of 256 units "
                    "on the Shakespeare corpus, about five minutes on a 2-core laptop. Unset options take "
                    "the defaults shown, or the corpus's own (the hello toy: a 3-unit RNN).",
        argument_default=None)
    p.add_argument("text_file", nargs="?", help="a UTF-8 text file to train on (instead of --corpus)")
    p.add_argument("--corpus", choices=CORPORA, help=f"a named corpus (default: {D['corpus']} when no file is given)")
    model = p.add_argument_group("model")
    model.add_argument("--cell", choices=("lstm", "gru", "rnn"), help=f"recurrent cell (default: {D['cell']})")
    model.add_argument("--peephole", action="store_true", default=None, help="LSTM with peephole connections")
    model.add_argument("--variant", choices=VARIANTS, help="one of Greff et al.'s LSTM variants")
    model.add_argument("--forget-bias", type=finite_float,
                       help="added to the LSTM's forget-gate bias at initialisation; 1 starts the gate open "
                            f"(Gers et al. 2000) (default: {D['forget_bias']}, PyTorch's)")
    model.add_argument("--nonlinearity", choices=("tanh", "relu", "sigmoid", "leaky_relu", "elu"),
                       help=f"activation of the plain RNN (default: {D['nonlinearity']})")
    model.add_argument("--textbook-gru", action="store_true", default=None,
                       help="GRU with the reset gate before the matrix product (Cho et al.)")
    model.add_argument("--hidden", type=positive_int, help=f"hidden units per layer (default: {D['hidden']})")
    model.add_argument("--layers", type=positive_int, help=f"stacked recurrent layers (default: {D['layers']})")
    model.add_argument("--embed", type=non_negative_int,
                       help=f"embedding size; 0 feeds one-hot characters (default: {D['embed']})")
    model.add_argument("--tokens", choices=("chars", "words"),
                       help=f"model characters or words (default: {D['tokens']})")
    model.add_argument("--vocab-size", type=positive_int, help=f"words kept, the rest become <unk> "
                                                               f"(default: {D['vocab_size']})")
    model.add_argument("--tie-weights", action="store_true", default=None,
                       help="the output layer reuses the embedding (Press & Wolf); needs --embed = --hidden")
    model.add_argument("--dropout", type=fraction, help=f"dropout between layers and before the output "
                                                        f"(default: {D['dropout']})")
    model.add_argument("--layer-norm", action="store_true", default=None,
                       help="layer-normalised cells (Ba et al. 2016); runs in NumPy, not the compiled kernels")
    model.add_argument("--input-dropout", type=fraction,
                       help=f"variational dropout of each layer's input: one mask per sequence, the same at "
                            f"every step (Gal & Ghahramani) (default: {D['input_dropout']})")
    model.add_argument("--recurrent-dropout", type=fraction,
                       help=f"variational dropout of the state fed back to the recurrent weights "
                            f"(default: {D['recurrent_dropout']})")
    train = p.add_argument_group("training")
    train.add_argument("--seq-len", type=positive_int, help=f"steps per window (default: {D['seq_len']})")
    train.add_argument("--batch", type=positive_int, help=f"parallel streams per batch (default: {D['batch']})")
    train.add_argument("--k1", type=positive_int, help="truncated BPTT: update every k1 steps (default: --seq-len)")
    train.add_argument("--k2", type=positive_int, help="truncated BPTT: backpropagate k2 >= k1 steps (default: k1)")
    limits = train.add_mutually_exclusive_group()
    limits.add_argument("--steps", type=positive_int, help=f"training steps (default: {D['steps']})")
    limits.add_argument("--epochs", type=positive_int, help="passes over the training text")
    limits.add_argument("--minutes", type=positive_float, help="wall-clock budget")
    train.add_argument("--lr", type=positive_float, help=f"learning rate (default: {D['lr']})")
    train.add_argument("--optimizer", choices=sorted(training.OPTIMIZERS), help=f"(default: {D['optimizer']})")
    train.add_argument("--clip", type=non_negative_float,
                       help=f"clip the gradient's global norm; 0 = off (default: {D['clip']})")
    train.add_argument("--lr-decay", type=positive_float, help="multiply the rate by this every epoch (char-rnn)")
    train.add_argument("--lr-decay-after", type=non_negative_int,
                       help="epochs at the full rate before the decay starts (char-rnn's learning_rate_decay_after)")
    train.add_argument("--val-frac", type=fraction,
                       help=f"last fraction of the text kept for validation (default: {D['val_frac']})")
    train.add_argument("--val-tokens", type=positive_int,
                       help=f"validate on at most the first N tokens of the validation part "
                            f"(default: {D['val_tokens']:,})")
    train.add_argument("--eval-every", type=positive_int, help=f"validate and save every N steps "
                                                               f"(default: {D['eval_every']})")
    train.add_argument("--sample-every", type=non_negative_int,
                       help=f"print a sample every N steps; 0 = never (default: {D['sample_every']})")
    train.add_argument("--sample-length", type=positive_int, help=f"characters per sample "
                                                                  f"(default: {D['sample_length']})")
    train.add_argument("--prime", help="text that starts each sample")
    train.add_argument("--seed", type=non_negative_int, help=f"seed of every random choice (default: {D['seed']})")
    train.add_argument("--out", help=f"output folder for checkpoints, history and plot (default: {D['out']})")
    train.add_argument("--resume", nargs="?", const="", metavar="CKPT",
                       help="continue a run from CKPT (default: OUT/last.safetensors)")
    p.set_defaults(run=run_train)


def add_sample(verbs) -> None:
    p = verbs.add_parser("sample", help="write text with a trained model",
                         description="Generate text one character at a time, streaming it as it comes.")
    p.add_argument("checkpoint", help="a checkpoint written by `rnnkit lm train` (best or last)")
    p.add_argument("--length", type=positive_int, default=500, help="characters to generate (default: 500)")
    p.add_argument("--temperature", type=positive_float, default=1.0,
                   help="below 1: safer and more repetitive; above 1: wilder (default: 1.0)")
    p.add_argument("--top-k", type=positive_int, help="sample only among the k likeliest characters")
    p.add_argument("--greedy", action="store_true", help="always take the likeliest character")
    p.add_argument("--prime", default="", help="text to start from (printed first)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sampling (default: 0)")
    p.set_defaults(run=run_sample)


def add_eval(verbs) -> None:
    p = verbs.add_parser("eval", help="loss, bits per character and perplexity on a text",
                         description="Evaluate a trained model on a UTF-8 text file.")
    p.add_argument("checkpoint", help="a checkpoint written by `rnnkit lm train`")
    p.add_argument("text_file", help="the text to evaluate on")
    p.set_defaults(run=run_eval)


def add_inspect(verbs) -> None:
    p = verbs.add_parser("inspect", help="an HTML page that shows what the units respond to",
                         description="Write a self-contained HTML page: the text coloured by a chosen unit's "
                                     "activation, the units ranked by interpretability, gate saturation.")
    p.add_argument("checkpoint", help="a checkpoint written by `rnnkit lm train`")
    p.add_argument("text_file", help="the text to run the model on")
    p.add_argument("--out", default="report.html", help="the page to write (default: report.html)")
    p.add_argument("--length", type=positive_int, default=3000,
                   help="inspect the first N characters of the text (default: 3000)")
    p.set_defaults(run=run_inspect)


def run_inspect(args) -> int:
    from .inspection import write_report

    model = LanguageModel.load(args.checkpoint)
    text = read_text(args.text_file)[: args.length]
    model.require_known(text, args.text_file)
    summary = write_report(model, text, args.out)
    best = summary["best"]
    print(f"wrote {args.out}: {summary['tokens']:,} tokens, {summary['units']:,} units ranked; the most "
          f"interpretable is {best['layer']} {best['quantity']} unit {best['unit']} "
          f"(|r| = {best['r']:.2f} with {best['feature']})")
    return 0


def run_sample(args) -> int:
    model = LanguageModel.load(args.checkpoint)
    model.require_known(args.prime, "--prime")
    sys.stdout.write(args.prime)

    def stream(character: str) -> None:
        sys.stdout.write(character)
        sys.stdout.flush()

    model.generate(args.length, temperature=args.temperature, top_k=args.top_k, greedy=args.greedy,
                   prime=args.prime, rng=np.random.default_rng(args.seed), on_text=stream)
    sys.stdout.write("\n")
    return 0


def run_eval(args) -> int:
    model = LanguageModel.load(args.checkpoint)
    text = read_text(args.text_file)
    model.require_known(text, args.text_file)
    nats, count = model.loss(text)
    report, unit = model.report(nats), model.unit
    print(f"{report['nats']:.4f} nats/{unit}, {report['bits']:.4f} bits/{unit}, "
          f"perplexity {report['perplexity']:.4f} over {count:,} {unit}s")
    return 0


def run_train(args) -> int:
    """One process, or one rank of `mpiexec -n N python -m mpi4py -m rnnkit lm train` (rank 0
    prints and writes; the others train their share silently)."""
    communicator = training.communicator()
    root = communicator is None or communicator.is_root
    resume_path, resumed_info = None, None
    if args.resume is not None:
        resume_path = Path(args.resume) if args.resume else Path(args.out or DEFAULTS["out"]) / "last.safetensors"
        resumed_info = training.resumed_metadata(resume_path)
    settings = training.settings_from(args, None if resumed_info is None else resumed_info["settings"])
    if resume_path is not None and args.out is None:  # a resumed run writes beside the checkpoint it continues
        settings["out"] = str(resume_path.parent)
    out = Path(settings["out"])
    vocabulary, train_ids, val_ids, test_text, description = training.prepare_data(args, settings, resumed_info,
                                                                                   communicator)
    batches = training.training_batches(train_ids, settings, communicator)
    validation = training.validation_batches(val_ids, settings, communicator)
    trainer, language_model = training.build_trainer(settings, vocabulary, communicator)
    model = trainer.model
    if resume_path is not None:
        trainer.restore(resume_path)
    first_step = trainer.state.step
    source_file = settings.get("source_file") or (None if args.text_file is None else str(args.text_file))
    metadata = {**language_model.metadata(), "settings": {**settings, "source_file": source_file}}
    ranks = "" if communicator is None else f" on {communicator.size} MPI processes"
    if root:
        print(f"training a {settings['layers']} x {settings['hidden']} {settings['cell'].upper()} on {description}, "
              f"{model.num_parameters():,} parameters{ranks}", file=sys.stderr)
    progress = Progress(settings, batches, show=root)
    if root:
        trainer.callbacks += [progress.update, Sampler(language_model, settings).maybe_sample]
        out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    status, completed = 0, False
    try:
        trainer.fit(batches, steps=settings["steps"], epochs=settings["epochs"],
                    max_seconds=settings["minutes"] * 60 if settings["minutes"] else None,
                    validation=validation, eval_every=settings["eval_every"], checkpoint_dir=out,
                    save_every=settings["eval_every"], metadata=metadata)
        completed = True
    except KeyboardInterrupt:
        if communicator is not None:  # the other ranks may be inside a collective: end them all
            last = out / "last.safetensors"
            print(f"\ninterrupted; the last checkpoint is {last}" + (" (none yet)" if not last.exists() else ""),
                  file=sys.stderr)
            communicator.abort(130)
        print(f"\ninterrupted at step {trainer.state.step}; checkpoint saved to {out / 'last.safetensors'} "
              f"(continue with: rnnkit lm train --resume {out / 'last.safetensors'})", file=sys.stderr)
        status = 130
    except TrainingDiverged as error:
        last = out / "last.safetensors"
        kept = f"; the last good checkpoint is {last}" if last.exists() else ""
        raise TrainingDiverged(f"{error}{kept}") from None
    finally:
        progress.close()
        if root:
            finish(trainer, out, progress.tokens * (trainer.state.step - first_step),
                   time.perf_counter() - started, language_model.unit, finished=completed)
    if test_text is not None and status == 0 and root:
        best = LanguageModel.load(out / "best.safetensors")
        nats, count = best.loss(test_text, batch=settings["batch"], seq_len=settings["seq_len"])
        print(f"test ({count:,} {best.unit}s of held-out plays): {nats:.4f} nats/{best.unit}, "
              f"perplexity {math.exp(nats):.2f}", file=sys.stderr)
    return status
