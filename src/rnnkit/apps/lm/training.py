"""The settings and data of `rnnkit lm train` (char-rnn), and the trainer built from them.

Settings come from three layers: the defaults below (a 2 x 256 LSTM on Shakespeare, about five
minutes on a 2-core laptop), then the corpus's own preset (the `hello` toy is a 3-unit Elman RNN
on one-hot letters), then whatever the user typed. Resuming takes the saved settings instead, and
only lets the run's length, its reporting and its output folder change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.checkpoint import load_checkpoint
from rnnkit.data.batches import StreamBatches
from rnnkit.data.corpora import load_corpus, shakespeare_split
from rnnkit.data.text import Vocabulary, tokenize
from rnnkit.data.tokens import prepare_tokens
from rnnkit.distributed import Communicator, from_environment, root_first
from rnnkit.losses import softmax_cross_entropy
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import SGD, Adagrad, Adam, AdamW, RMSprop
from rnnkit.schedules import StepDecay
from rnnkit.train import Trainer

from .model import KIND, LanguageModel

DEFAULTS = {
    "corpus": "shakespeare", "cell": "lstm", "peephole": False, "variant": None, "nonlinearity": "tanh",
    "textbook_gru": False, "hidden": 256, "layers": 2, "embed": 64, "dropout": 0.0, "seq_len": 64,
    "batch": 32, "k1": None, "k2": None, "steps": 3000, "epochs": None, "minutes": None, "lr": 2e-3,
    "optimizer": "adam", "clip": 5.0, "lr_decay": 1.0, "lr_decay_after": 0, "val_frac": 0.05,
    "eval_every": 200, "sample_every": 500, "sample_length": 200, "prime": None, "seed": 0,
    "out": "runs/lm", "tokens": "chars", "vocab_size": 10000, "tie_weights": False,
    "layer_norm": False, "input_dropout": 0.0, "recurrent_dropout": 0.0, "forget_bias": 0.0, "val_tokens": 500_000,
}
PRESETS = {
    # The lecture's toy: "hello" from one-hot letters through 3 hidden units.
    "hello": {"cell": "rnn", "hidden": 3, "layers": 1, "embed": 0, "seq_len": 4, "batch": 1, "steps": 300,
              "lr": 0.05, "clip": 0.0, "val_frac": 0.0, "eval_every": 25, "sample_every": 100,
              "sample_length": 4, "prime": "h", "out": "runs/hello"},
}
# What a resumed run may change; everything else must match the checkpoint.
RESUMABLE = {"steps", "epochs", "minutes", "eval_every", "sample_every", "sample_length", "prime", "out", "resume"}
OPTIMIZERS = {"adam": Adam, "adamw": AdamW, "sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad}


def resumed_metadata(path: str | Path) -> dict:
    """What a language model's checkpoint records beside its weights (settings, vocabulary);
    a one-line ValueError if `path` holds another kind of model."""
    info = load_checkpoint(path)[1].get("user", {})
    if info.get("kind") != KIND:
        raise ValueError(f"{path} is not a checkpoint of a language model")
    return info


def settings_from(args, resumed: dict | None) -> dict:
    """The run's settings: the defaults, the corpus's preset, then what the user typed (options
    that are not None); when resuming, the checkpoint's settings with only RESUMABLE ones changed."""
    typed = {k: v for k, v in vars(args).items() if v is not None and k in DEFAULTS}
    if resumed is not None:
        changed = sorted(k for k, v in typed.items() if k not in RESUMABLE and resumed.get(k) != v)
        if changed:
            raise ValueError(f"cannot change {', '.join('--' + k.replace('_', '-') for k in changed)} when "
                             "resuming; the checkpoint fixes them")
        return {**resumed, **typed, "minutes": typed.get("minutes")}
    corpus = typed.get("corpus", DEFAULTS["corpus"]) if args.text_file is None else None
    settings = {**DEFAULTS, **PRESETS.get(corpus, {}), **typed, "corpus": corpus}
    if sum(settings[k] is not None for k in ("epochs", "minutes")) and "steps" not in typed:
        settings["steps"] = None  # --epochs or --minutes alone replace the default step count
    return settings


def communicator() -> Communicator | None:
    """The MPI ranks' communicator when launched by `mpiexec ... python -m mpi4py -m rnnkit`, else None."""
    return from_environment()


def token_ids(args, settings: dict, progress: bool = True):
    """The text's ids, memory-mapped from the token cache (`rnnkit.data.tokens`), and its source."""
    level, options = settings["tokens"], {"vocab_size": settings["vocab_size"], "val_frac": settings["val_frac"]}
    path = args.text_file if args.text_file is not None else settings.get("source_file")
    if path:
        return prepare_tokens(path, level, progress=progress, **options), str(path)
    corpus = settings["corpus"]
    if corpus is None:  # a model that `rnnkit.apps.lm.train` trained on a string: there is no file to read
        raise ValueError("this model was trained on a text given in Python, not on a file or a named corpus; to "
                         "continue it, save that text to a file and give it: rnnkit lm train TEXT_FILE --resume ...")
    return prepare_tokens(corpus, level, text=load_corpus(corpus), progress=progress, **options), corpus


