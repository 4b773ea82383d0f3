"""Bach's four-part chorales as piano rolls: the JSB Chorales task (Boulanger-Lewandowski et al.
2012) that Greff et al. 2015 used for polyphonic music modelling, rebuilt from the chorales in the
`music21` corpus (371 files, 348 distinct chorales) with a split of our own.

A piano roll has one row per quarter note and one column per pitch, MIDI 36 (C2) to 86 (D6):

    roll[t, p] = 1   if pitch 36 + p sounds at the start of quarter-note beat t

(notes shorter than a beat that start between beats are not sampled, as in the original data
set). Parsing all chorales takes about 30 s, so the rolls are kept in the rnnkit cache as one
.npz file (plain arrays, read without pickle) and read from there afterwards.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from rnnkit.data.cache import cache_dir
from rnnkit.optional import require

__all__ = ["LOWEST_PITCH", "PITCHES", "piano_roll", "score_roll", "load_chorales", "distinct", "chorale_split"]

LOWEST_PITCH = 36
PITCHES = 51  # MIDI 36 .. 86
CACHE_NAME = "jsb_chorales_quarter_v1.npz"
SPLIT_SIZES = (229, 60)  # training and validation chorales; the rest (59 of the 348 distinct) is the test part


def piano_roll(notes, length: float) -> np.ndarray:
    """notes: (offset, duration, midi pitch) triples in quarter notes; length: the piece's
    length in quarter notes. Returns a (ceil(length), PITCHES) uint8 roll (see the module doc);
    pitches outside MIDI 36-86 are left out."""
    steps = max(int(math.ceil(length)), 1)
    roll = np.zeros((steps, PITCHES), dtype=np.uint8)
    for offset, duration, pitch in notes:
        column = pitch - LOWEST_PITCH
        if not 0 <= column < PITCHES or duration <= 0:
            continue
        first = int(math.ceil(offset))
        last = int(math.ceil(offset + duration))  # beats t with offset <= t < offset + duration
        roll[first:min(last, steps), column] = 1
    return roll


def score_roll(score) -> np.ndarray:
    """The piano roll of a music21 score (all parts together)."""
    flat = score.flatten()
    notes = [(float(element.offset), float(element.quarterLength), pitch.midi)
             for element in flat.notes for pitch in element.pitches]
    return piano_roll(notes, float(flat.highestTime))


def _parse_all() -> list[np.ndarray]:
    music21 = require("music21", "study", "the chorales (from the music21 corpus)")
    return [score_roll(music21.corpus.parse(name))
            for name in music21.corpus.chorales.Iterator(returnType="filename")]


def load_chorales(cache: Path | None = None) -> list[np.ndarray]:
    """Every chorale of the music21 corpus as a piano roll, in the corpus's order."""
    path = (cache or cache_dir()) / CACHE_NAME
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return [stored[f"chorale_{k}"] for k in range(int(stored["count"]))]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged cache is rebuilt below
    rolls = _parse_all()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, count=np.array(len(rolls)), **{f"chorale_{k}": r for k, r in enumerate(rolls)})
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return rolls


def distinct(rolls: list[np.ndarray]) -> list[np.ndarray]:
    """The rolls without repeats (the corpus holds some chorales twice, under two catalogue
    numbers: 371 files, 348 distinct rolls), each kept at its first place."""
    seen, kept = set(), []
    for roll in rolls:
        digest = hashlib.sha256(np.ascontiguousarray(roll).tobytes() + str(roll.shape).encode()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept.append(roll)
    return kept


def chorale_split(rolls: list[np.ndarray], seed: int = 0):
    """(training, validation, test) lists of rolls: the distinct chorales (so no piece is in two
    parts), shuffled by `seed`, cut into 229 / 60 / the rest."""
    rolls = distinct(rolls)
    order = np.random.default_rng(seed).permutation(len(rolls))
    train, validation = SPLIT_SIZES
    if len(rolls) < train + validation + 1:
        raise ValueError(f"expected the corpus's 348 distinct chorales, found {len(rolls)}")
    pick = lambda indices: [rolls[i] for i in indices]  # noqa: E731
    return pick(order[:train]), pick(order[train:train + validation]), pick(order[train + validation:])
