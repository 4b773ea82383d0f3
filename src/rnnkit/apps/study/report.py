"""What a study found, per task (all scores: lower is better):

- a table of every variant: trials scored, failed and diverged, the best and the median score,
  the mean of its top 10 % and Welch's t-test of those top trials against vanilla's (Greff et
  al. compared the best 10 % of each variant's trials, p < 0.05); with few trials the "top 10 %"
  is at least 3 trials (the table says how many), and a variant is marked only when p < 0.05
  (worse "+" or better "-");
- beside it, a paired test that uses every configuration and not only the top ones: trial k has
  the same hyperparameters for every variant, so the differences d_k = score(variant, k) -
  score(V, k) over the configurations both scored go into Wilcoxon's signed-rank test
  (two-sided; "paired p (n)", the median d_k's sign giving worse or better);
- a box plot of each variant's scores (PNG), the significant variants marked;
- how much of the score's variance each hyperparameter explains, as functional ANOVA's main
  effects (Hutter et al. 2014) computed from a random forest (scikit-learn) fitted to the trials:

      f_j(v) = mean over the trials' other hyperparameters of forest(x with x_j = v)
      share_j = Var_v f_j(v) / Var(forest over the trials' configurations)

  with v running over 20 quantiles of x_j (so the measure does not depend on the scale a
  hyperparameter is drawn on) and the variant as one more input (its share is how much the
  choice of cell matters compared with the hyperparameters); once for the scores and once for
  their ranks, which a few blown-up runs cannot dominate. Shares of main effects need not
  add up to 1: the rest is interactions. Only scored trials enter: diverged runs, typically the
  highest learning rates, have no score, so the learning rate's share is an underestimate.
  Trials are paired (trial k has the same hyperparameters for every variant), so a study with k
  trials per variant has only k configurations, each changing every hyperparameter at once;
  below MIN_CONFIGURATIONS of them the forest cannot tell hyperparameters apart, and the report
  gives only the split it can make:
- the paired design's two-way split of the variance (a two-way ANOVA without replication, over
  the configurations every variant finished): the share of the configuration (all
  hyperparameters together), the share of the variant, and the rest (their interaction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.optional import require

from .results import read_results
from .spec import VARIANTS

__all__ = ["VariantSummary", "summarise", "variance_shares", "write_report"]

TOP_FRACTION, TOP_MINIMUM, SIGNIFICANCE = 0.10, 3, 0.05
MIN_CONFIGURATIONS = 20
WORDS = {"+": "worse", "-": "better", "": ""}



@dataclass
class VariantSummary:
    variant: str
    scored: int
    failed: int
    diverged: int
    best: float | None
    median: float | None
    top_mean: float | None
    top_count: int
    p_value: float | None  # Welch's t-test of the top trials against vanilla's
    direction: str  # "+" significantly worse than vanilla, "-" better, "" neither
    solved: int | None = None  # adding problem: trials with >= 99 % answered within 0.04
    paired_p: float | None = None  # Wilcoxon's signed-rank test of the per-configuration differences
    paired_count: int = 0  # configurations scored by both the variant and vanilla
    paired_direction: str = ""  # "+": the median difference from vanilla is positive (worse) at p < 0.05


def _top(scores: list[float]) -> np.ndarray:
    ranked = np.sort(np.asarray(scores, dtype=float))
    return ranked[:max(TOP_MINIMUM, int(math.ceil(TOP_FRACTION * len(ranked))))]


def summarise(records: list[dict], task: str, baseline: str = "V") -> list[VariantSummary]:
    ttest_ind = require("scipy.stats", "study", "the study report").ttest_ind
    rows = [r for r in records if r["task"] == task]
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in rows)]
    variants += sorted({r["variant"] for r in rows} - set(variants))
    scores = {v: [r["score"] for r in rows if r["variant"] == v and r["status"] == "ok"] for v in variants}
    reference = _top(scores.get(baseline, []))
    summaries = []
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]
        values = scores[variant]
        top = _top(values) if values else np.array([])
        p_value, direction = None, ""
        if variant != baseline and len(top) >= 2 and len(reference) >= 2:
            test = ttest_ind(top, reference, equal_var=False)
            if math.isfinite(test.pvalue):
                p_value = float(test.pvalue)
                if p_value < SIGNIFICANCE:
                    direction = "+" if top.mean() > reference.mean() else "-"
        paired_p, paired_count, paired_direction = _paired_test(rows, variant, baseline)
        solved = None
        if task == "adding":
            solved = sum(r.get("solved_fraction", 0.0) >= 0.99 for r in mine if r["status"] == "ok")
        summaries.append(VariantSummary(
            variant, len(values), sum(r["status"] == "failed" for r in mine),
            sum(r["status"] == "diverged" for r in mine),
            float(np.min(values)) if values else None, float(np.median(values)) if values else None,
            float(top.mean()) if len(top) else None, len(top), p_value, direction, solved,
            paired_p, paired_count, paired_direction))
    return summaries


def _paired_test(rows: list[dict], variant: str, baseline: str) -> tuple[float | None, int, str]:
    """Wilcoxon's signed-rank test of d_k = score(variant, k) - score(baseline, k) over the trials k
    both scored: (p, how many pairs, "+"/"-"/"" as for Welch). None below 5 pairs or for vanilla."""
    if variant == baseline:
        return None, 0, ""
    wilcoxon = require("scipy.stats", "study", "the study report").wilcoxon
    scores = {(r["variant"], r["trial"]): r["score"] for r in rows if r["status"] == "ok"}
    differences = np.array([score - scores[(baseline, k)] for (v, k), score in scores.items()
                            if v == variant and (baseline, k) in scores])
    if len(differences) < 5 or not np.any(differences):
        return None, len(differences), ""
    p_value = float(wilcoxon(differences).pvalue)
    direction = ""
    if p_value < SIGNIFICANCE:
        direction = "+" if np.median(differences) > 0 else "-"
    return p_value, len(differences), direction


def paired_shares(records: list[dict], task: str) -> dict[str, float] | None:
    """Shares of the variance of the scores Y (configurations x variants, the configurations
    every variant finished) explained by the configuration and by the variant:

        SS_config  = V * sum_c (mean_c - mean)^2       SS_variant = C * sum_v (mean_v - mean)^2
        share = SS / SS_total;  "interaction" = 1 - both

    None with fewer than 2 complete configurations or 2 variants."""
    rows = [r for r in records if r["task"] == task and r["status"] == "ok"]
    variants = sorted({r["variant"] for r in rows})
    scores = {(r["trial"], r["variant"]): r["score"] for r in rows}
    complete = sorted(k for k in {r["trial"] for r in rows} if all((k, v) in scores for v in variants))
    if len(complete) < 2 or len(variants) < 2:
        return None
    y = np.array([[scores[(k, v)] for v in variants] for k in complete])
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0:
        return None
    configuration = len(variants) * float(((y.mean(axis=1) - y.mean()) ** 2).sum()) / total
    variant = len(complete) * float(((y.mean(axis=0) - y.mean()) ** 2).sum()) / total
    return {"configuration": configuration, "variant": variant, "interaction": 1.0 - configuration - variant,
            "configurations": len(complete)}


def variance_shares(records: list[dict], task: str, seed: int = 0, ranks: bool = False) -> dict[str, float]:
    """Main-effect share of the variance of a task's (scored) results for each hyperparameter
    that varied, and for the variant. Empty with fewer than 8 scored trials. ranks: explain the
    scores' ranks (1 .. n, ties averaged) instead of the scores, so that a few blown-up runs
    (NOAF's 300 nats/char) weigh as much as any other worst runs instead of being all there is."""
    RandomForestRegressor = require("sklearn.ensemble", "study", "the study report").RandomForestRegressor
    rows = [r for r in records if r["task"] == task and r["status"] == "ok"]
    if len(rows) < 8:
        return {}
    names = sorted({name for r in rows for name in r["hyperparameters"]})
    names = [n for n in names if len({r["hyperparameters"].get(n) for r in rows}) > 1]
    variants = sorted({r["variant"] for r in rows})
    columns = [np.array([float(r["hyperparameters"][name]) for r in rows]) for name in names]
    if len(variants) > 1:
        names.append("variant")
        columns.append(np.array([variants.index(r["variant"]) for r in rows], dtype=float))
    if not names:
        return {}
    x = np.column_stack(columns)
    y = np.array([r["score"] for r in rows])
    if ranks:
        y = require("scipy.stats", "study", "the study report").rankdata(y)
    forest = RandomForestRegressor(n_estimators=200, min_samples_leaf=2, random_state=seed).fit(x, y)
    total = float(np.var(forest.predict(x)))
    if total <= 0:
        return {name: 0.0 for name in names}
    shares = {}
    for j, name in enumerate(names):
        grid = np.unique(x[:, j]) if name == "variant" else np.quantile(x[:, j], np.linspace(0, 1, 20))
        effect = []
        for value in grid:
            probe = x.copy()
            probe[:, j] = value
            effect.append(forest.predict(probe).mean())
        shares[name] = float(np.var(effect) / total)
    return shares


def _format(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def task_table(summaries: list[VariantSummary], metric: str, adding: bool) -> str:
    header = ["variant", "scored", "failed", "diverged", f"best {metric}", "median", "mean of top (n)",
              "p vs V", "", "paired p (n)", ""]
    if adding:
        header.insert(4, "solved")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in summaries:
        cells = [s.variant, str(s.scored), str(s.failed), str(s.diverged), _format(s.best), _format(s.median),
                 f"{_format(s.top_mean)} ({s.top_count})", _format(s.p_value, 2),
                 WORDS[s.direction], "-" if s.paired_p is None else f"{s.paired_p:.2g} ({s.paired_count})",
                 WORDS[s.paired_direction]]
        if adding:
            cells.insert(4, str(s.solved))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def box_plot(records: list[dict], task: str, summaries: list[VariantSummary], metric: str, path: Path) -> None:
    matplotlib = require("matplotlib", "study", "the study report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [s.variant for s in summaries if s.scored]
    data = [[r["score"] for r in records if r["task"] == task and r["variant"] == v and r["status"] == "ok"]
            for v in variants]
    marks = {s.variant: s.direction for s in summaries}
    figure, axes = plt.subplots(figsize=(max(5.0, 0.7 * len(variants) + 2), 4))
    if data:
        boxes = axes.boxplot(data, patch_artist=True, showfliers=True)
        axes.set_xticks(range(1, len(variants) + 1),
                        [v + {"+": " (worse)", "-": " (better)", "": ""}[marks[v]] for v in variants], rotation=45,
                        ha="right")
        colours = {"+": "#e8a0a0", "-": "#a0d8a0", "": "#d0d8e8"}
        for patch, variant in zip(boxes["boxes"], variants):
            patch.set_facecolor(colours[marks[variant]])
        # A few blown-up runs (NOAF's unbounded cell state) would squash every box: the axis
        # ends a little above the highest whisker and such points are written at its top.
        low = min(min(values) for values in data)
        top = max(max(line.get_ydata()) for line in boxes["whiskers"])
        top += 0.08 * (top - low) or 0.1 * abs(top) or 1.0
        axes.set_ylim(low - 0.04 * (top - low), top)
        for position, values in enumerate(data, start=1):
            above = sorted(v for v in values if v > top)
            if above:
                axes.annotate("\u2191 " + "\n".join(f"{v:.3g}" for v in above), (position, top), xytext=(0, -3),
                              textcoords="offset points", fontsize=7, ha="center", va="top", color="#a03030")
    axes.set_ylabel(metric + " (lower is better)")
    axes.set_title(f"{task}: every scored trial per variant (red/green: top 10 % differ from V, p < 0.05)",
                   fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _variance_text(records: list[dict], task: str) -> str:
    paired = paired_shares(records, task)
    lines = []
    if paired is not None:
        lines.append(f"Variance split over the {paired['configurations']} configurations every variant finished: "
                     f"configuration (the hyperparameters together) {paired['configuration']:.0%}, "
                     f"variant {paired['variant']:.0%}, interaction {paired['interaction']:.0%}.")
    configurations = len({r["trial"] for r in records if r["task"] == task and r["status"] == "ok"})
    if configurations < MIN_CONFIGURATIONS:
        lines.append(f"Hyperparameter shares need at least {MIN_CONFIGURATIONS} trials per variant to tell the "
                     f"hyperparameters apart (this study has {configurations}).")
    else:
        for ranks, what in ((False, "scores"), (True, "ranks of the scores")):
            shares = variance_shares(records, task, ranks=ranks)
            lines.append(f"Variance of the {what} explained by each input alone (random-forest main effects, scored "
                         "trials): " + ", ".join(f"{name} {share:.0%}"
                                                 for name, share in sorted(shares.items(), key=lambda i: -i[1])))
    return "\n".join(lines)


def write_report(directory: str | Path, out: str | Path | None = None) -> tuple[str, list[Path]]:
    """Build the report of a results directory: returns (the Markdown text, the files written:
    report.md and one box plot per task, in `out`, by default the results directory)."""
    from .tasks import METRICS

    records = read_results(directory)
    if not records:
        raise ValueError(f"{directory} has no finished trials yet")
    out = Path(out) if out is not None else Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    sections, files = [], []
    for task in [t for t in METRICS if any(r["task"] == t for r in records)]:
        metric = METRICS[task]
        summaries = summarise(records, task)
        plot = out / f"{task}_boxplot.png"
        box_plot(records, task, summaries, metric, plot)
        files.append(plot)
        sections.append(f"## {task} ({metric})\n\n{task_table(summaries, metric, task == 'adding')}\n\n"
                        f"{_variance_text(records, task)}\n\n![{task}]({plot.name})\n")
    failures = [r for r in records if r["status"] == "failed"]
    if failures:
        sections.append("## Failed trials\n\n" + "\n".join(f"- {r['key']}: {r.get('error', '')}" for r in failures)
                        + "\n")
    text = f"# Study report: {len(records)} trials\n\n" + "\n".join(sections)
    report = out / "report.md"
    report.write_text(text, encoding="utf-8")
    files.insert(0, report)
    return text, files
