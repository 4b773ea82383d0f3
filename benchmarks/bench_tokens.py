"""Preparing a large text for `rnnkit lm train` (rnnkit.data.tokens): MB/s, peak memory, and the
second run's start, for characters and for words.

    python benchmarks/bench_tokens.py --mb 100            # generates /tmp/rnnkit-bench-100mb.txt once

Each measurement runs in a fresh process with an empty token cache (a temporary RNNKIT_CACHE):
first run = checksum + tokenise + write; second run = the cache hit a later `lm train` sees.
Peak memory is the process's peak anonymous memory (RssAnon, sampled every 5 ms: the memory
the process itself needs; the page cache of the text and of the ids is the kernel's to reclaim)
and its VmHWM (everything resident, file pages included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

CHILD = r"""
import json, sys, threading, time
peak = [0]
def rss_anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
def sample():
    while True:
        peak[0] = max(peak[0], rss_anon()); time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()
import numpy
from rnnkit.data.tokens import prepare_tokens
base = rss_anon()
started = time.perf_counter()
prepared = prepare_tokens(sys.argv[1], sys.argv[2], progress=False)
seconds = time.perf_counter() - started
peak[0] = max(peak[0], rss_anon())
hwm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
print(json.dumps({"seconds": seconds, "prepared": prepared.prepared, "tokens": len(prepared.ids),
                  "vocabulary": len(prepared.vocabulary), "dtype": str(prepared.ids.dtype),
                  "peak_anon": peak[0], "base_anon": base, "hwm": hwm}))
"""


def generate(path: Path, megabytes: int, seed: int = 0) -> None:
    """Words from a Zipf-like vocabulary of 50,000 made-up words, with punctuation and line
    breaks, ASCII plus a few accented letters: a text with a word-level model's statistics."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = list("etaoinshrdlucmfwypvbgkjqxz") + ["é", "ö"]
    lengths = rng.integers(1, 10, size=50_000)
    words = np.array(["".join(rng.choice(letters, size=n)) for n in lengths] + [",", ".", "\n", "'s"])
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    with open(path, "w", encoding="utf-8") as out:
        written = 0
        while written < megabytes * 1_000_000:
            block = " ".join(rng.choice(words, size=200_000, p=weights)) + "\n"
            out.write(block)
            written += len(block.encode())


def measure(path: Path, level: str, cache: str) -> dict:
    env = {**os.environ, "RNNKIT_CACHE": cache, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), level], env=env, capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the generated text in MB (default: 100)")
    parser.add_argument("--text", help="a text file to use instead of a generated one")
    parser.add_argument("--levels", default="chars,words")
    args = parser.parse_args()
    path = Path(args.text) if args.text else Path(tempfile.gettempdir()) / f"rnnkit-bench-{args.mb}mb.txt"
    if not path.exists():
        generate(path, args.mb)
    size = path.stat().st_size
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"{path}: {size / 1e6:.0f} MB; {cpu}, {os.cpu_count()} cores")
    print("| level | tokens | vocabulary | ids | prepare | MB/s | peak RssAnon (+ beyond start) | VmHWM "
          "| second start |")
    print("|---|---|---|---|---|---|---|---|---|")
    for level in args.levels.split(","):
        with tempfile.TemporaryDirectory() as cache:
            first = measure(path, level, cache)
            second = measure(path, level, cache)
        assert first["prepared"] and not second["prepared"]
        print(f"| {level} | {first['tokens']:,} | {first['vocabulary']:,} | {first['dtype']} "
              f"| {first['seconds']:.1f} s "
              f"| {size / 1e6 / first['seconds']:.0f} | {first['peak_anon'] / 2**20:.0f} MiB "
              f"(+{(first['peak_anon'] - first['base_anon']) / 2**20:.0f}) | {first['hwm'] / 2**20:.0f} MiB "
              f"| {second['seconds']:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
