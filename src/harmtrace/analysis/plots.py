"""Figures for the transitions notebook; each returns a Figure for save_figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from harmtrace.analysis.transitions import OVERALL
from harmtrace.taxonomy import CATEGORIES, CATEGORY_TITLES, SEVERITY_NAMES, TRANSITIONS

_COLORS = dict(zip(TRANSITIONS, ("#4c9a6a", "#9a9a9a", "#c0504d"), strict=True))
_CATS = (*CATEGORIES, OVERALL)


def _title(cat: str) -> str:
    return CATEGORY_TITLES.get(cat, cat.capitalize())


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
            err = np.vstack(
                [
                    share - rows["ci_lo"].to_numpy(dtype=float),
                    rows["ci_hi"].to_numpy(dtype=float) - share,
                ]
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
    axes[0][-1].legend(frameon=False, fontsize=7, loc="upper right")
    fig.tight_layout()
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
            err = np.vstack(
                [
                    share - sub["ci_lo"].to_numpy(dtype=float),
                    sub["ci_hi"].to_numpy(dtype=float) - share,
                ]
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
    axes[1].legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig
