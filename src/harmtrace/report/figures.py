"""One figure style and byte-stable saving (PDF and PNG) for every producer."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import seaborn as sns


def set_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.0)
    plt.rcParams.update(
        {
            "figure.dpi": 150,
            "savefig.bbox": "tight",
            "pdf.fonttype": 42,
            "svg.hashsalt": "harmtrace",
        }
    )


def legend_above(fig: plt.Figure, ax: plt.Axes, **kwargs) -> None:
    """One legend for all panels, in a row centred above them, from ``ax``'s entries.

    Inside an axes a legend covered bars (issue 19), and no corner of a panel is free
    of data whatever the shares, so the legend sits outside. This lays the figure out
    (``tight_layout``) first: the legend lies above the laid-out panels, and
    ``savefig.bbox = "tight"`` (:func:`set_style`) keeps it in the saved file.
    """
    handles, labels = ax.get_legend_handles_labels()
    fig.tight_layout()
    if handles:
        fig.legend(
            handles,
            labels,
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            ncol=len(handles),
            frameon=False,
            **kwargs,
        )


def save_figure(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem.pdf`` and ``stem.png`` without timestamps, so reruns give the same bytes."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".pdf"), stem.with_suffix(".png")]
    fig.savefig(paths[0], metadata={"CreationDate": None, "ModDate": None, "Producer": None})
    fig.savefig(paths[1], metadata={"Software": None}, dpi=200)
    plt.close(fig)
    return paths
