"""Transition report: judged records -> shares, origins, paper numbers and figures.

The judged frame is built by hand (an AIR-Bench-like dataset and an hh-rlhf-like dataset
with chosen/rejected sides), and every expected value is counted independently from the
same hand-written specification, never copied from the code under test. The LaTeX tables
made from the same results are tested in ``test_report_transition_tables``.
"""

from __future__ import annotations

import re

import matplotlib

from tests.rendering import rendered

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from harmtrace.analysis import plots
from harmtrace.analysis.transition_report import (
    analyse,
    merge_judged,
    paper_numbers,
    sample_label,
)
from harmtrace.report.figures import save_figure
from harmtrace.report.macros import macro_name
from harmtrace.taxonomy import CATEGORIES

AIR = "air-bench-2024"
HH = "hh-rlhf-harmless"
CHOSEN, REJECTED = f"{HH}:chosen", f"{HH}:rejected"
SAMPLES = [AIR, CHOSEN, REJECTED]
LABELS = {AIR: "AIR-Bench", CHOSEN: "HH chosen", REJECTED: "HH rejected"}

# AIR-like records: (record_id, {category: (prompt severity, response severity)}, relevance).
# Categories not named are (0, 0). "a7" has no response and must drop out of every share.
AIR_SPEC = [
    ("a1", {"hate": (2, 0)}, 3),
    ("a2", {"hate": (1, 1), "sexual": (3, 3)}, 2),
    ("a3", {"violence": (0, 2)}, 3),
    ("a4", {"self_harm": (2, 1), "sexual": (1, 2)}, 1),
    ("a5", {}, 3),
    ("a6", {"violence": (3, 0), "hate": (0, 1)}, 2),
    ("a7", {"hate": (2, None)}, None),
]
# hh-like pairs: (pair id, prompt {cat: sev}, chosen response {cat: sev}, rejected {cat: sev}).
HH_SPEC = [
    (1, {"violence": 2}, {"violence": 0}, {"violence": 2}),
    (2, {}, {}, {"hate": 1}),
    (3, {"sexual": 1}, {"sexual": 1}, {"sexual": 3}),
    (4, {"hate": 2}, {"hate": 1}, {"hate": 0}),
]


def _spec_rows():
    """(record_id, dataset, side, pair, prompt {cat: sev}, response {cat: sev} | None, rel)."""
    rows = []
    for rid, cats, rel in AIR_SPEC:
        prompt = {c: cats.get(c, (0, 0))[0] for c in CATEGORIES}
        no_response = any(r is None for _, r in cats.values())
        response = None if no_response else {c: cats.get(c, (0, 0))[1] for c in CATEGORIES}
        rows.append((rid, AIR, None, None, prompt, response, rel))
    for pair, prompt, chosen, rejected in HH_SPEC:
        p = {c: prompt.get(c, 0) for c in CATEGORIES}
        for side, resp in (("chosen", chosen), ("rejected", rejected)):
            r = {c: resp.get(c, 0) for c in CATEGORIES}
            rows.append((f"h{pair}{side[0]}", HH, side, pair, p, r, 3))
    return rows


def make_records_and_judgments() -> tuple[pd.DataFrame, pd.DataFrame]:
    recs, judg = [], []
    for rid, ds, side, pair, prompt, response, rel in _spec_rows():
        recs.append({"record_id": rid, "dataset": ds, "hh_side": side, "hh_pair_id": pair})
        row: dict[str, object] = {"record_id": rid, "relevance": rel}
        for c in CATEGORIES:
            row[f"prompt_severity_{c}"] = prompt[c]
            row[f"response_severity_{c}"] = None if response is None else response[c]
        judg.append(row)
    records = pd.DataFrame(recs).astype(
        {"record_id": "string", "dataset": "string", "hh_side": "string", "hh_pair_id": "Int64"}
    )
    judgments = pd.DataFrame(judg)
    for col in judgments.columns.drop("record_id"):
        judgments[col] = judgments[col].astype("Int8")
    judgments["record_id"] = judgments["record_id"].astype("string")
    return records, judgments


