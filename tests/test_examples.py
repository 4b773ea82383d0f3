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


def test_adding_problem_example_is_in_the_readme_and_learns():
    example = (ROOT / "examples" / "adding_problem.py").read_text()
    assert f"```python\n{example}```" in (ROOT / "README.md").read_text()
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "adding_problem.py")],
                            capture_output=True, text=True, timeout=300, check=True)
    losses = [float(v) for v in re.findall(r"mse ([0-9.]+)", result.stdout)]
    final = float(re.search(r"final mse over all \d+ sequences: ([0-9.]+)", result.stdout).group(1))
    assert losses[0] > 0.1 and final < 0.01
