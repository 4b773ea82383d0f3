"""The README's example runs as written and does what it says."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_hello_example_learns_to_spell_hello():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "hello.py")],
                            capture_output=True, text=True, timeout=120, check=True)
    losses = [float(v) for v in re.findall(r"loss ([0-9.]+)", result.stdout)]
    assert losses[-1] < 0.05 < losses[0]
    assert "the network writes: 'hello'" in result.stdout
