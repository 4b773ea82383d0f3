"""`rnnkit lm train`: char-rnn from the command line.

Settings come from three layers: the defaults below (a 2 x 256 LSTM on Shakespeare, about five
minutes on a 2-core laptop), then the corpus's own preset (the `hello` toy is a 3-unit Elman RNN
on one-hot letters), then whatever the user typed. Resuming takes the saved settings instead, and
only lets the run's length, its reporting and its output folder change.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from rnnkit.checkpoint import load_checkpoint
from rnnkit.data.batches import StreamBatches
from rnnkit.data.corpora import load_corpus, shakespeare_split
from rnnkit.data.text import Vocabulary, read_text, tokenize
from rnnkit.losses import softmax_cross_entropy
from .model import KIND, LanguageModel
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import SGD, Adagrad, Adam, AdamW, RMSprop
from rnnkit.schedules import StepDecay
from rnnkit.train import Trainer, TrainingDiverged

DEFAULTS = {
    "corpus": "shakespeare", "cell": "lstm", "peephole": False, "variant": None, "nonlinearity": "tanh",
    "textbook_gru": False, "hidden": 256, "layers": 2, "embed": 64, "dropout": 0.0, "seq_len": 64,
    "batch": 32, "k1": None, "k2": None, "steps": 3000, "epochs": None, "minutes": None, "lr": 2e-3,
    "optimizer": "adam", "clip": 5.0, "lr_decay": 1.0, "lr_decay_after": 0, "val_frac": 0.05,
    "eval_every": 200, "sample_every": 500, "sample_length": 200, "prime": None, "seed": 0,
    "out": "runs/lm", "tokens": "chars", "vocab_size": 10000, "tie_weights": False,
    "layer_norm": False, "input_dropout": 0.0, "recurrent_dropout": 0.0,
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


def settings_from(args, resumed: dict | None) -> dict:
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


def load_text(args, settings: dict) -> tuple[str, str]:
    if args.text_file is not None:
        return read_text(args.text_file), str(args.text_file)
    if settings.get("source_file"):
        return read_text(settings["source_file"]), settings["source_file"]
    return load_corpus(settings["corpus"]), settings["corpus"]


def prepare_data(args, settings: dict, saved: dict | None):
    """(vocabulary, training ids, validation ids, test text or None, a description). Words of the
    Shakespeare corpus use its fixed play-level split (and report a test perplexity); any other
    text is split into two contiguous blocks."""
    level = settings["tokens"]
    if level == "words" and args.text_file is None and settings.get("corpus") == "shakespeare":
        train_text, val_text, test_text = shakespeare_split()
        source = "shakespeare (play-level split)"
    else:
        text, source = load_text(args, settings)
        tokens = tokenize(text, level)
        cut = len(tokens) - int(round(len(tokens) * settings["val_frac"]))
        train_text = val_text = None
        train_tokens, val_tokens, test_text = tokens[:cut], tokens[cut:], None
    if train_text is not None:
        train_tokens, val_tokens = tokenize(train_text, level), tokenize(val_text, level)
    if saved is not None:
        vocabulary = Vocabulary(saved["vocabulary"], unknown=saved.get("unknown"))
    elif level == "words":
        vocabulary = Vocabulary.from_words(train_tokens, settings["vocab_size"])
    else:
        vocabulary = Vocabulary.from_text(train_tokens + val_tokens)
    description = f"{source}: {len(train_tokens) + len(val_tokens):,} {level}, vocabulary {len(vocabulary):,}"
    return vocabulary, vocabulary.encode(train_tokens), vocabulary.encode(val_tokens), test_text, description


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
        recurrent_dropout=settings.get("recurrent_dropout", 0.0))


def validation_batches(ids: np.ndarray, settings: dict) -> StreamBatches | None:
    if settings["val_frac"] == 0:
        return None
    if len(ids) < 2:
        raise ValueError("the validation part is too short to evaluate; use a longer text or a larger --val-frac")
    batch = max(1, min(settings["batch"], (len(ids) - 1) // settings["seq_len"]))
    return StreamBatches(ids, batch, min(settings["seq_len"], (len(ids) - 1) // batch))


def run(args) -> int:
    resume_path, resumed_info = None, None
    if args.resume is not None:
        resume_path = Path(args.resume) if args.resume else Path(args.out or DEFAULTS["out"]) / "last.safetensors"
        resumed_info = load_checkpoint(resume_path)[1].get("user", {})
        if resumed_info.get("kind") != KIND:
            raise ValueError(f"{resume_path} is not a checkpoint of a language model")
    settings = settings_from(args, None if resumed_info is None else resumed_info["settings"])
    out = Path(settings["out"])
    vocabulary, train_ids, val_ids, test_text, description = prepare_data(args, settings, resumed_info)
    k1 = settings["k1"] or settings["seq_len"]
    k2 = settings["k2"] or k1
    if k2 > settings["seq_len"]:
        raise ValueError(f"--k2 {k2} reaches beyond a window of --seq-len {settings['seq_len']}; "
                         "raise --seq-len or lower --k2")
    try:
        batches = StreamBatches(train_ids, settings["batch"], settings["seq_len"])
    except ValueError as error:
        raise ValueError(f"the training text is shorter than one window: {error}") from None
    validation = validation_batches(val_ids, settings)

    config = network_config(settings, len(vocabulary))
    model = SequenceNetwork(config, rng=settings["seed"])
    optimizer = OPTIMIZERS[settings["optimizer"]](model.parameters(), lr=settings["lr"])
    schedule = (StepDecay(optimizer, step_size=1, gamma=settings["lr_decay"], start=settings["lr_decay_after"])
                if settings["lr_decay"] != 1.0 else None)
    trainer = Trainer(model, optimizer, softmax_cross_entropy, k1=k1, k2=k2,
                      clip_norm=settings["clip"] or None, schedule=schedule)
    if resume_path is not None:
        trainer.restore(resume_path)
    first_step = trainer.state.step
    language_model = LanguageModel(model, vocabulary, settings["tokens"])
    source_file = settings.get("source_file") or (None if args.text_file is None else str(args.text_file))
    metadata = {**language_model.metadata(), "settings": {**settings, "source_file": source_file}}
    print(f"training a {settings['layers']} x {settings['hidden']} {settings['cell'].upper()} on {description}, "
          f"{model.num_parameters():,} parameters", file=sys.stderr)
    progress = Progress(settings, batches)
    trainer.callbacks += [progress.update, Sampler(language_model, settings).maybe_sample]
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    status = 0
    try:
        trainer.fit(batches, steps=settings["steps"], epochs=settings["epochs"],
                    max_seconds=settings["minutes"] * 60 if settings["minutes"] else None,
                    validation=validation, eval_every=settings["eval_every"], checkpoint_dir=out,
                    save_every=settings["eval_every"], metadata=metadata)
    except KeyboardInterrupt:
        print(f"\ninterrupted at step {trainer.state.step}; checkpoint saved to {out / 'last.safetensors'} "
              f"(continue with: rnnkit lm train --resume {out / 'last.safetensors'})", file=sys.stderr)
        status = 130
    except TrainingDiverged as error:
        last = out / "last.safetensors"
        kept = f"; the last good checkpoint is {last}" if last.exists() else ""
        raise TrainingDiverged(f"{error}{kept}") from None
    finally:
        progress.close()
        finish(trainer, out, batches.tokens_per_batch * (trainer.state.step - first_step),
               time.perf_counter() - started, language_model.unit)
    if test_text is not None and status == 0:
        best = LanguageModel.load(out / "best.safetensors")
        nats, count = best.loss(test_text, batch=settings["batch"], seq_len=settings["seq_len"])
        print(f"test ({count:,} {best.unit}s of held-out plays): {nats:.4f} nats/{best.unit}, "
              f"perplexity {math.exp(nats):.2f}", file=sys.stderr)
    return status


def finish(trainer: Trainer, out: Path, tokens: int, seconds: float, unit: str) -> None:
    from rnnkit.viz import plot_history

    history = trainer.state.history
    (out / "history.json").write_text(json.dumps(history, indent=1))
    if history:
        plot_history(history, out / "loss_curve.png", unit=f"nats/{unit}")
    best = trainer.state.best_loss
    print(f"done: {trainer.state.step} steps, best {'validation ' if any('val_loss' in r for r in history) else ''}"
          f"loss {best if best is None else f'{best:.4f}'} nats/{unit}, "
          f"{tokens / max(seconds, 1e-9):,.0f} tokens/s over {seconds:.0f} s; "
          f"checkpoints, history.json and loss_curve.png in {out}", file=sys.stderr)


class Progress:
    """A tqdm bar: loss, validation loss and tokens per second."""

    def __init__(self, settings: dict, batches: StreamBatches):
        from tqdm import tqdm

        total = settings["steps"] or (settings["epochs"] * len(batches) if settings["epochs"] else None)
        self.bar = tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr,
                        disable=None)  # None: no bar when stderr is not a terminal
        self.tokens = batches.tokens_per_batch
        self.unit = "char" if settings["tokens"] == "chars" else "word"
        self.smoothed = None
        self.val = None
        self.started = time.perf_counter()
        self.first_step = None

    def update(self, trainer: Trainer, record: dict) -> None:
        if self.first_step is None:
            self.first_step = record["step"] - 1
        self.smoothed = record["loss"] if self.smoothed is None else 0.95 * self.smoothed + 0.05 * record["loss"]
        self.val = record.get("val_loss", self.val)
        rate = self.tokens * (record["step"] - self.first_step) / max(time.perf_counter() - self.started, 1e-9)
        postfix = {"loss": f"{self.smoothed:.3f}", "tok/s": f"{rate:,.0f}"}
        if self.val is not None:
            postfix["val"] = f"{self.val:.3f}"
        self.bar.n = record["step"]
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()
        if self.bar.disable and "val_loss" in record:  # no bar: still report each evaluation
            print(f"step {record['step']}: loss {self.smoothed:.4f}, validation {self.val:.4f} nats/{self.unit}, "
                  f"{rate:,.0f} tokens/s", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


class Sampler:
    """Every `sample_every` steps, a short sample: the lecture's "after 100, 300, 500
    iterations"."""

    def __init__(self, model: LanguageModel, settings: dict):
        self.model, self.settings = model, settings

    def maybe_sample(self, trainer: Trainer, record: dict) -> None:
        every = self.settings["sample_every"]
        if not every or record["step"] % every:
            return
        from tqdm import tqdm

        rng = np.random.default_rng([self.settings["seed"], record["step"]])
        prime = self.settings["prime"] or ""
        text = self.model.generate(self.settings["sample_length"], prime=prime, rng=rng)
        self.model.network.train()
        loss = record.get("val_loss", record["loss"])
        tqdm.write(f"--- sample at step {record['step']} (loss {loss:.3f}) ---\n{prime}{text}\n", file=sys.stdout)
