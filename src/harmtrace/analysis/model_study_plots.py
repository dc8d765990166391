"""Figures of the model-study section: refusal by condition and prompt kind, and the
escalation share per category and condition, each with its Wilson interval."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from harmtrace.report.model_study_tables import CATEGORY_NAMES


def _bars(ax, frame: pd.DataFrame, groups: list[str], series: list[str], key: str) -> None:
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, name in enumerate(series):
        rows = frame.loc[frame[key] == name].set_index("group").reindex(groups)
        share = rows["share"].to_numpy(dtype=float)
        lo = np.clip(share - rows["ci_lo"].to_numpy(dtype=float), 0, None)
        hi = np.clip(rows["ci_hi"].to_numpy(dtype=float) - share, 0, None)
        ax.bar(x + (i - (len(series) - 1) / 2) * width, share, width, label=name)
        ax.errorbar(
            x + (i - (len(series) - 1) / 2) * width,
            share,
            yerr=np.vstack([np.nan_to_num(lo), np.nan_to_num(hi)]),
            fmt="none",
            ecolor="black",
            capsize=2,
            lw=0.8,
        )
    ax.set_xticks(x, groups)
    ax.set_ylim(0, 1.05)


def plot_refusal(refusal: pd.DataFrame, conditions: list[str]) -> plt.Figure:
    frame = refusal.assign(group=refusal["kind"] + " prompts")
    groups = [g for g in ("harmful prompts", "benign prompts") if g in set(frame["group"])]
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    _bars(ax, frame.rename(columns={"target": "condition"}), groups, conditions, "condition")
    ax.set_ylabel("share refused")
    ax.legend(title="condition", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def plot_escalation(transitions: pd.DataFrame, conditions: list[str]) -> plt.Figure:
    esc = transitions.loc[transitions["transition"] == "escalate"].copy()
    esc["group"] = esc["category"].astype(str).map(CATEGORY_NAMES)
    groups = [CATEGORY_NAMES[c] for c in CATEGORY_NAMES if CATEGORY_NAMES[c] in set(esc["group"])]
    kinds = [k for k in ("harmful", "benign") if k in set(esc["kind"])]
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.0 * len(kinds), 2.8), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, kind in zip(axes, kinds, strict=True):
        part = esc.loc[esc["kind"] == kind].rename(columns={"target": "condition"})
        _bars(ax, part, groups, conditions, "condition")
        ax.set_title(f"{kind} prompts")
        # anchored at the tick and steep enough that neighbours clear each other (issue 19)
        plt.setp(ax.get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")
    axes[0].set_ylabel("share escalating")
    axes[-1].legend(title="condition", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig
