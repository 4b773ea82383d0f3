"""The README's example runs as written and does what it says."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

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


def run_example(name: str, *args: str) -> str:
    return subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], capture_output=True,
                          text=True, timeout=300, check=True).stdout


def test_binary_addition_example_adds_pairs_it_never_saw():
    output = run_example("binary_addition.py", "--steps", "1000")
    assert "held-out accuracy: 100.00% of 49,152 pairs" in output
    assert "201 + 98 = 299" in output


def test_long_lag_example_reports_the_sequences_needed():
    output = run_example("long_lag.py", "--task", "temporal-order", "--T", "20", "--max-sequences", "60000",
                         "--seeds", "2", "--quiet", "--check-every", "512")
    used = [int(n.replace(",", "")) for n in
            re.findall(r"seed \d: lstm solved temporal-order with T=20 after ([\d,]+) training sequences", output)]
    assert len(used) == 2 and all(n % 512 == 0 for n in used)
    summary = f"2/2 seeds solved; mean {np.mean(used):,.0f}, min {min(used):,}, max {max(used):,}; 0 failures"
    assert summary in output
    output = run_example("long_lag.py", "--task", "adding", "--cell", "rnn", "--T", "20", "--max-sequences", "3200")
    assert "rnn did not solve adding with T=20 within 3,200 sequences" in output


def readme_python_blocks(section: str) -> list[str]:
    """The ```python blocks of the README section whose heading is `section`."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], flags=re.S)


def test_readme_layer_norm_and_dropout_snippet_runs():
    (snippet,) = readme_python_blocks("Layer normalisation and variational dropout")
    namespace = {}
    exec(snippet, namespace)
    lstm, y, dx = namespace["lstm"], namespace["y"], namespace["dx"]
    assert not lstm.training and y.shape == (50, 8, 32) and dx.shape == (50, 8, 10)
