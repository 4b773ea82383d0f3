"""`rnnkit seq2seq train | translate`: the encoder-decoder on generated tasks or a TSV of pairs."""

from __future__ import annotations

import sys
from pathlib import Path

from rnnkit.argtypes import finite_float, fraction, non_negative_int, positive_float, positive_int

from .api import SETTINGS, Translator, train_seq2seq
from .model import exact_match
from .pairs import TASKS, PairVocabulary, training_pairs


def add_parser(tasks) -> None:
    seq2seq = tasks.add_parser("seq2seq", help="encoder-decoder: translate one string into another",
                               description="An encoder-decoder trained with teacher forcing, decoded greedily "
                                           "or with beam search.")
    verbs = seq2seq.add_subparsers(dest="verb", metavar="VERB", required=True)
    train = verbs.add_parser("train", help="train on a generated task or a TSV file of pairs",
                             description="Train, then print the exact-match accuracy on held-out pairs.")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--task", choices=TASKS, help="a generated task (default: addition)")
    source.add_argument("--data", help="a UTF-8 TSV file of source<TAB>target lines")
    train.add_argument("--examples", type=positive_int, default=50000,
                       help="generated training pairs (default: 50000)")
    train.add_argument("--test-frac", type=fraction, default=0.1,
                       help="held-out fraction of a TSV file (default: 0.1; generated tasks hold out 1000)")
    train.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm", help="(default: lstm)")
    train.add_argument("--forget-bias", type=finite_float, default=0.0,
                       help="added to the LSTMs' forget-gate bias at initialisation; 1 starts the gate open "
                            "(Gers et al. 2000) (default: 0, PyTorch's)")
    train.add_argument("--hidden", type=positive_int, default=128, help="units (default: 128)")
    train.add_argument("--layers", type=positive_int, default=1, help="layers (default: 1)")
    train.add_argument("--embed", type=positive_int, default=32, help="character embedding size (default: 32)")
    train.add_argument("--epochs", type=positive_int, default=30, help="passes over the pairs (default: 30)")
    train.add_argument("--batch", type=positive_int, default=64, help="pairs per step (default: 64)")
    train.add_argument("--lr", type=positive_float, default=0.01,
                       help="Adam's first learning rate, decayed to 0 along a cosine (default: 0.01)")
    train.add_argument("--beam", type=positive_int, default=1, help="beam width for the held-out test (default: 1)")
    train.add_argument("--seed", type=non_negative_int, default=0, help="(default: 0)")
    train.add_argument("--out", default="runs/seq2seq", help="output folder (default: runs/seq2seq)")
    train.set_defaults(run=run_train)
    translate = verbs.add_parser("translate", help="translate strings with a trained model",
                                 description="Translate each SOURCE (or each line of standard input).")
    translate.add_argument("checkpoint", help="a checkpoint written by `rnnkit seq2seq train`")
    translate.add_argument("sources", nargs="*", help="strings to translate (default: lines of standard input)")
    translate.add_argument("--beam", type=positive_int, default=1, help="beam width (default: 1 = greedy)")
    translate.set_defaults(run=run_translate)


def run_train(args) -> int:
    train, test, name = training_pairs(args.data, args.task, args.examples, args.test_frac, args.seed)
    vocabulary = PairVocabulary.from_pairs(train + test)
    print(f"training an encoder-decoder ({args.cell}, {args.hidden} units) on {len(train):,} pairs of {name}",
          file=sys.stderr)
    out = Path(args.out)

    def report(t, record):
        if t.state.position == 0:  # the step that ended an epoch
            print(f"epoch {record['epoch'] + 1}: loss {record['loss']:.4f}", file=sys.stderr)

    settings = {key: getattr(args, key) for key in SETTINGS}
    max_length = max(len(target) for _, target in train + test) + 2
    model, _, _ = train_seq2seq(train, vocabulary, settings, max_length=max_length, checkpoint_dir=out,
                                callbacks=(report,))
    accuracy = exact_match(model, vocabulary, test, args.beam, max_length)
    print(f"held-out exact match: {accuracy:.2%} of {len(test):,} pairs; checkpoint {out / 'last.safetensors'}")
    for source, target in test[:3]:
        guess = vocabulary.decode(model.decode(vocabulary.sources([source])[0], max_length=max_length,
                                               beam=args.beam))
        print(f"  {source!r} -> {guess!r} (truth {target!r})")
    return 0


def run_translate(args) -> int:
    translator = Translator.load(args.checkpoint)
    sources = args.sources or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for translation in translator.translate(sources, beam=args.beam):
        print(translation)
    return 0
