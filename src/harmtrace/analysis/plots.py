"""Figures for the transitions notebook; each returns a Figure for save_figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from harmtrace.analysis.transitions import OVERALL
from harmtrace.report.figures import legend_above
from harmtrace.taxonomy import CATEGORIES, CATEGORY_TITLES, SEVERITY_NAMES, TRANSITIONS

_COLORS = dict(zip(TRANSITIONS, ("#4c9a6a", "#9a9a9a", "#c0504d"), strict=True))
_CATS = (*CATEGORIES, OVERALL)


def _title(cat: str) -> str:
    return CATEGORY_TITLES.get(cat, cat.capitalize())


def _errbar(share: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Error-bar lengths for matplotlib, which refuses negative ones: a Wilson bound of a
    share of 0 or 1 can miss the share by rounding (1.7e-18), so lengths are clipped at 0,
    and a missing bound draws no bar."""
    return np.clip(np.nan_to_num(np.vstack([share - lo, hi - share])), 0.0, None)


def plot_transition_shares(
    shares: pd.DataFrame, samples: Sequence[str], labels: Mapping[str, str]
) -> plt.Figure:
    """Grouped bars: share of each transition per category, 95% Wilson CIs as error bars."""
    fig, axes = plt.subplots(
        1, len(samples), figsize=(3.4 * len(samples), 3.0), sharey=True, squeeze=False
    )
    width = 0.26
    for ax, sample in zip(axes[0], samples, strict=True):
        sub = shares.loc[shares["sample"] == sample]
        x = np.arange(len(_CATS))
        for j, t in enumerate(TRANSITIONS):
            rows = sub.loc[sub["transition"] == t].set_index("category").reindex(list(_CATS))
            share = rows["share"].to_numpy(dtype=float)
            err = _errbar(
                share, rows["ci_lo"].to_numpy(dtype=float), rows["ci_hi"].to_numpy(dtype=float)
            )
            ax.bar(
                x + (j - 1) * width,
                share,
                width,
                yerr=err,
                capsize=2,
                label=t,
                color=_COLORS[t],
                error_kw={"elinewidth": 0.8},
            )
        ax.set_xticks(x, [_title(c) for c in _CATS], rotation=30, ha="right")
        ax.set_title(labels.get(sample, sample), fontsize=9)
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("share of records")
    legend_above(fig, axes[0][-1], fontsize=7)
    return fig


def plot_severity_matrices(
    matrices: Mapping[tuple[str, str], pd.DataFrame],
    samples: Sequence[str],
    labels: Mapping[str, str],
    category: str = OVERALL,
) -> plt.Figure:
    """Prompt x response severity counts, one heatmap per sample, for one category."""
    fig, axes = plt.subplots(1, len(samples), figsize=(3.0 * len(samples), 2.8), squeeze=False)
    ticks = [SEVERITY_NAMES[k] for k in sorted(SEVERITY_NAMES)]
    for ax, sample in zip(axes[0], samples, strict=True):
        m = matrices[(sample, category)]
        sns.heatmap(
            m.to_numpy(),
            annot=True,
            fmt="d",
            cmap="Blues",
            cbar=False,
            ax=ax,
            xticklabels=ticks,
            yticklabels=ticks,
            annot_kws={"fontsize": 7},
        )
        ax.set_xlabel("response severity")
        ax.set_ylabel("prompt severity")
        ax.set_title(labels.get(sample, sample), fontsize=9)
    fig.tight_layout()
    return fig


