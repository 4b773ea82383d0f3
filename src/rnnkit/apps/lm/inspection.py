"""A look inside a trained language model (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and
Understanding Recurrent Networks"): one self-contained HTML page with

- the text, each token coloured by one unit's activation (a selector over layers, quantities
  and units: an LSTM's cell state tanh(c) and output h, or a GRU/RNN's h), red for positive and
  blue for negative;
- the units ranked by how interpretable they look: the largest |Pearson r| between a unit's
  activation and a simple property of the text (position in the line, inside quotes, inside
  brackets);
- gate saturation: for each gate, the fraction of steps each unit spends left-saturated (< 0.1)
  and right-saturated (> 0.9), as histograms over the units.

Activations are stored in the page as int8 (activation * 127, base64), so a page over a few
thousand characters of a 2 x 256 LSTM stays around a megabyte; the page needs no network.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from rnnkit.data.text import tokenize

from .model import LanguageModel

__all__ = ["activations", "text_features", "rank_units", "gate_saturation", "write_report"]

GATES = ("i", "f", "o", "r", "z")


def activations(model: LanguageModel, text: str) -> tuple[list[str], dict, dict]:
    """Tokens of `text`, their displayable activations {(layer, name): (T, H)} in [-1, 1] and
    the gates {(layer, gate): (T, H)} in [0, 1]."""
    tokens = tokenize(text, model.level)
    if not tokens:
        raise ValueError("the text to inspect is empty")
    ids = model.vocabulary.encode(tokens)
    with model.network.evaluating():
        _, _, cache = model.network.forward(ids[:, None])
    shown, gates = {}, {}
    for layer, named in cache.internals().items():
        for name, values in named.items():
            values = values[:, 0, :].astype(np.float64)
            if name == "c":
                shown[(layer, "cell tanh(c)")] = np.tanh(values)
            elif name == "h":
                shown[(layer, "output h")] = values
            elif name in GATES:
                gates[(layer, name)] = values
    return tokens, shown, gates


def text_features(tokens: list[str]) -> dict[str, np.ndarray]:
    """Per token: its position in the line (characters since the last line break), whether it
    lies inside double quotes, whether it lies inside brackets."""
    position, quoted, bracketed = [], [], []
    column, inside_quotes, depth = 0, False, 0
    for token in tokens:
        if token == "\n":
            column = 0
        if token == '"':
            inside_quotes = not inside_quotes
        if token in ("(", "[", "{"):
            depth += 1
        position.append(column)
        quoted.append(inside_quotes)
        bracketed.append(depth > 0)
        if token in (")", "]", "}") and depth > 0:
            depth -= 1
        if token != "\n":
            column += len(token)
    return {"position in line": np.array(position, float), "inside quotes": np.array(quoted, float),
            "inside brackets": np.array(bracketed, float)}


def _correlations(values: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """|Pearson r| of every column of values (T, H) with feature (T,); 0 where either is constant."""
    v = values - values.mean(axis=0)
    f = feature - feature.mean()
    denominator = np.sqrt((v ** 2).sum(axis=0) * (f ** 2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denominator > 0, (v * f[:, None]).sum(axis=0) / denominator, 0.0)
    return np.abs(r)


def rank_units(shown: dict, features: dict) -> list[dict]:
    """Every (layer, quantity, unit) with its best-matching feature, most interpretable first."""
    ranked = []
    for (layer, quantity), values in shown.items():
        scores = {name: _correlations(values, feature) for name, feature in features.items()}
        for unit in range(values.shape[1]):
            best = max(scores, key=lambda name: scores[name][unit])
            ranked.append({"layer": layer, "quantity": quantity, "unit": unit, "feature": best,
                           "r": float(scores[best][unit])})
    return sorted(ranked, key=lambda item: -item["r"])


def gate_saturation(gates: dict) -> dict:
    """{(layer, gate): (left fractions (H,), right fractions (H,))}."""
    return {key: ((values < 0.1).mean(axis=0), (values > 0.9).mean(axis=0)) for key, values in gates.items()}


def _histogram_svg(title: str, left: np.ndarray, right: np.ndarray) -> str:
    bins = np.linspace(0, 1, 11)
    width, height = 260, 120
    parts = [f'<svg class="hist" width="{width}" height="{height + 30}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="4" y="12">{html.escape(title)}</text>']
    for offset, (fractions, colour) in enumerate(((left, "#3b6fb6"), (right, "#c8553d"))):
        counts, _ = np.histogram(fractions, bins=bins)
        top = max(counts.max(), 1)
        for k, count in enumerate(counts):
            bar = height * count / top * 0.8
            x = 6 + k * 25 + offset * 11
            parts.append(f'<rect x="{x}" y="{height + 14 - bar:.1f}" width="10" height="{bar:.1f}" fill="{colour}">'
                         f'<title>{count} units {"left" if offset == 0 else "right"}-saturated '
                         f'{bins[k]:.1f}-{bins[k + 1]:.1f} of the time</title></rect>')
    parts.append(f'<text x="4" y="{height + 28}">0 → 1: fraction of steps (blue &lt; 0.1, red &gt; 0.9)</text></svg>')
    return "".join(parts)


def write_report(model: LanguageModel, text: str, path: str | Path, *, top: int = 25) -> dict:
    """Write the page; returns a summary (the most interpretable unit, counts)."""
    tokens, shown, gates = activations(model, text)
    ranked = rank_units(shown, text_features(tokens))
    options = [{"label": f"layer {r['layer'][1:]} · {r['quantity']} · unit {r['unit']} "
                         f"(|r| = {r['r']:.2f} with {r['feature']})",
                "matrix": f"{r['layer']}|{r['quantity']}", "unit": r["unit"]} for r in ranked]
    matrices = {f"{layer}|{quantity}": {
        "units": values.shape[1],
        "data": base64.b64encode(np.round(np.clip(values, -1, 1) * 127).astype(np.int8).tobytes()).decode()}
        for (layer, quantity), values in shown.items()}
    table = "".join(f"<tr><td>{i + 1}</td><td>{html.escape(r['layer'])}</td><td>{html.escape(r['quantity'])}</td>"
                    f"<td>{r['unit']}</td><td>{html.escape(r['feature'])}</td><td>{r['r']:.3f}</td></tr>"
                    for i, r in enumerate(ranked[:top]))
    histograms = "".join(_histogram_svg(f"{layer} gate {gate}", left, right)
                         for (layer, gate), (left, right) in gate_saturation(gates).items())
    page = PAGE.format(
        tokens=json.dumps(tokens), options=json.dumps(options), matrices=json.dumps(matrices),
        table=table, histograms=histograms or "<p>This cell has no gates.</p>", count=len(tokens))
    Path(path).write_text(page, encoding="utf-8")
    return {"tokens": len(tokens), "units": len(ranked), "best": ranked[0]}


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rnnkit: inside the language model</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; max-width: 70em; }}
#text {{ font-family: monospace; white-space: pre-wrap; line-height: 1.5; border: 1px solid #ccc; padding: .5em; }}
#text span {{ padding: 0 0; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ddd; padding: 2px 6px; }}
.hist {{ margin: 4px; border: 1px solid #eee; }}
</style></head><body>
<h1>Inside the language model</h1>
<p>{count} tokens. Colour: the selected unit's activation, red positive, blue negative.</p>
<label for="unit">Unit: </label><select id="unit"></select>
<div id="text"></div>
<h2>Most interpretable units</h2>
<table><tr><th>#</th><th>layer</th><th>quantity</th><th>unit</th><th>best match</th><th>|r|</th></tr>{table}</table>
<h2>Gate saturation</h2>
<div>{histograms}</div>
<script>
const tokens = {tokens};
const options = {options};
const matrices = {matrices};
const decoded = {{}};
function matrix(key) {{
  if (!decoded[key]) {{
    const raw = atob(matrices[key].data);
    const values = new Int8Array(raw.length);
    for (let k = 0; k < raw.length; k++) values[k] = (raw.charCodeAt(k) << 24) >> 24;
    decoded[key] = values;
  }}
  return decoded[key];
}}
function colour(value) {{
  const a = Math.min(1, Math.abs(value));
  return value >= 0 ? `rgba(200, 60, 40, ${{a}})` : `rgba(40, 90, 200, ${{a}})`;
}}
const select = document.getElementById("unit");
options.forEach((option, index) => {{
  const element = document.createElement("option");
  element.value = index;
  element.textContent = option.label;
  select.appendChild(element);
}});
const spans = tokens.map(token => {{
  const span = document.createElement("span");
  span.textContent = token;
  document.getElementById("text").appendChild(span);
  return span;
}});
function render() {{
  const option = options[Number(select.value)];
  const values = matrix(option.matrix), units = matrices[option.matrix].units;
  spans.forEach((span, t) => {{
    const value = values[t * units + option.unit] / 127;
    span.style.backgroundColor = colour(value);
    span.title = value.toFixed(2);
  }});
  document.body.dataset.shown = option.matrix + "#" + option.unit;
}}
select.addEventListener("change", render);
render();
const wanted = new URLSearchParams(location.hash.slice(1)).get("select");
if (wanted !== null) {{ select.value = wanted; select.dispatchEvent(new Event("change")); }}
</script></body></html>
"""
