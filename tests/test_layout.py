"""The house rules of docs/architecture.md hold for the source tree, and the checker that says
so really fails on a tree that breaks them; ruff finds nothing to complain about."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from layout_rules import violations

SRC = Path(__file__).resolve().parents[1] / "src"


def test_the_source_tree_keeps_every_import_rule():
    assert violations(SRC) == []


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


GOOD = {
    "__init__.py": "", "ops.py": "", "checkpoint.py": "from .ops import *\n",
    "apps/__init__.py": "", "apps/a/__init__.py": "", "apps/a/model.py": "from pkg.checkpoint import load\n",
    "apps/a/cli.py": "from .model import load\n", "apps/b/__init__.py": "", "apps/b/cli.py": "import pkg.ops\n",
    "cli/__init__.py": "from ..apps.a import cli\nfrom ..apps.b import cli as b\n",
}


@pytest.mark.parametrize("broken, expected", [
    ({}, None),
    ({"ops.py": "def f():\n    from .cli import main\n"}, "library module pkg.ops imports pkg.cli"),
    ({"apps/b/cli.py": "from pkg.apps.a.model import load\n"}, "pkg.apps.b.cli (app:b) imports pkg.apps.a.model"),
    ({"apps/b/cli.py": "from ...interop import x\n", "interop/__init__.py": ""}, "imports pkg.interop (interop)"),
    ({"apps/a/cli.py": "from pkg.checkpoint import load\n"}, "pkg.apps.a.cli reads checkpoints itself"),
    ({"ops.py": "from . import checkpoint\n"}, "import cycle: pkg.checkpoint -> pkg.ops -> pkg.checkpoint"),
    ({"ops.py": "x = 1\n" * 401}, "has 401 lines"),
])
def test_the_checker_fails_on_a_tree_that_breaks_a_rule(tmp_path, broken, expected):
    found = violations(make_tree(tmp_path, {**GOOD, **broken}), "pkg")
    if expected is None:
        assert found == []
    else:
        assert any(expected in line for line in found), found


def test_the_command_line_loads_no_optional_dependency():
    """`rnnkit --help` (and so every subcommand's parser) imports none of the heavy optional
    packages: each app imports them where it uses them."""
    heavy = ["torch", "ray", "statsmodels", "sklearn", "onnx", "onnxruntime", "music21", "pandas", "scipy", "mpi4py"]
    script = ("import sys\nfrom rnnkit.cli import main\n"
              "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
              f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_ruff_finds_nothing():
    """The lint runs inside the test command (ruff is in the test extra; its rules are in
    pyproject.toml), so a lint error fails the suite like any other defect."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "src", "tests", "examples",
                             "benchmarks"], cwd=SRC.parent, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
