"""`rnnkit lm inspect`: the analysis behind the page, and the page itself in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from rnnkit.apps.lm.inspection import gate_saturation, rank_units, text_features, write_report
from rnnkit.apps.lm.model import LanguageModel
from rnnkit.data.text import Vocabulary
from rnnkit.network import NetworkConfig, SequenceNetwork

TEXT = 'He said "go (now)" and left.\nShe said "stay".\n' * 8


def test_text_features():
    # tokens:   a  ␣  "  b  ␣  (  c  )  ␣  d  "  ␣  e  \n f   (the opening mark counts as inside)
    features = text_features(list('a "b (c) d" e\nf'))
    np.testing.assert_array_equal(features["position in line"], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0])
    assert features["inside quotes"].tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    assert features["inside brackets"].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]


def test_a_unit_that_tracks_a_feature_ranks_first():
    features = text_features(list(TEXT))
    rng = np.random.default_rng(0)
    values = rng.uniform(-1, 1, (len(TEXT), 6))
    values[:, 4] = np.tanh(features["inside quotes"] - 0.5) + 0.01 * rng.standard_normal(len(TEXT))
    ranked = rank_units({("l0", "output h"): values}, features)
    assert (ranked[0]["unit"], ranked[0]["feature"]) == (4, "inside quotes") and ranked[0]["r"] > 0.95


def test_gate_saturation_fractions():
    gates = {("l0", "f"): np.array([[0.05, 0.5], [0.95, 0.5], [0.02, 0.99], [0.5, 0.5]])}
    left, right = gate_saturation(gates)[("l0", "f")]
    np.testing.assert_allclose(left, [0.5, 0.0])
    np.testing.assert_allclose(right, [0.25, 0.25])


@pytest.fixture()
def report(tmp_path):
    vocabulary = Vocabulary.from_text(TEXT)
    config = NetworkConfig(len(vocabulary), len(vocabulary), hidden_size=8, num_layers=2, input_kind="embedding",
                           embedding_size=4)
    model = LanguageModel(SequenceNetwork(config, rng=0), vocabulary)
    path = tmp_path / "report.html"
    summary = write_report(model, TEXT, path)
    return path, summary


def test_report_holds_text_selector_and_histograms(report):
    path, summary = report
    page = path.read_text()
    assert summary["tokens"] == len(TEXT) and summary["units"] == 2 * 2 * 8  # layers x (c, h) x units
    assert page.count("<option") == 0  # options are built by the script from the embedded list
    assert len(re.findall(r'"matrix": "l\d\|', page)) == summary["units"]
    assert page.count('<svg class="hist"') == 2 * 3  # layers x gates i, f, o
    assert "http://" not in page and "https://" not in page  # self-contained


def chromium_dom(url: str) -> tuple[str, str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    profile = tempfile.mkdtemp()
    result = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    return result.stdout, result.stderr


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="Chromium is not installed (Debian package chromium; .ci/run installs it)")
def test_page_loads_without_errors_and_the_selector_changes_the_colouring(report):
    path, _ = report
    colourings = {}
    for choice in ("0", "5"):  # the page's own change handler runs for #select=N
        dom, log = chromium_dom(f"file://{path}#select={choice}")
        assert "Uncaught" not in log and ":CONSOLE" not in log, log
        shown = re.search(r'data-shown="([^"]+)"', dom).group(1)
        colours = re.findall(r'<span title="[-0-9.]+" style="background-color: ([^;"]+)', dom)
        assert len(colours) == len(TEXT)
        colourings[choice] = (shown, colours)
    assert colourings["0"][0] != colourings["5"][0]
    assert colourings["0"][1] != colourings["5"][1]