def plot_severity_matrix_grid(
    matrices: Mapping[tuple[str, str], pd.DataFrame],
    samples: Sequence[str],
    labels: Mapping[str, str],
) -> plt.Figure:
    """Prompt x response counts for every sample (rows) and category (columns)."""
    fig, axes = plt.subplots(
        len(samples),
        len(CATEGORIES),
        figsize=(2.2 * len(CATEGORIES), 2.1 * len(samples)),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    for i, sample in enumerate(samples):
        for j, cat in enumerate(CATEGORIES):
            ax = axes[i][j]
            sns.heatmap(
                matrices[(sample, cat)].to_numpy(),
                annot=True,
                fmt="d",
                cmap="Blues",
                cbar=False,
                ax=ax,
                annot_kws={"fontsize": 6},
            )
            if i == 0:
                ax.set_title(_title(cat), fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{labels.get(sample, sample)}\nprompt", fontsize=7)
            if i == len(samples) - 1:
                ax.set_xlabel("response", fontsize=7)
            ax.tick_params(axis="y", labelrotation=0, labelsize=6)
            ax.tick_params(axis="x", labelsize=6)
    fig.tight_layout()
    return fig


def plot_persistence_drift(
    persistence: pd.DataFrame, samples: Sequence[str], labels: Mapping[str, str]
) -> plt.Figure:
    """Per category: persistence (same non-zero severity) and drift-up (from 0), with CIs."""
    metrics = ("persistence", "drift_up")
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.8), sharey=False)
    offsets = np.linspace(-0.2, 0.2, len(samples)) if len(samples) > 1 else [0.0]
    for ax, metric in zip(axes, metrics, strict=True):
        for off, sample in zip(offsets, samples, strict=True):
            sub = persistence.loc[
                (persistence["sample"] == sample) & (persistence["metric"] == metric)
            ]
            sub = sub.set_index("category").reindex(list(CATEGORIES))
            x = np.arange(len(CATEGORIES)) + off
            share = sub["share"].to_numpy(dtype=float)
            err = _errbar(
                share, sub["ci_lo"].to_numpy(dtype=float), sub["ci_hi"].to_numpy(dtype=float)
            )
            ax.errorbar(
                x, share, yerr=err, fmt="o", ms=3, capsize=2, label=labels.get(sample, sample)
            )
        ax.set_xticks(np.arange(len(CATEGORIES)), [_title(c) for c in CATEGORIES])
        ax.set_title(
            "persistence (prompt > 0)" if metric == "persistence" else "drift up (prompt = 0)",
            fontsize=9,
        )
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel("share")
    legend_above(fig, axes[1], fontsize=7)
    return fig


# --------------------------------------------------------------------------- category asymmetry


def _panels(n: int, width: float = 3.4, height: float = 2.8):
    fig, axes = plt.subplots(1, max(n, 1), figsize=(width * max(n, 1), height), squeeze=False)
    return fig, axes[0]


def plot_category_rates(results, labels: Mapping[str, str]) -> plt.Figure:
    """Per sample: failure to de-escalate and persistence per category, with CIs."""
    samples = list(results)
    fig, axes = _panels(len(samples))
    width = 0.38
    for ax, sample in zip(axes, samples, strict=False):
        rates = results[sample].rates.set_index(["category", "metric"])
        x = np.arange(len(CATEGORIES))
        for j, (metric, color) in enumerate((("failure", "#c0504d"), ("persistence", "#9a9a9a"))):
            rows = rates.xs(metric, level="metric").reindex(list(CATEGORIES))
            share = rows["share"].to_numpy(dtype=float)
            err = _errbar(share, rows["ci_lo"].to_numpy(float), rows["ci_hi"].to_numpy(float))
            ax.bar(
                x + (j - 0.5) * width,
                np.nan_to_num(share),
                width,
                yerr=err,
                capsize=2,
                color=color,
                label=metric,
                error_kw={"elinewidth": 0.8},
            )
        ax.set_xticks(x, [_title(c) for c in CATEGORIES], rotation=30, ha="right")
        ax.set_ylim(0, 1)
        ax.set_title(labels.get(sample, sample), fontsize=9)
    axes[0].set_ylabel("share of non-zero prompts")
    legend_above(fig, axes[-1], fontsize=7)
    return fig


