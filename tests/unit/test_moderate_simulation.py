"""Policy simulation on records whose outcomes can be worked out by hand.

The LaTeX tables made from the same simulation are tested in ``test_report_moderation_tables``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from harmtrace.moderate import simulation
from harmtrace.moderate.policies import get_policy
from harmtrace.moderate.response_analysis import analyse_responses
from harmtrace.moderate.simulation import (
    category_needs,
    check_traces_agree,
    long_outcomes,
    policy_cost,
    policy_effects,
    run_simulation,
    simulate,
    threshold_policy,
    transitions_before_after,
)
from harmtrace.moderate.simulation_plots import (
    plot_category_needs,
    plot_frontier,
    plot_policy_transitions,
)
from harmtrace.moderate.simulation_report import frontier_best, paper_numbers
from harmtrace.report.macros import collect_macros, write_numbers
from tests.moderation_fakes import KeywordScorer, make_judgments, make_records

ROWS = [
    ("Describe the battle", "The battle was a massacre."),  # 0 -> violence 3: harmful
    ("Tell me a story", "He would stab. A story ends."),  # 0 -> violence 2: harmful
    ("Say something", "A rude word."),  # 0 -> hate 1: escalation, not harmful
    ("Was there a massacre?", "I cannot discuss the massacre."),  # 3 -> 3: preserve
    ("How is the weather?", "The weather is fine."),  # benign
    ("Anything", None),  # no response
]
POLICIES = ["observe", "block_high", "redact_medium_block_high"]


def toy_analysis():
    """The hand-countable responses of ROWS, analysed with the keyword scorer."""
    scorer = KeywordScorer()
    records = make_records(ROWS)
    return analyse_responses(records, make_judgments(records, scorer), scorer), scorer


def toy_simulation(analysis, scorer):
    """POLICIES simulated on the toy analysis (also the input of the table tests)."""
    return run_simulation(
        analysis,
        [get_policy(p) for p in POLICIES],
        scorer,
        thresholds=[0.01, 0.5, 0.99],
        target=0.8,
    )


@pytest.fixture(scope="module")
def setup():
    return toy_analysis()


@pytest.fixture(scope="module")
def res(setup):
    return toy_simulation(*setup)


def overall(effects, policy):
    d = effects.loc[(effects["category"] == "overall") & (effects["policy"] == policy)]
    assert len(d) == 1
    return d.iloc[0]


def test_outcomes_have_one_row_per_response_and_policy(res):
    assert len(res.outcomes) == 5 * len(POLICIES)
    blocked = res.outcomes.loc[res.outcomes["policy"] == "block_high"]
    assert blocked["action"].tolist() == ["block", "annotate", "annotate", "block", "pass"]
    assert blocked["after_sev_violence"].tolist() == [0, 2, 0, 0, 0]


def test_escalations_removed_match_hand_counts_and_statsmodels(res):
    obs = overall(res.effects, "observe")
    assert (obs["escalations_before"], obs["escalations_after"], obs["removed"]) == (3, 3, 0)
    bh = overall(res.effects, "block_high")
    assert (bh["escalations_before"], bh["removed"]) == (3, 1)
    lo, hi = proportion_confint(1, 3, alpha=0.05, method="wilson")
    assert bh["removed_share"] == pytest.approx(1 / 3)
    assert (bh["removed_lo"], bh["removed_hi"]) == pytest.approx((lo, hi))
    assert (bh["harmful_escalations"], bh["harmful_removed"]) == (2, 1)
    rm = overall(res.effects, "redact_medium_block_high")
    assert (rm["harmful_escalations"], rm["harmful_removed"]) == (2, 2)
    assert rm["removed"] == 2  # the Low escalation stays


def test_benign_and_relevance_costs(res):
    bh = overall(res.effects, "block_high")
    assert (bh["benign"], bh["benign_changed"]) == (1, 0)
    # fully relevant before: rows 1, 2, 5 (share a word of 4+ letters with their prompt);
    # row 3 shares none and row 4 refuses. Blocking row 1 loses its relevance.
    assert bh["relevant"] == 3
    assert bh["relevance_lost"] == 1
    cost = policy_cost(res.effects)
    assert cost.loc["observe", "relevance_lost"] == 0
    assert cost.loc["block_high", "relevance_lost"] == pytest.approx(1 / 3)


def test_per_category_rows_and_transitions_before_after(res):
    v = res.effects.loc[
        (res.effects["category"] == "violence") & (res.effects["policy"] == "observe")
    ]
    assert int(v["escalations_before"].iloc[0]) == 2
    t = res.transitions
    obs = t.loc[(t["policy"] == "observe") & (t["category"] == "overall")]
    before = obs.loc[obs["stage"] == "before", "share"].to_numpy()
    after = obs.loc[obs["stage"] == "after", "share"].to_numpy()
    np.testing.assert_allclose(before, after)
    bh = t.loc[
        (t["policy"] == "block_high") & (t["category"] == "overall") & (t["stage"] == "after")
    ]
    assert bh.set_index("transition").at["de-escalate", "count"] == 1  # row 4 blocked


def test_category_needs_picks_the_least_costly_policy_reaching_the_target(res):
    needs = res.needs.set_index("category")
    assert needs.at["violence", "harmful_escalations"] == 2
    assert needs.at["violence", "removed_block_high"] == pytest.approx(0.5)
    assert needs.at["violence", "needed_policy"] == "redact_medium_block_high"
    assert pd.isna(needs.at["hate", "needed_policy"])  # no harmful hate escalation
    lower = category_needs(res.effects, target=0.5).set_index("category")
    assert lower.at["violence", "needed_policy"] == "block_high"


def test_frontier_spans_from_everything_to_nothing(res):
    f = res.frontier.set_index(["family", "threshold"])
    assert f.loc[("block", 0.01), "benign_changed_share"] == 1.0
    assert f.loc[("block", 0.01), "harmful_removed_share"] == 1.0
    assert f.loc[("block", 0.99), "harmful_removed_share"] == 0.0
    assert f.loc[("redact", 0.5), "harmful_removed_share"] == 1.0
    best = frontier_best(res.frontier, 0.8).set_index("family")
    assert best.at["block", "threshold"] == 0.5  # fewest benign changes reaching 80%


def test_threshold_policy_is_a_valid_probability_policy():
    p = threshold_policy("redact", 0.4)
    assert p.basis == "probability" and p.category_thresholds("hate") == (None, None, 0.4)


def test_simulate_keeps_policy_order(setup):
    analysis, scorer = setup
    out = simulate(analysis, [get_policy("block_high"), get_policy("observe")], scorer)
    assert list(out["policy"].cat.categories) == ["block_high", "observe"]
    long = long_outcomes(out)
    assert len(long) == len(out) * 5
    eff = policy_effects(long, by=("policy",))
    assert set(eff["policy"]) == {"block_high", "observe"}
    assert len(transitions_before_after(long, by=("policy",))) == 2 * 2 * 3


def test_numbers_and_macros(res, tmp_path):
    nums = paper_numbers(res, POLICIES)
    assert nums["toy block_high removed"].value == pytest.approx(1 / 3)
    assert nums["toy violence needs"].value == "redact_medium_block_high"
    write_numbers(nums, tmp_path / "06.json", "moderation")
    tex = collect_macros([tmp_path / "06.json"])
    assert "\\HtModerationToyBlockHighRemoved}" in tex
    assert "redact\\_medium\\_block\\_high" in tex


def test_plots_draw_one_panel_per_sample(res):
    samples = ["toy"]
    assert len(plot_policy_transitions(res.transitions, samples, {}, POLICIES).axes) == 1
    fig = plot_frontier(res.frontier, res.effects, samples, {}, POLICIES)
    assert len(fig.axes[0].lines) == 2  # block and redact families
    points = np.vstack([c.get_offsets() for c in fig.axes[0].collections])
    bh = overall(res.effects, "block_high")
    assert [bh["benign_changed_share"], bh["harmful_removed_share"]] in points.tolist()
    assert len(plot_category_needs(res.needs, samples, {}, POLICIES).axes) == 1


def test_traces_agree_with_the_simulation(setup, res, tmp_path):
    from harmtrace.errors import HarmtraceError
    from harmtrace.moderate.clock import fixed_clock
    from harmtrace.moderate.flow import moderate_records
    from harmtrace.moderate.trace import write_traces

    scorer = KeywordScorer()
    records = make_records(ROWS)
    judgments = make_judgments(records, scorer)
    paths = []
    for name in POLICIES:
        traces = moderate_records(
            records, judgments, scorer, get_policy(name), clock=fixed_clock(0)
        )
        path = tmp_path / name / "toy.jsonl"
        write_traces(traces, path)
        paths.append(path)
    policies = [get_policy(p) for p in POLICIES]
    table = check_traces_agree(res.outcomes, policies, paths)
    assert table["agree"].tolist() == [5, 5, 5]
    tampered = res.outcomes.copy()
    tampered.loc[tampered["policy"] == "block_high", "action"] = "pass"
    with pytest.raises(HarmtraceError, match="disagree"):
        check_traces_agree(tampered, policies, paths)


def test_the_parts_stay_importable_from_the_simulation():
    """Notebook 06 and the tables import every part from ``simulation``."""
    assert all(hasattr(simulation, name) for name in simulation.__all__)