def expected_pairs(sample: str, category: str) -> list[tuple[int, int]]:
    """(prompt, response) severity pairs of one sample and category, straight from the spec."""
    out = []
    for _rid, ds, side, _pair, prompt, response, _rel in _spec_rows():
        if sample_of(ds, side) != sample or response is None:
            continue
        if category == "overall":
            out.append((max(prompt.values()), max(response.values())))
        else:
            out.append((prompt[category], response[category]))
    return out


def sample_of(ds: str, side: str | None) -> str:
    return ds if side is None else f"{ds}:{side}"


def transition_counts(pairs: list[tuple[int, int]]) -> dict[str, int]:
    counts = {"de-escalate": 0, "preserve": 0, "escalate": 0}
    for p, r in pairs:
        counts["de-escalate" if r < p else "preserve" if r == p else "escalate"] += 1
    return counts


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}\\%"


def wilson_cell(k: int, n: int) -> str:
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return f"{pct(k / n)} [{pct(lo)}, {pct(hi)}]"


@pytest.fixture(scope="module")
def judged() -> pd.DataFrame:
    return merge_judged(*make_records_and_judgments())


@pytest.fixture(scope="module")
def res(judged):
    return analyse(judged, alpha=0.05, seed=0)


# ------------------------------------------------------------------ merge_judged


def test_merge_judged_labels_samples_by_dataset_and_side(judged):
    by_id = dict(zip(judged["record_id"], judged["sample"], strict=True))
    assert by_id["a1"] == AIR
    assert by_id["h1c"] == CHOSEN and by_id["h3r"] == REJECTED
    assert set(judged["sample"]) == set(SAMPLES)
    assert len(judged) == len(AIR_SPEC) + 2 * len(HH_SPEC)
    assert sample_label("x", pd.NA) == "x" and sample_label("x", "chosen") == "x:chosen"


def test_merge_judged_adds_missing_hh_columns():
    records, judgments = make_records_and_judgments()
    air_only = records.loc[records["dataset"] == AIR].drop(columns=["hh_side", "hh_pair_id"])
    df = merge_judged(air_only, judgments)
    assert len(df) == len(AIR_SPEC)
    assert df["hh_side"].isna().all() and df["hh_pair_id"].isna().all()
    assert (df["sample"] == AIR).all()


def test_merge_judged_missing_judgment_names_the_count():
    records, judgments = make_records_and_judgments()
    short = judgments.loc[~judgments["record_id"].isin(["a2", "h4r"])]
    with pytest.raises(ValueError, match=r"^2 record\(s\) have no judgment") as err:
        merge_judged(records, short)
    assert "a2" in str(err.value) and "h4r" in str(err.value)


