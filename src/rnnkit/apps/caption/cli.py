"""`rnnkit caption train | describe`: one-to-many, captions for handwritten digits."""

from __future__ import annotations

import sys
from pathlib import Path

from rnnkit.argtypes import finite_float, non_negative_int, positive_float, positive_int

from .api import SETTINGS, ImageCaptioner
from .data import DIGIT_WORDS, caption_split, word_vocabulary


def add_parser(tasks) -> None:
    caption = tasks.add_parser("caption", help="one-to-many: write a sentence about an image",
                               description="A captioner on scikit-learn's 8x8 handwritten digits.")
    verbs = caption.add_subparsers(dest="verb", metavar="VERB", required=True)
    train = verbs.add_parser("train", help="train on the digits with generated captions",
                             description="Train a captioner; prints caption exact-match and digit accuracy on "
                                         "the held-out 20 %% of the images.")
    train.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm", help="decoder cell (default: lstm)")
    train.add_argument("--forget-bias", type=finite_float, default=0.0,
                       help="added to the LSTM's forget-gate bias at initialisation; 1 starts the gate open "
                            "(Gers et al. 2000) (default: 0, PyTorch's)")
    train.add_argument("--hidden", type=positive_int, default=128, help="decoder units (default: 128)")
    train.add_argument("--layers", type=positive_int, default=1, help="decoder layers (default: 1)")
    train.add_argument("--embed", type=positive_int, default=16, help="word embedding size (default: 16)")
    train.add_argument("--epochs", type=positive_int, default=150,
                       help="passes over the training images (default: 150)")
    train.add_argument("--lr", type=positive_float, default=0.01, help="Adam's learning rate (default: 0.01)")
    train.add_argument("--beam", type=positive_int, default=1, help="beam width for the held-out captions (default: 1)")
    train.add_argument("--seed", type=non_negative_int, default=0, help="initialisation and batch order (default: 0)")
    train.add_argument("--out", default="runs/caption", help="output folder (default: runs/caption)")
    train.set_defaults(run=run_train)
    describe = verbs.add_parser("describe", help="caption held-out images with a trained model",
                                description="Caption held-out digit images (by index into the test part).")
    describe.add_argument("checkpoint", help="a checkpoint written by `rnnkit caption train`")
    describe.add_argument("--index", type=non_negative_int, nargs="*", default=[0, 1, 2, 3, 4],
                          help="held-out image indices (default: 0 1 2 3 4)")
    describe.add_argument("--beam", type=positive_int, default=1, help="beam width (default: 1 = greedy)")
    describe.set_defaults(run=run_describe)


def held_out_scores(captioner: ImageCaptioner, images, captions, indices, beam: int):
    """(caption exact match, digit accuracy) of the images at `indices`."""
    written = captioner.describe(images[indices], beam=beam)
    exact = digit = 0
    for words, i in zip(written, indices):
        words, truth = words.split(), captions[i].split()
        exact += words == truth
        digit += any(w in DIGIT_WORDS for w in words) and [w for w in words if w in DIGIT_WORDS][-1] == truth[-1]
    return exact / len(indices), digit / len(indices)


def run_train(args) -> int:
    images, _, captions, train, test = caption_split()
    settings = {key: getattr(args, key) for key in SETTINGS}
    print(f"training a captioner ({args.cell} decoder, {args.hidden} units) on {len(train)} digit images, "
          f"vocabulary {len(word_vocabulary(captions))} words", file=sys.stderr)
    out = Path(args.out)
    captioner = ImageCaptioner(**settings).fit(images[train], [captions[i] for i in train], checkpoint_dir=out)
    exact, digit = held_out_scores(captioner, images, captions, test, args.beam)
    print(f"held-out ({len(test)} images): caption exact match {exact:.1%}, digit accuracy {digit:.1%}; "
          f"checkpoint {out / 'last.safetensors'}")
    return 0


def run_describe(args) -> int:
    captioner = ImageCaptioner.load(args.checkpoint)
    images, _, captions, _, test = caption_split()
    for i in args.index:
        if i >= len(test):
            raise ValueError(f"--index {i} is outside the {len(test)} held-out images")
    for i, words in zip(args.index, captioner.describe(images[test[args.index]], beam=args.beam)):
        print(f"image {i}: {words!r} (truth: {captions[test[i]]!r})")
    return 0
