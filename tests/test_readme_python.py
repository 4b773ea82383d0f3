"""The README's Python API snippets (its first screen and the section "In Python") run as written,
in order, in one namespace, and do what their comments say."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
matplotlib.use("Agg")
pytest.importorskip("pandas")
pytest.importorskip("sklearn")


def python_blocks(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], flags=re.S)


def test_the_first_screen_trains_and_samples_in_five_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (snippet,) = python_blocks("Start here")
    assert len(snippet.strip().splitlines()) <= 5
    exec(snippet, {})
    assert capsys.readouterr().out == "hello\n"


def test_the_python_section_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks("In Python: notebooks, pandas, scikit-learn")
    assert len(blocks) == 5
    namespace = {}
    for block in blocks:
        exec(block, namespace)
    printed = capsys.readouterr().out
    assert "['pos']" in printed and "['cba', 'bacb']" in printed
    assert list(namespace["forecaster"].predict(2).columns) == ["mean", "lower", "upper"]
    assert namespace["same"].sample(10, seed=1) == namespace["model"].sample(10, seed=1)
    for name in ("fox.safetensors", "sentiment.safetensors", "fox.onnx", "fox_torch.safetensors"):
        assert (tmp_path / name).stat().st_size > 0
    assert {"h", "c", "i", "f", "g", "o"} <= set(namespace["gates"]["l0"])
