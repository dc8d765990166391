"""The weights figure draws intervals that do not contain their estimate (few refits)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import pandas as pd

from harmtrace.trees.report import plot_weights


def test_interval_beside_the_estimate_still_plots():
    ci = pd.DataFrame(
        {
            "weight": ["action.harm:a", "action.harm:b"],
            "estimate": [1.5, 0.8],
            "lo": [1.6, 0.5],  # the first interval lies above its estimate
            "hi": [2.0, 1.1],
            "n_effects": [3, 2],
        }
    )
    fig = plot_weights(ci, "action.harm:")
    segments = fig.axes[0].collections[0].get_segments()
    assert [tuple(s[:, 0]) for s in segments] == [(1.6, 2.0), (0.5, 1.1)]