def test_merge_judged_refuses_duplicate_judgments():
    records, judgments = make_records_and_judgments()
    doubled = pd.concat([judgments, judgments.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match="duplicate record_id"):
        merge_judged(records, doubled)


# ------------------------------------------------------------------ analyse


def test_shares_match_hand_counts(res):
    shares = res.shares
    for sample in SAMPLES:
        for cat in (*CATEGORIES, "overall"):
            pairs = expected_pairs(sample, cat)
            counts = transition_counts(pairs)
            g = shares.loc[(shares["sample"] == sample) & (shares["category"] == cat)]
            g = g.set_index("transition")
            assert (g["n"] == len(pairs)).all(), (sample, cat)
            for t, k in counts.items():
                assert g.at[t, "count"] == k, (sample, cat, t)
                assert g.at[t, "share"] == pytest.approx(k / len(pairs))
                lo, hi = proportion_confint(k, len(pairs), alpha=0.05, method="wilson")
                assert g.at[t, "ci_lo"] == pytest.approx(lo, abs=1e-9)
                assert g.at[t, "ci_hi"] == pytest.approx(hi, abs=1e-9)


def test_literal_hand_counts(res):
    # AIR overall (a7 has no response): a1 2->0 de, a2 3->3 pres, a3 0->2 esc,
    # a4 2->2 pres, a5 0->0 pres, a6 3->1 de.
    g = res.shares.loc[(res.shares["sample"] == AIR) & (res.shares["category"] == "overall")]
    assert g.set_index("transition")["count"].to_dict() == {
        "de-escalate": 2,
        "preserve": 3,
        "escalate": 1,
    }
    # prompt-positive overall: a1 de, a2 pres, a4 pres, a6 de -> 2 of 4 de-escalate
    p = res.shares_positive
    g = p.loc[(p["sample"] == AIR) & (p["category"] == "overall")].set_index("transition")
    assert g.at["de-escalate", "count"] == 2 and g.at["de-escalate", "n"] == 4
    assert (p["population"] == "prompt_positive").all()


def test_escalation_origin_pooled(res):
    o = res.origin.set_index(["sample", "category"])
    # AIR escalations over the real categories: a3 violence 0->2, a6 hate 0->1 (from zero),
    # a4 sexual 1->2 (not from zero)
    assert o.loc[(AIR, "pooled"), "k"] == 2 and o.loc[(AIR, "pooled"), "n"] == 3
    assert o.loc[(AIR, "pooled"), "share"] == pytest.approx(2 / 3)
    lo, hi = proportion_confint(2, 3, alpha=0.05, method="wilson")
    assert o.loc[(AIR, "pooled"), "ci_lo"] == pytest.approx(lo)
    assert o.loc[(AIR, "pooled"), "ci_hi"] == pytest.approx(hi)
    # rejected side: pair 2 hate 0->1 (from zero), pair 3 sexual 1->3 (not)
    assert (o.loc[(REJECTED, "pooled"), "k"], o.loc[(REJECTED, "pooled"), "n"]) == (1, 2)
    # chosen side never escalates
    assert o.loc[(CHOSEN, "pooled"), "n"] == 0
    # independent count over every sample
    for sample in SAMPLES:
        esc = [
            (p, r)
            for cat in CATEGORIES
            for p, r in expected_pairs(sample, cat)
            if r > p  # escalation
        ]
        assert o.loc[(sample, "pooled"), "n"] == len(esc)
        assert o.loc[(sample, "pooled"), "k"] == sum(p == 0 for p, _ in esc)


def test_paired_comparison_and_matrices(res):
    sev = res.paired.severity.set_index("category")
    # overall chosen - rejected per pair: 0-2, 0-1, 1-3, 1-0 -> 3 lower, 1 higher
    assert sev.loc["overall", "n_pairs"] == 4
    assert sev.loc["overall", "n_chosen_lower"] == 3
    assert sev.loc["overall", "n_chosen_higher"] == 1
    for sample in SAMPLES:
        for cat in (*CATEGORIES, "overall"):
            m = res.matrices[(sample, cat)]
            assert m.shape == (4, 4)
            for (p, r), n in pd.Series(expected_pairs(sample, cat)).value_counts().items():
                assert m.loc[p, r] == n
            assert m.to_numpy().sum() == len(expected_pairs(sample, cat))


def test_analyse_without_hh_has_no_paired(judged):
    air = judged.loc[judged["dataset"] == AIR]
    res = analyse(air)
    assert res.paired is None
    assert set(res.shares["sample"]) == {AIR}


# ------------------------------------------------------------------ numbers


def test_paper_numbers_values(res):
    nums = rendered(paper_numbers(res, SAMPLES))
    assert nums["ci level"] == "95\\%"
    assert nums[f"{AIR} all overall de-escalate"] == pct(2 / 6)
    assert nums[f"{AIR} all overall de-escalate count"] == "2"
    assert nums[f"{AIR} all overall n"] == "6"
    lo, hi = proportion_confint(2, 4, alpha=0.05, method="wilson")
    assert nums[f"{AIR} pos overall de-escalate"] == "50.0\\%"
    assert nums[f"{AIR} pos overall de-escalate ci"] == f"[{pct(lo)}, {pct(hi)}]"
    assert nums[f"{AIR} escalations from zero"] == pct(2 / 3)
    assert nums[f"{AIR} escalations from zero k"] == "2"
    assert nums[f"{AIR} escalations n"] == "3"
    assert nums[f"{CHOSEN} escalations from zero"] == "n/a"  # no escalation at all
    # failures to de-escalate (prompt > 0): sexual a2 3->3, a4 1->2 -> 2 of 2
    assert nums[f"{AIR} fail sexual"] == "100.0\\%" and nums[f"{AIR} fail sexual n"] == "2"
    assert nums["hh pairs"] == "4"
    assert nums["hh chosen lower"] == pct(3 / 4) and nums["hh chosen higher"] == pct(1 / 4)
    # prompt-positive pairs 1, 3, 4: chosen de-escalates in 1 and 4, rejected only in 4
    assert nums["hh deesc pairs"] == "3"
    assert nums["hh deesc chosen"] == pct(2 / 3)
    assert nums["hh deesc rejected"] == pct(1 / 3)
    assert nums["hh deesc diff"] == f"{100 / 3:.1f}\\,pp"  # a difference: percentage points
    # AIR escalations: a3 violence 0->2, a4 sexual 1->2, a6 hate 0->1 are three cells, but
    # a record escalates by its overall severity, as in every table: only a3 does (a4's and
    # a6's other categories keep the overall level), and its prompt is 0 everywhere
    assert nums[f"{AIR} escalations from zero records"] == pct(1)
    assert nums[f"{AIR} escalations from zero records n"] == "1"
    # prompts at 0 in every category among records with a response: a3 and a5
    assert nums[f"{AIR} prompts graded zero"] == "2" and nums[f"{AIR} prompts"] == "6"
    assert nums["hh pairs used"] == "4" and nums["hh context differs"] == "0"
    # chosen - rejected per pair: 1 violence -2, 2 hate -1, 3 sexual -2, 4 hate +1
    assert nums["hh untied"] == "4"
    assert nums["confirmatory tests"] == "5"  # two paired tests + one asymmetry per sample
    assert all(isinstance(v, str) for v in nums.values())


def test_paper_numbers_ci_level_follows_alpha(judged):
    res90 = analyse(judged.loc[judged["dataset"] == AIR], alpha=0.10)
    nums = rendered(paper_numbers(res90, [AIR]))
    assert nums["ci level"] == "90\\%"
    lo, hi = proportion_confint(2, 4, alpha=0.10, method="wilson")
    assert nums[f"{AIR} pos overall de-escalate ci"] == f"[{pct(lo)}, {pct(hi)}]"
    assert not any(k.startswith("hh ") for k in nums)


def test_paper_numbers_are_macro_safe(res):
    nums = rendered(paper_numbers(res, SAMPLES))
    names = [macro_name("transitions", k) for k in nums]
    assert len(set(names)) == len(names), "two keys map to one macro name"
    assert all(re.fullmatch(r"[A-Za-z]+", n) for n in names)


def test_paper_numbers_only_for_requested_samples(res):
    nums = rendered(paper_numbers(res, [AIR]))
    assert not any(k.startswith(HH) for k in nums)
    assert any(k.startswith(AIR) for k in nums)


# ------------------------------------------------------------------ figures


def _figures(res):
    return {
        "shares": lambda: plots.plot_transition_shares(res.shares, SAMPLES, LABELS),
        "matrices": lambda: plots.plot_severity_matrices(res.matrices, SAMPLES, LABELS),
        "persistence": lambda: plots.plot_persistence_drift(res.persistence, SAMPLES, LABELS),
    }


@pytest.mark.parametrize("name", ["shares", "matrices", "persistence"])
def test_figures_save_byte_identically(res, tmp_path, name):
    make = _figures(res)[name]
    first = save_figure(make(), tmp_path / "a" / name)
    second = save_figure(make(), tmp_path / "b" / name)
    assert [p.suffix for p in first] == [".pdf", ".png"]
    for a, b in zip(first, second, strict=True):
        assert a.stat().st_size > 0
        assert a.read_bytes() == b.read_bytes(), a.name


def test_transition_shares_figure_draws_the_shares(res):
    fig = plots.plot_transition_shares(res.shares, SAMPLES, LABELS)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == [LABELS[s] for s in SAMPLES]
    for ax, sample in zip(axes, SAMPLES, strict=True):
        heights = [p.get_height() for p in ax.patches]
        cats = (*CATEGORIES, "overall")
        for j, t in enumerate(("de-escalate", "preserve", "escalate")):
            want = []
            for c in cats:
                pairs = expected_pairs(sample, c)
                want.append(transition_counts(pairs)[t] / len(pairs))
            assert heights[5 * j : 5 * j + 5] == pytest.approx(want)
    matplotlib.pyplot.close(fig)


def test_shares_of_zero_draw_although_their_wilson_bound_misses_by_rounding(res):
    """statsmodels puts the lower Wilson bound of 0 of 7 at 2.8e-17, above the share;
    matplotlib refuses the negative error bar that makes (notebook 01 crashed on a file
    with a share of 0 this way). The same holds for the persistence figure's points."""
    lo, _ = proportion_confint(0, 7, method="wilson")
    assert lo > 0  # the rounding this test is about
    shares = res.shares.copy()
    persistence = res.persistence.copy()
    for frame in (shares, persistence):
        frame["share"] = 0.0
        frame["ci_lo"] = lo
        frame["ci_hi"] = 0.015
    fig = plots.plot_transition_shares(shares, SAMPLES, LABELS)
    assert all(p.get_height() == 0 for ax in fig.axes for p in ax.patches)
    matplotlib.pyplot.close(fig)
    matplotlib.pyplot.close(plots.plot_persistence_drift(persistence, SAMPLES, LABELS))


def test_severity_matrix_figure_annotates_counts(res):
    fig = plots.plot_severity_matrices(res.matrices, SAMPLES, LABELS)
    for ax, sample in zip(fig.axes, SAMPLES, strict=True):
        counts = [[0] * 4 for _ in range(4)]
        for p, r in expected_pairs(sample, "overall"):
            counts[p][r] += 1
        assert [int(t.get_text()) for t in ax.texts] == [n for row in counts for n in row]
        assert ax.get_title() == LABELS[sample]
    matplotlib.pyplot.close(fig)


def test_persistence_figure_has_both_metrics(res):
    fig = plots.plot_persistence_drift(res.persistence, SAMPLES, LABELS)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title().startswith("persistence")
    assert fig.axes[1].get_title().startswith("drift up")
    (figure_legend,) = fig.legends  # one legend above both panels (issue 19)
    legend = [t.get_text() for t in figure_legend.get_texts()]
    assert legend == [LABELS[s] for s in SAMPLES]
    matplotlib.pyplot.close(fig)


def test_the_confirmatory_asymmetry_test_has_records_as_its_unit(judged):
    """The family's asymmetry p-values are the record-clustered Wald tests, not the
    chi-square over cells, and Holm runs over the whole family."""
    from statsmodels.stats.multitest import multipletests

    from harmtrace.analysis.transition_report import confirmatory_tests

    res = analyse(judged)
    conf = confirmatory_tests(res).set_index("test")
    assert len(conf) == 2 + len(res.clustered)
    for sample, fit in res.clustered.items():
        p = conf.loc[f"asymmetry {sample}", "pvalue"]
        assert (np.isnan(p) and not fit.estimable) or p == fit.factor_p
        assert fit.n_clusters <= judged.loc[judged["sample"] == sample, "record_id"].nunique()
    ok = conf["pvalue"].notna()
    expected = multipletests(conf.loc[ok, "pvalue"], method="holm")[1]
    np.testing.assert_allclose(conf.loc[ok, "p_holm"], expected)


def test_the_per_record_origin_counts_the_escalations_the_tables_count(judged):
    """The figure set beside the study's "escalations from benign prompts" uses the tables'
    definition of a record's escalation (its overall severity), so its denominator is the
    overall escalate count of the shares table, sample by sample."""
    res = analyse(judged)
    samples = sorted(judged["sample"].unique())
    nums = rendered(paper_numbers(res, samples))
    for s in samples:
        assert (
            nums[f"{s} escalations from zero records n"] == nums[f"{s} all overall escalate count"]
        )


def test_the_pooled_origin_share_has_one_interval_the_cluster_bootstrap(judged):
    """The share of escalation cells that start at 0 pools a record's cells: notebook 01
    gives it the cluster-bootstrap interval that notebook 02 gives it, not a Wilson one."""
    res = analyse(judged.loc[judged["dataset"] == AIR], n_resamples=200)
    nums = paper_numbers(res, [AIR])
    org = res.origin_records
    cells = org.loc[(org["sample"] == AIR) & (org["unit"] == "cells")].iloc[0]
    assert nums[f"{AIR} escalations from zero ci"].value == pytest.approx(
        (cells["ci_lo"], cells["ci_hi"])
    )
    lo, hi = proportion_confint(int(cells["k"]), int(cells["n"]), alpha=0.05, method="wilson")
    assert nums[f"{AIR} escalations from zero ci"].value != pytest.approx((lo, hi))
