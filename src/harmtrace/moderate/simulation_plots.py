"""Figures for the policy simulation (notebook 06); each returns a Figure for save_figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from harmtrace.analysis.transitions import OVERALL
from harmtrace.report.figures import legend_above
from harmtrace.report.label_layout import place_point_labels
from harmtrace.taxonomy import CATEGORIES, CATEGORY_TITLES, TRANSITIONS

_COLORS = dict(zip(TRANSITIONS, ("#4c9a6a", "#9a9a9a", "#c0504d"), strict=True))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def plot_policy_transitions(
    transitions: pd.DataFrame,
    samples: Sequence[str],
    labels: Mapping[str, str],
    policies: Sequence[str],
    category: str = OVERALL,
) -> plt.Figure:
    """Stacked bars of transition shares: before moderation, then after each policy."""
    fig, axes = plt.subplots(
        len(samples),
        1,
        figsize=(6.4, 0.9 + 0.42 * (len(policies) + 1) * len(samples)),
        squeeze=False,
    )
    for ax, sample in zip(axes[:, 0], samples, strict=True):
        d = transitions.loc[
            (transitions["sample"] == sample) & (transitions["category"] == category)
        ]
        first = d.loc[d["policy"] == policies[0]]
        bars = [("before moderation", first.loc[first["stage"] == "before"])]
        bars += [(p, d.loc[(d["policy"] == p) & (d["stage"] == "after")]) for p in policies]
        y = np.arange(len(bars))[::-1]
        left = np.zeros(len(bars))
        for t in TRANSITIONS:
            share = np.array([float(g.loc[g["transition"] == t, "share"].sum()) for _, g in bars])
            ax.barh(y, share, left=left, color=_COLORS[t], label=t, height=0.7)
            left += share
        ax.set_yticks(y, [name for name, _ in bars], fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_title(labels.get(sample, sample), fontsize=9)
    axes[-1, 0].set_xlabel("share of responses (overall severity)")
    axes[0, 0].legend(
        frameon=False, fontsize=7, ncol=3, loc="lower right", bbox_to_anchor=(1, 1.08)
    )
    fig.tight_layout()
    return fig


def plot_frontier(
    frontier: pd.DataFrame,
    effects: pd.DataFrame,
    samples: Sequence[str],
    labels: Mapping[str, str],
    policies: Sequence[str],
) -> plt.Figure:
    """Harmful escalations (to Medium or High) removed (y) against benign responses changed
    (x) across a probability threshold, one line per policy family; the named policies as
    labelled points."""
    fig, axes = plt.subplots(
        1, len(samples), figsize=(3.3 * len(samples), 3.1), squeeze=False, sharey=True
    )
    named = effects.loc[effects["category"] == OVERALL]
    labels_of: list[list[tuple[str, tuple[float, float]]]] = []
    for ax, sample in zip(axes[0], samples, strict=True):
        f = frontier.loc[frontier["sample"] == sample] if len(frontier) else frontier
        ends: list[tuple[str, tuple[float, float]]] = []
        for j, (family, g) in enumerate(f.groupby("family", sort=True) if len(f) else []):
            g = g.sort_values("threshold")
            ax.plot(
                g["benign_changed_share"],
                g["harmful_removed_share"],
                marker=_MARKERS[j % len(_MARKERS)],
                ms=3,
                lw=1,
                label=f"{family} at p >= t",
            )
            ends += [
                (f"t={r.threshold:g}", (r.benign_changed_share, r.harmful_removed_share))
                for r in (g.iloc[[0, -1]] if len(g) > 1 else g).itertuples()
            ]
        n = named.loc[named["sample"] == sample]
        points = []
        for p in policies:
            row = n.loc[n["policy"] == p]
            if len(row):
                x, y = (
                    float(row["benign_changed_share"].iloc[0]),
                    float(row["harmful_removed_share"].iloc[0]),
                )
                ax.scatter([x], [y], color="black", s=14, zorder=3)
                points.append((p, (x, y)))
        labels_of.append(points + ends)  # the named policies are placed first
        ax.set_title(labels.get(sample, sample), fontsize=9)
        ax.set_xlabel("benign responses changed")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=-0.005)
    axes[0, 0].set_ylabel("escalations to Medium+ removed")
    legend_above(fig, axes[0, -1], fontsize=6)
    # labels last, in the final layout, each where it clears the others and the data
    for ax, items in zip(axes[0], labels_of, strict=True):
        place_point_labels(ax, items, fontsize=6)
    return fig


def plot_category_needs(
    needs: pd.DataFrame,
    samples: Sequence[str],
    labels: Mapping[str, str],
    policies: Sequence[str],
) -> plt.Figure:
    """Share of each category's harmful escalations each policy removes (per sample)."""
    fig, axes = plt.subplots(
        1, len(samples), figsize=(2.2 + 0.9 * len(policies) * len(samples), 2.6), squeeze=False
    )
    for ax, sample in zip(axes[0], samples, strict=True):
        d = needs.loc[needs["sample"] == sample].set_index("category").reindex(list(CATEGORIES))
        mat = np.array(
            [[float(d.at[c, f"removed_{p}"]) for p in policies] for c in CATEGORIES], dtype=float
        )
        sns.heatmap(
            mat,
            annot=True,
            fmt=".0%",
            vmin=0,
            vmax=1,
            cmap="Greens",
            cbar=False,
            ax=ax,
            xticklabels=list(policies),
            yticklabels=[
                f"{CATEGORY_TITLES[c]} (n={int(d.at[c, 'harmful_escalations'])})"
                if pd.notna(d.at[c, "harmful_escalations"])
                else CATEGORY_TITLES[c]
                for c in CATEGORIES
            ],
            annot_kws={"fontsize": 6},
        )
        ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right", fontsize=6)
        ax.set_yticklabels(ax.get_yticklabels(), rotation=0, fontsize=7)
        ax.set_title(labels.get(sample, sample), fontsize=9)
    fig.tight_layout()
    return fig