def prepare_data(args, settings: dict, saved: dict | None, communicator: Communicator | None = None):
    """(vocabulary, training ids, validation ids, test text or None, a description). Words of the
    Shakespeare corpus use its fixed play-level split (and report a test perplexity), in memory;
    any other text is tokenised once into the token cache and read through a memory map, split
    into two contiguous blocks. Under MPI, rank 0 prepares the cache and the others then open it."""
    level = settings["tokens"]
    if level == "words" and args.text_file is None and settings.get("corpus") == "shakespeare":
        train_text, val_text, test_text = shakespeare_split()
        train_tokens, val_tokens = tokenize(train_text, level), tokenize(val_text, level)
        vocabulary = (Vocabulary(saved["vocabulary"], unknown=saved.get("unknown")) if saved is not None
                      else Vocabulary.from_words(train_tokens, settings["vocab_size"]))
        train_ids, val_ids = vocabulary.encode(train_tokens), vocabulary.encode(val_tokens)
        source = "shakespeare (play-level split)"
    else:
        root = communicator is None or communicator.is_root
        prepared, source = root_first(communicator, lambda: token_ids(args, settings, progress=root))
        vocabulary, ids, test_text = prepared.vocabulary, prepared.ids, None
        if saved is not None and Vocabulary(saved["vocabulary"], unknown=saved.get("unknown")) != vocabulary:
            raise ValueError(f"{source} does not give the vocabulary the checkpoint was trained with; resume "
                             "with the text (and --vocab-size, --val-frac) of the run")
        cut = len(ids) - int(round(len(ids) * settings["val_frac"]))
        train_ids, val_ids = ids[:cut], ids[cut:]
    description = f"{source}: {len(train_ids) + len(val_ids):,} {level}, vocabulary {len(vocabulary):,}"
    return vocabulary, train_ids, val_ids, test_text, description


def network_config(settings: dict, vocabulary_size: int) -> NetworkConfig:
    return NetworkConfig(
        input_size=vocabulary_size, output_size=vocabulary_size, cell=settings["cell"],
        hidden_size=settings["hidden"], num_layers=settings["layers"],
        input_kind="embedding" if settings["embed"] else "one_hot", embedding_size=settings["embed"],
        dropout=settings["dropout"], peephole=settings["peephole"] or None, variant=settings["variant"],
        nonlinearity=settings["nonlinearity"], reset_after=not settings["textbook_gru"],
        tie_weights=settings["tie_weights"],
        # .get: checkpoints written before these options existed lack them
        layer_norm=settings.get("layer_norm", False), input_dropout=settings.get("input_dropout", 0.0),
        recurrent_dropout=settings.get("recurrent_dropout", 0.0), forget_bias=settings.get("forget_bias", 0.0))


def validation_batches(ids: np.ndarray, settings: dict, communicator: Communicator | None = None):
    """The validation part's first --val-tokens tokens as streams (this rank's block under MPI)."""
    if settings["val_frac"] == 0:
        return None
    ids = ids[: settings.get("val_tokens") or len(ids)]  # .get: older checkpoints had no cap
    if len(ids) < 2:
        raise ValueError("the validation part is too short to evaluate; use a longer text or a larger --val-frac")
    batch = max(1, min(settings["batch"], (len(ids) - 1) // settings["seq_len"]))
    streams = StreamBatches(ids, batch, min(settings["seq_len"], (len(ids) - 1) // batch))
    return streams if communicator is None else streams.shard(communicator.rank, communicator.size)


def truncation(settings: dict) -> tuple[int, int]:
    """(k1, k2) of truncated BPTT: one window of --seq-len steps unless set."""
    k1 = settings["k1"] or settings["seq_len"]
    k2 = settings["k2"] or k1
    if k2 > settings["seq_len"]:
        raise ValueError(f"--k2 {k2} reaches beyond a window of --seq-len {settings['seq_len']}; "
                         "raise --seq-len or lower --k2")
    return k1, k2


def training_batches(train_ids: np.ndarray, settings: dict, communicator: Communicator | None = None):
    """The training streams; under MPI, this rank's block of the --batch streams."""
    try:
        streams = StreamBatches(train_ids, settings["batch"], settings["seq_len"])
    except ValueError as error:
        raise ValueError(f"the training text is shorter than one window: {error}") from None
    if communicator is None:
        return streams
    if settings["batch"] < communicator.size:
        raise ValueError(f"--batch {settings['batch']} gives fewer streams than the {communicator.size} MPI "
                         "processes; each needs at least one (raise --batch or use fewer processes)")
    return streams.shard(communicator.rank, communicator.size)


def build_trainer(settings: dict, vocabulary: Vocabulary,
                  communicator: Communicator | None = None) -> tuple[Trainer, LanguageModel]:
    """The network, its optimizer and learning-rate schedule, and the trainer that runs them."""
    k1, k2 = truncation(settings)
    model = SequenceNetwork(network_config(settings, len(vocabulary)), rng=settings["seed"])
    optimizer = OPTIMIZERS[settings["optimizer"]](model.parameters(), lr=settings["lr"])
    schedule = learning_rate_schedule(optimizer, settings)
    trainer = Trainer(model, optimizer, softmax_cross_entropy, k1=k1, k2=k2,
                      clip_norm=settings["clip"] or None, schedule=schedule, communicator=communicator)
    return trainer, LanguageModel(model, vocabulary, settings["tokens"])


def learning_rate_schedule(optimizer, settings: dict) -> StepDecay | None:
    """char-rnn's decay: after `--lr-decay-after M` epochs at the full rate, the rate is multiplied
    by `--lr-decay` at the end of every epoch, so epoch M + k (1-based) runs at lr * decay**k.
    Epochs are 0-based inside the schedule, hence start = M - 1 (M = 0 decays from the first
    epoch's end on, like M = 1, as in char-rnn, which compares the finished epoch with M)."""
    if settings["lr_decay"] == 1.0:
        return None
    return StepDecay(optimizer, step_size=1, gamma=settings["lr_decay"], start=max(settings["lr_decay_after"] - 1, 0))
