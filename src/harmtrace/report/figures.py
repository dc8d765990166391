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


def save_figure(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem.pdf`` and ``stem.png`` without timestamps, so reruns give the same bytes."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".pdf"), stem.with_suffix(".png")]
    fig.savefig(paths[0], metadata={"CreationDate": None, "ModDate": None, "Producer": None})
    fig.savefig(paths[1], metadata={"Software": None}, dpi=200)
    plt.close(fig)
    return paths