def plot_escalation_origin(results, labels: Mapping[str, str]) -> plt.Figure:
    """Share of escalations from a severity-0 prompt: over category cells vs over records."""
    samples = list(results)
    fig, ax = plt.subplots(figsize=(max(3.0, 1.6 * len(samples)), 2.8))
    x = np.arange(len(samples))
    for j, (unit, color) in enumerate((("cells", "#4c72b0"), ("records", "#dd8452"))):
        share, lo, hi = [], [], []
        for sample in samples:
            row = results[sample].origin.set_index("unit").loc[unit]
            share.append(row["share"])
            lo.append(row["ci_lo"])
            hi.append(row["ci_hi"])
        s = np.array(share, dtype=float)
        err = _errbar(s, np.array(lo, dtype=float), np.array(hi, dtype=float))
        ax.bar(
            x + (j - 0.5) * 0.38,
            np.nan_to_num(s),
            0.38,
            yerr=err,
            capsize=2,
            color=color,
            label=f"per {unit[:-1]}",
            error_kw={"elinewidth": 0.8},
        )
    ax.set_xticks(x, [labels.get(s, s) for s in samples], rotation=20, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("escalations from prompt severity 0")
    legend_above(fig, ax, fontsize=7)
    return fig


def plot_ratios(results, labels: Mapping[str, str]) -> plt.Figure:
    """Forest plot of the category rate ratios with cluster-bootstrap CIs (log scale)."""
    rows = []
    for sample, res in results.items():
        for r in res.ratios.itertuples():
            rows.append(
                (
                    f"{labels.get(sample, sample)}: {r.metric} "
                    f"{_title(r.numerator)}/{_title(r.denominator)}",
                    r.ratio,
                    r.ci_lo,
                    r.ci_hi,
                )
            )
    fig, ax = plt.subplots(figsize=(6.0, 0.3 * max(len(rows), 2) + 0.8))
    y = np.arange(len(rows))[::-1]
    for yi, (_, ratio, lo, hi) in zip(y, rows, strict=True):
        if np.isfinite(ratio) and ratio > 0:
            lo_ = lo if np.isfinite(lo) and lo > 0 else ratio
            hi_ = hi if np.isfinite(hi) else ratio * 10
            ax.plot([lo_, hi_], [yi, yi], color="#555555", lw=1)
            ax.plot([ratio], [yi], "o", color="#c0504d", ms=4)
    ax.axvline(1.0, color="#999999", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(y, [r[0] for r in rows], fontsize=7)
    ax.set_xlabel("ratio of rates (cluster-bootstrap CI)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- relevance

_REL_COLORS = ("#c0504d", "#e3b04b", "#4c9a6a")


def plot_relevance_by_severity(results, labels: Mapping[str, str]) -> plt.Figure:
    """Per sample: relevance 1/2/3 shares stacked at each response severity (n on top)."""
    samples = list(results)
    fig, axes = _panels(len(samples), width=3.0)
    for ax, sample in zip(axes, samples, strict=False):
        d = results[sample].by_severity
        n = d["n"].to_numpy(dtype=float)
        bottom = np.zeros(len(d))
        x = np.arange(len(d))
        for j, color in enumerate(_REL_COLORS):
            with np.errstate(invalid="ignore", divide="ignore"):
                share = np.where(n > 0, d[f"rel{j + 1}"].to_numpy(float) / n, 0.0)
            ax.bar(x, share, 0.7, bottom=bottom, color=color, label=f"relevance {j + 1}")
            bottom += share
        for xi, ni in zip(x, n, strict=True):
            ax.text(xi, 1.02, f"n={int(ni)}", ha="center", fontsize=6)
        ax.set_xticks(x, [SEVERITY_NAMES[int(v)] for v in d["level"]])
        ax.set_ylim(0, 1.1)
        ax.set_xlabel("response severity")
        ax.set_title(labels.get(sample, sample), fontsize=9)
    axes[0].set_ylabel("share of records")
    legend_above(fig, axes[-1], fontsize=6)
    return fig


def plot_relevance_by_transition(results, labels: Mapping[str, str]) -> plt.Figure:
    """Share fully relevant (relevance 3) by overall transition, with Wilson CIs."""
    samples = list(results)
    fig, ax = plt.subplots(figsize=(max(3.2, 1.8 * len(samples)), 2.8))
    width = 0.8 / len(TRANSITIONS)
    x = np.arange(len(samples))
    for j, t in enumerate(TRANSITIONS):
        rows = [results[s].by_transition.set_index("level").loc[t] for s in samples]
        share = np.array([r["share3"] for r in rows], dtype=float)
        err = _errbar(
            share,
            np.array([r["ci_lo"] for r in rows], dtype=float),
            np.array([r["ci_hi"] for r in rows], dtype=float),
        )
        ax.bar(
            x + (j - 1) * width,
            np.nan_to_num(share),
            width,
            yerr=err,
            capsize=2,
            color=_COLORS[t],
            label=t,
            error_kw={"elinewidth": 0.8},
        )
    ax.set_xticks(x, [labels.get(s, s) for s in samples], rotation=20, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share with relevance 3")
    ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- validity


def plot_preference_agreement(results, labels: Mapping[str, str]) -> plt.Figure:
    """Share of preference pairs whose rejected response is graded at least as severe."""
    frames = [(d, r.preferences) for d, r in results.items() if r.preferences is not None]
    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    cats = [OVERALL, *CATEGORIES]
    width = 0.8 / max(len(frames), 1)
    x = np.arange(len(cats))
    for j, (dataset, prefs) in enumerate(frames):
        p = prefs.set_index("category").reindex(cats)
        share = p["at_least"].to_numpy(dtype=float)
        err = _errbar(share, p["at_least_lo"].to_numpy(float), p["at_least_hi"].to_numpy(float))
        ax.bar(
            x + (j - (len(frames) - 1) / 2) * width,
            np.nan_to_num(share),
            width,
            yerr=err,
            capsize=2,
            label=labels.get(dataset, dataset),
            error_kw={"elinewidth": 0.8},
        )
        ax.bar(
            x + (j - (len(frames) - 1) / 2) * width,
            np.nan_to_num(p["above"].to_numpy(dtype=float)),
            width,
            color="none",
            edgecolor="#333333",
            hatch="//",
            lw=0.5,
        )
    ax.set_xticks(x, [_title(c) for c in cats], rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("rejected graded >= chosen\n(hatched: strictly >)")
    if frames:
        ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig
