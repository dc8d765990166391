"""Layout of the paper's figures: no label prints over another, no legend covers data.

Issue 19: a referee found the labels of the policy frontier (Figure 8) printed over
each other and the legends of the transition shares and of relevance by severity
(Figures 1 and 7) covering bars. Every plotting function behind a paper figure is
built here on synthetic input shaped like the notebooks' (the notebooks' own sample
labels, four-digit counts, bars up to 1, frontier points that nearly coincide) and run
through :func:`harmtrace.report.figure_checks.check_layout`; the first tests show the
check itself finds overlaps and covered bars on figures cluttered on purpose.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from harmtrace.analysis import model_study_plots, plots
from harmtrace.analysis.transitions import OVERALL
from harmtrace.moderate.simulation_plots import plot_frontier
from harmtrace.report.figure_checks import check_layout
from harmtrace.report.figures import save_figure, set_style
from harmtrace.report.label_layout import place_point_labels
from harmtrace.taxonomy import CATEGORIES, TRANSITIONS
from harmtrace.trees.report import plot_steering

AIR, CHOSEN, REJECTED = "air-bench-2024", "hh-rlhf-harmless:chosen", "hh-rlhf-harmless:rejected"
SAMPLES = [AIR, CHOSEN, REJECTED]
# notebooks 01 and 06 name the samples so; 02 and 03 use analysis.load.sample_labels
LABELS = {AIR: "AIR-Bench (Llama-3-8B)", CHOSEN: "HH-RLHF chosen", REJECTED: "HH-RLHF rejected"}
SAMPLE_LABELS = {
    AIR: "air-bench-2024",
    CHOSEN: "hh-rlhf-harmless (chosen)",
    REJECTED: "hh-rlhf-harmless (rejected)",
}
CATS = (*CATEGORIES, OVERALL)
# data that fills the panels: tall bars everywhere (where a legend used to sit), and
# data as the paper shows it
SCENARIOS = ("tall", "paper")


@pytest.fixture(autouse=True)
def _style():
    set_style()  # the producers' style: fonts and sizes as in the saved figures
    yield
    plt.close("all")


def assert_clean(fig) -> None:
    report = check_layout(fig)
    assert report.ok, "\n".join(report.describe())


def _ci(share: float, n: int = 80) -> tuple[float, float]:
    half = 1.96 * np.sqrt(max(share * (1 - share), 0.01) / n)
    return max(share - half, 0.0), min(share + half, 1.0)


# ------------------------------------------------------------------ the check itself


def test_check_finds_overlapping_tick_labels_and_annotations():
    fig, ax = plt.subplots(figsize=(2.0, 1.5))
    names = [f"a very long category name {i}" for i in range(6)]
    ax.bar(range(6), np.linspace(0.1, 0.6, 6))
    ax.set_xticks(range(6), names)  # level and far too long for their spacing
    ax.annotate("block_high", (0.5, 0.05), fontsize=6)
    ax.annotate("observe", (0.5, 0.05), fontsize=6)  # the same point: printed over
    report = check_layout(fig)
    pairs = {(a.get_text(), b.get_text()) for a, b in report.overlapping_texts}
    assert ("block_high", "observe") in pairs
    assert (names[0], names[1]) in pairs
    assert not report.ok
    assert any("overlaps" in line for line in report.describe())


def test_check_finds_a_legend_over_bars_and_points():
    fig, (left, right) = plt.subplots(1, 2, figsize=(6, 3))
    left.bar([0, 1, 2], [0.95, 0.9, 0.97], label="preserve")
    left.set_ylim(0, 1)
    left.legend(loc="upper right")
    right.plot([0, 0.5, 1], [0.5, 0.5, 0.5], "o-", label="block at p >= t")
    right.legend(loc="center")
    report = check_layout(fig)
    covered = {type(art).__name__ for _, art in report.covered_by_legend}
    assert {"Rectangle", "Line2D"} <= covered
    assert not report.ok
    assert any("covers" in line for line in report.describe())


def test_check_passes_a_clean_figure_and_skips_hidden_or_empty_texts():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar([0, 1], [0.9, 0.95], label="share")
    ax.bar([0, 1], [0.0, 0.0], bottom=[0.9, 0.95], label="nothing drawn")  # no area
    ax.set_ylim(0, 1)
    ax.set_xticks([0, 1], ["Hate", "Sexual"])
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.text(0.5, 0.5, "hidden", visible=False)
    ax.text(0.5, 0.5, "hidden too", visible=False)
    ax.text(0.2, 0.2, "")
    ax.text(0.2, 0.2, "   ")
    assert_clean(fig)


def test_label_placement_separates_labels_of_the_same_point():
    fig, ax = plt.subplots(figsize=(3.3, 3.1))
    ax.plot([0.0, 0.01, 0.05, 0.1], [0.0, 0.02, 0.2, 0.4], "o-", ms=3)
    ax.set_xlim(-0.005, 0.11)
    ax.set_ylim(-0.02, 1.02)
    items = [(name, (0.0, 0.0)) for name in ("observe", "block_high", "t=0.95", "t=0.95")]
    anns = place_point_labels(ax, items)
    assert [a.get_text() for a in anns] == [name for name, _ in items]
    assert [a.xy for a in anns] == [(0.0, 0.0)] * 4  # every label still points at its point
    assert_clean(fig)


# ------------------------------------------------------------------ notebook 01


def _shares(scenario: str) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for s in SAMPLES:
        for c in CATS:
            if scenario == "tall":
                split = (0.01, 0.98, 0.01) if c != OVERALL else (0.97, 0.02, 0.01)
            else:
                de = rng.uniform(0.02, 0.55)
                esc = rng.uniform(0.0, 0.06)
                split = (de, 1 - de - esc, esc)
            for t, share in zip(TRANSITIONS, split, strict=True):
                lo, hi = _ci(share)
                rows.append((s, c, "all", t, share, lo, hi))
    cols = ["sample", "category", "population", "transition", "share", "ci_lo", "ci_hi"]
    return pd.DataFrame(rows, columns=cols)


def _matrices() -> dict[tuple[str, str], pd.DataFrame]:
    rng = np.random.default_rng(2)
    out = {}
    for s in SAMPLES:
        for c in CATS:
            m = rng.integers(0, 500, size=(4, 4))
            m[0, 0] = 2207  # four digits, as HH-RLHF self-harm
            out[(s, c)] = pd.DataFrame(m, index=range(4), columns=range(4))
    return out


def _persistence(scenario: str) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for s in SAMPLES:
        for c in CATEGORIES:
            for metric in ("persistence", "drift_up"):
                share = 0.95 if scenario == "tall" else rng.uniform(0.0, 0.35)
                lo, hi = (0.0, 1.0) if s == AIR else _ci(share, 400)
                rows.append((s, c, metric, share, lo, hi))
    return pd.DataFrame(rows, columns=["sample", "category", "metric", "share", "ci_lo", "ci_hi"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_transition_shares_layout(scenario):  # Figure 1
    assert_clean(plots.plot_transition_shares(_shares(scenario), SAMPLES, LABELS))


def test_severity_matrices_layout():  # Figure 2
    assert_clean(plots.plot_severity_matrices(_matrices(), SAMPLES, LABELS))


def test_severity_matrix_grid_layout():  # Figure 3
    assert_clean(plots.plot_severity_matrix_grid(_matrices(), SAMPLES, LABELS))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_persistence_drift_layout(scenario):  # Figure 4
    assert_clean(plots.plot_persistence_drift(_persistence(scenario), SAMPLES, LABELS))


# ------------------------------------------------------------------ notebooks 02 and 03


def _asymmetry(scenario: str) -> dict[str, SimpleNamespace]:
    rng = np.random.default_rng(4)
    out = {}
    for s in SAMPLES:
        rates = []
        for metric in ("failure", "persistence"):
            for c in CATEGORIES:
                share = 0.96 if scenario == "tall" else rng.uniform(0.0, 0.35)
                rates.append((c, metric, share, *_ci(share, 30)))
        origin = [
            (unit, share, *_ci(share, 60))
            for unit, share in (("cells", 1.0 if scenario == "tall" else 0.78), ("records", 0.97))
        ]
        out[s] = SimpleNamespace(
            rates=pd.DataFrame(rates, columns=["category", "metric", "share", "ci_lo", "ci_hi"]),
            origin=pd.DataFrame(origin, columns=["unit", "share", "ci_lo", "ci_hi"]),
        )
    return out


def _relevance(scenario: str) -> dict[str, SimpleNamespace]:
    rng = np.random.default_rng(5)
    out = {}
    for s in SAMPLES:
        rows = []
        for level in range(4):
            n = 0 if (s == AIR and level >= 2) else int(rng.integers(8, 1700))
            if scenario == "tall":
                rel = (n // 10, n // 10, n - 2 * (n // 10))
            else:
                rel = tuple(int(v) for v in rng.multinomial(n, (0.2, 0.3, 0.5)))
            rows.append((level, *rel, n))
        out[s] = SimpleNamespace(
            by_severity=pd.DataFrame(rows, columns=["level", "rel1", "rel2", "rel3", "n"])
        )
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_category_rates_layout(scenario):  # Figure 5
    assert_clean(plots.plot_category_rates(_asymmetry(scenario), SAMPLE_LABELS))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_escalation_origin_layout(scenario):  # Figure 6
    assert_clean(plots.plot_escalation_origin(_asymmetry(scenario), SAMPLE_LABELS))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_relevance_by_severity_layout(scenario):  # Figure 7
    fig = plots.plot_relevance_by_severity(_relevance(scenario), SAMPLE_LABELS)
    assert_clean(fig)


# ------------------------------------------------------------------ notebook 06

POLICIES = ["observe", "block_high", "redact_medium_block_high", "block_medium"]
THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
# (benign changed, harmful removed) of the named policies, as in the paper's effects
# table: observe and block_high nearly coincide at the origin, redact_medium_block_high
# and block_medium share their x
NAMED = {
    AIR: [(0.0, 0.0), (0.014, 0.0), (0.236, 0.5), (0.236, 1.0)],
    CHOSEN: [(0.0, 0.0), (0.001, 0.009), (0.104, 0.342), (0.104, 0.432)],
    REJECTED: [(0.0, 0.0), (0.002, 0.058), (0.149, 0.540), (0.149, 0.628)],
}
# the sweep's ends: (benign changed, harmful removed) at t = 0.3 per family
ENDS = {
    AIR: {"block": (0.097, 0.5), "redact": (0.208, 0.5)},
    CHOSEN: {"block": (0.093, 0.414), "redact": (0.093, 0.351)},
    REJECTED: {"block": (0.124, 0.620), "redact": (0.124, 0.489)},
}


def _frontier_inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for s in SAMPLES:
        for family, (x_end, y_end) in ENDS[s].items():
            for t in THRESHOLDS:
                # from the near-origin end (t=0.95) to the t=0.3 end, monotone
                w = ((0.95 - t) / 0.65) ** 1.5
                rows.append((family, s, t, x_end * w, y_end * min(1.0, 1.3 * w)))
    frontier = pd.DataFrame(
        rows,
        columns=["family", "sample", "threshold", "benign_changed_share", "harmful_removed_share"],
    )
    effects = pd.DataFrame(
        [
            (s, p, cat, x, y)
            for s in SAMPLES
            for p, (x, y) in zip(POLICIES, NAMED[s], strict=True)
            for cat in (OVERALL, "hate")
        ],
        columns=["sample", "policy", "category", "benign_changed_share", "harmful_removed_share"],
    )
    return frontier, effects


def test_frontier_layout():  # Figure 8
    frontier, effects = _frontier_inputs()
    fig = plot_frontier(frontier, effects, SAMPLES, LABELS, POLICIES)
    assert_clean(fig)
    for ax, sample in zip(fig.axes, SAMPLES, strict=True):
        texts = sorted(t.get_text() for t in ax.texts)
        assert texts == sorted([*POLICIES, "t=0.3", "t=0.3", "t=0.95", "t=0.95"]), sample
        anchors = {t.get_text(): t.xy for t in ax.texts if not t.get_text().startswith("t=")}
        assert anchors == dict(zip(POLICIES, NAMED[sample], strict=True))


def test_frontier_saves_byte_identically(tmp_path):
    frontier, effects = _frontier_inputs()
    make = lambda: plot_frontier(frontier, effects, SAMPLES, LABELS, POLICIES)  # noqa: E731
    first = save_figure(make(), tmp_path / "a" / "frontier")
    second = save_figure(make(), tmp_path / "b" / "frontier")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


# ------------------------------------------------------------------ notebooks 05 and 07

# notebook 05's names for the datasets
NAMES = {
    "simplesafetytests": "SimpleSafetyTests",
    "harmbench": "HarmBench",
    "air-bench-2024": "AIR-Bench (80)",
    "openai-moderation": "OpenAI mod. (benign)",
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_steering_layout(scenario):  # Figure 9
    rng = np.random.default_rng(6)
    rows = [
        (d, p, 0.97 if scenario == "tall" else rng.uniform(0.1, 0.9))
        for d in sorted(NAMES)
        for p in ("fitted", "lenient", "strict")
    ]
    rates = pd.DataFrame(rows, columns=["dataset", "profile", "rate"])
    assert_clean(plot_steering(rates, NAMES))


CONDITIONS = ["smollm2-plain", "smollm2-safety"]


def _study_frame(extra: dict[str, list[str]], scenario: str) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    keys = list(extra)
    rows = []
    for combo in pd.MultiIndex.from_product(list(extra.values())):
        share = 0.98 if scenario == "tall" else rng.uniform(0.0, 0.1)
        rows.append((*combo, share, *_ci(share, 150)))
    return pd.DataFrame(rows, columns=[*keys, "share", "ci_lo", "ci_hi"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_refusal_layout(scenario):  # Figure 10
    refusal = _study_frame({"target": CONDITIONS, "kind": ["harmful", "benign"]}, scenario)
    assert_clean(model_study_plots.plot_refusal(refusal, CONDITIONS))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_escalation_layout(scenario):  # Figure 11
    transitions = _study_frame(
        {
            "target": CONDITIONS,
            "kind": ["harmful", "benign"],
            "category": list(CATS),
            "transition": ["escalate"],
        },
        scenario,
    )
    assert_clean(model_study_plots.plot_escalation(transitions, CONDITIONS))
