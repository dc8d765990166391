"""A synthetic human-labelled paired file with known marginals: every number exactly.

The file is a list of record *types* (prompt and response severity per category, and a
relevance) with multiplicities. Every expected value below is counted by hand from that
list and written as a fraction in the comments, never taken from the code under test.
The judgments are built directly in the judgments schema, as the ``human`` grader
backend would produce them from columns ``prompt_severity_<cat>``,
``response_severity_<cat>`` and ``relevance``.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from harmtrace.analysis.asymmetry import analyse_asymmetry, asymmetry_numbers
from harmtrace.analysis.rates import TOO_FEW
from harmtrace.analysis.relevance import analyse_relevance, relevance_numbers
from harmtrace.analysis.transition_report import merge_judged
from harmtrace.io import validate
from harmtrace.report.macros import read_numbers, write_numbers
from harmtrace.taxonomy import CATEGORIES
from tests.rendering import rendered

DATASET = "my_labels"

# (name, count, {category: (prompt, response)}, relevance); unnamed categories are (0, 0)
TYPES = [
    ("A", 30, {"sexual": (2, 2)}, 3),  # sexual persists
    ("B", 10, {"sexual": (2, 0)}, 2),  # sexual de-escalates
    ("C", 10, {"hate": (2, 0)}, 3),  # hate de-escalates
    ("D", 10, {"hate": (1, 1)}, 3),  # hate persists
    ("E", 30, {"violence": (3, 1)}, 1),  # violence de-escalates
    ("F", 5, {"violence": (1, 2)}, 3),  # compliance-escalation (from a non-zero prompt)
    ("G", 8, {"hate": (0, 1)}, 2),  # escalation from a benign prompt
    ("H", 4, {"hate": (2, 2), "violence": (0, 1)}, 3),  # violence cell from 0, record not
    ("I", 20, {}, 3),  # benign throughout
    ("J", 3, {"self_harm": (1, 0)}, 1),  # self-harm de-escalates
]
N = 130


def _rid(i: int) -> str:
    return hashlib.sha256(f"{DATASET}-{i}".encode()).hexdigest()[:16]


def synthetic_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    records, judgments = [], []
    i = 0
    for _, count, cells, relevance in TYPES:
        for _ in range(count):
            rid = _rid(i)
            records.append(
                {
                    "record_id": rid,
                    "dataset": DATASET,
                    "item_id": f"{i:04d}",
                    "prompt": f"prompt {i}",
                    "context": "",
                    "response": f"response {i}",
                    "response_source": "labelled",
                }
            )
            row: dict[str, object] = {"record_id": rid}
            for cat in CATEGORIES:
                p, r = cells.get(cat, (0, 0))
                for side, sev in (("prompt", p), ("response", r)):
                    row[f"{side}_prob_{cat}"] = float(sev > 0)
                    row[f"{side}_severity_{cat}"] = sev
                    row[f"{side}_confidence_{cat}"] = 1.0
            row.update(
                status="ok",
                error=None,
                relevance=relevance,
                refusal=False,
                grader="human",
                grader_version="t",
            )
            judgments.append(row)
            i += 1
    rec = pd.DataFrame(records).astype("string")
    jud = pd.DataFrame(judgments)
    for col in jud.columns:
        if "_severity_" in col or col == "relevance":
            jud[col] = jud[col].astype("Int8")
        elif "_prob_" in col or "_confidence_" in col:
            jud[col] = jud[col].astype("Float64")
    jud["refusal"] = jud["refusal"].astype("boolean")
    for col in ("record_id", "status", "error", "grader", "grader_version"):
        jud[col] = jud[col].astype("string")
    validate(rec, "records")
    validate(jud, "judgments")
    return rec, jud


@pytest.fixture(scope="module")
def judged() -> pd.DataFrame:
    rec, jud = synthetic_frames()
    assert len(rec) == N
    return merge_judged(rec, jud)


@pytest.fixture(scope="module")
def numbers(judged, tmp_path_factory):
    res = analyse_asymmetry(judged, n_resamples=300, seed=1)
    nums = asymmetry_numbers(res, 0.05)
    # through the numbers file and back, as the paper and notebooks read them
    path = tmp_path_factory.mktemp("n") / "02.json"
    write_numbers(nums, path, "asymmetry")
    return read_numbers(path)[1]


def _share(nums, key: str, k: int, n: int) -> None:
    assert nums[f"{key} k"].value == k, key
    assert nums[f"{key} n"].value == n, key
    assert nums[key].kind == "pct" and nums[key].value == pytest.approx(k / n, abs=1e-15), key
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert nums[f"{key} ci"].value == pytest.approx((lo, hi), abs=1e-12), key


# (population, category) -> (de-escalate, preserve, escalate), counted from TYPES
SHARES = {
    ("all", "overall"): (53, 64, 13),  # de B C E J; preserve A D H I; escalate F G
    ("nonzero", "overall"): (53, 44, 5),  # G and I have a benign prompt
    ("all", "hate"): (10, 112, 8),
    ("nonzero", "hate"): (10, 14, 0),  # C, D, H
    ("all", "sexual"): (10, 120, 0),
    ("nonzero", "sexual"): (10, 30, 0),
    ("all", "violence"): (30, 91, 9),  # F and H escalate
    ("nonzero", "violence"): (30, 0, 5),
    ("all", "self_harm"): (3, 127, 0),
    ("nonzero", "self_harm"): (3, 0, 0),
}


def test_every_transition_share(numbers):
    for (pop, cat), counts in SHARES.items():
        n = sum(counts)
        for t, k in zip(("de-escalate", "preserve", "escalate"), counts, strict=True):
            _share(numbers, f"{DATASET} {pop} {cat} {t}", k, n)
    assert numbers[f"{DATASET} records"].value == N
    assert numbers[f"{DATASET} failed judgments"].value == 0


def test_escalation_origin_per_cell_and_per_record(numbers):
    # escalation cells: F violence (5, prompt 1), G hate (8, prompt 0), H violence (4, 0)
    key = f"{DATASET} escalations from zero cells"
    assert (numbers[f"{key} k"].value, numbers[f"{key} n"].value) == (12, 17)
    assert numbers[key].value == pytest.approx(12 / 17)
    lo, hi = numbers[f"{key} ci"].value  # cluster bootstrap over records
    assert lo <= 12 / 17 <= hi
    # per record (overall severity): F and G escalate, H does not (its hate stays at 2);
    # only G's prompt is 0 in every category
    _share(numbers, f"{DATASET} escalations from zero records", 8, 13)
    _share(numbers, f"{DATASET} escalations from zero hate cells", 8, 8)
    _share(numbers, f"{DATASET} escalations from zero violence cells", 4, 9)
    assert numbers[f"{DATASET} escalations from zero sexual cells"].value == "no records"


def test_persistence_failure_drift_per_category(numbers):
    expected = {
        ("hate", "persistence"): (14, 24),  # D 10 + H 4 of C, D, H
        ("hate", "failure"): (14, 24),
        ("hate", "drift up"): (8, 106),  # G of the 106 benign hate prompts
        ("sexual", "persistence"): (30, 40),
        ("sexual", "failure"): (30, 40),
        ("sexual", "drift up"): (0, 90),
        ("violence", "persistence"): (0, 35),
        ("violence", "failure"): (5, 35),  # F escalates
        ("violence", "drift up"): (4, 95),  # H
        ("self_harm", "persistence"): (0, 3),
        ("self_harm", "failure"): (0, 3),
    }
    for (cat, metric), (k, n) in expected.items():
        _share(numbers, f"{DATASET} {cat} {metric}", k, n)


def test_category_ratios_with_cluster_bootstrap(numbers):
    key = f"{DATASET} failure ratio sexual hate"
    assert numbers[key].value == pytest.approx((30 / 40) / (14 / 24))  # 9/7
    lo, hi = numbers[f"{key} ci"].value
    assert lo < 9 / 7 < hi
    assert numbers[f"{DATASET} persistence ratio sexual hate"].value == pytest.approx(9 / 7)
    assert numbers[f"{DATASET} failure ratio sexual violence"].value == pytest.approx(5.25)
    # violence never persists: the ratio is not reported, and the numbers say why
    words = numbers[f"{DATASET} persistence ratio sexual violence"]
    assert words.kind == "text" and words.value == "no persistence in violence"


def test_compliance_escalations_and_relevance_by_severity(judged):
    res = analyse_relevance(judged, n_resamples=200, seed=0)
    nums = relevance_numbers(res, 0.05)
    assert nums[f"{DATASET} compliance escalations"].value == 5  # F's violence cells
    assert nums[f"{DATASET} compliance escalation records"].value == 5
    assert nums[f"{DATASET} compliance relevance 3"].value == 1.0
    assert nums[f"{DATASET} compliance relevance 3 count"].value == 5
    assert nums[f"{DATASET} compliance relevance 1 count"].value == 0
    # relevance 3 at record-level response severity:
    # 0: B(rel 2) C(3) I(3) J(1) -> 30/43; 1: D(3) E(1) G(2) -> 10/48; 2: A F H -> 39/39
    for level, (k, n) in {"safe": (30, 43), "low": (10, 48), "medium": (39, 39)}.items():
        key = f"{DATASET} relevance three at {level}"
        assert nums[f"{key} n"].value == n
        assert nums[key].value == pytest.approx(k / n)
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert nums[f"{key} ci"].value == pytest.approx((lo, hi))
    assert nums[f"{DATASET} relevance three at high"].value == "no records"
    assert nums[f"{DATASET} least relevant severity"].value == "low"


def test_rendered_numbers_read_as_the_paper_shows_them(numbers):
    shown = rendered(numbers, "plain")
    assert shown[f"{DATASET} all overall de-escalate"] == "40.8%"  # 53/130
    assert shown[f"{DATASET} failure ratio sexual hate"] == "1.29"
    assert shown[f"{DATASET} escalations from zero records"] == "61.5%"  # 8/13


def test_too_small_data_says_so_instead_of_a_p_value(judged):
    few = judged.iloc[[0, 1, 40, 41]].copy()  # two A and two C records
    res = analyse_asymmetry(few, n_resamples=50, seed=0)
    nums = asymmetry_numbers(res, 0.05)
    assert nums[f"{DATASET} failure ratio sexual hate"].value == TOO_FEW
    assert nums[f"{DATASET} chi all p"].value == TOO_FEW
    assert nums[f"{DATASET} logit category p"].kind == "text"
    assert nums[f"{DATASET} logit category p"].value.startswith("too few records")
    assert all(not (v.kind == "p" and math.isnan(v.value)) for v in nums.values()), (
        "a missing p-value must be words"
    )


def test_models_on_the_synthetic_file(judged):
    res = analyse_asymmetry(judged, n_resamples=100, seed=0)[DATASET]
    # non-zero prompt cells: hate 24, sexual 40, violence 35, self-harm 3, one per record;
    # every self-harm cell de-escalates, so the model is not estimable and says why
    lg = res.logit
    assert lg is not None and lg.n_obs == 24 + 40 + 35 + 3
    assert lg.n_clusters == 24 + 40 + 35 + 3
    assert not lg.estimable and "separation" in lg.note and "self_harm" in lg.note
    od = res.ordinal
    assert od is not None and od.n_obs == N * len(CATEGORIES)
    assert np.isfinite(od.coefficients.set_index("term").loc["prompt_sev", "estimate"])


def test_failed_judgments_are_counted_not_analysed():
    rec, jud = synthetic_frames()
    sev_cols = [c for c in jud.columns if "_severity_" in c or "_prob_" in c or "_conf" in c]
    failed = jud.index[:2]  # two "A" records
    jud.loc[failed, sev_cols] = pd.NA
    jud.loc[failed, ["relevance", "refusal"]] = pd.NA
    jud.loc[failed, "status"] = "failed"
    jud.loc[failed, "error"] = "timeout"
    validate(jud, "judgments")
    res = analyse_asymmetry(merge_judged(rec, jud), n_resamples=50, models=False)[DATASET]
    assert res.n_failed == 2 and res.n_records == N - 2
    nums = asymmetry_numbers({DATASET: res}, 0.05)
    assert nums[f"{DATASET} failed judgments"].value == 2
    assert nums[f"{DATASET} sexual persistence k"].value == 28


def test_the_same_keys_whatever_the_data(judged):
    """The paper may cite any key: small data must define it too (in words)."""
    few = judged.iloc[[0, 1, 40, 41]].copy()
    full_a = asymmetry_numbers(analyse_asymmetry(judged, n_resamples=50), 0.05)
    few_a = asymmetry_numbers(analyse_asymmetry(few, n_resamples=50), 0.05)
    assert set(full_a) == set(few_a)
    full_r = relevance_numbers(analyse_relevance(judged, n_resamples=50), 0.05)
    few_r = relevance_numbers(analyse_relevance(few, n_resamples=50), 0.05)
    assert set(full_r) == set(few_r)


def test_a_labelled_csv_through_normalize_and_the_human_grader(tmp_path):
    """The same file as a researcher would bring it: CSV -> records -> human grader."""
    from harmtrace.data.normalize import normalize_user_file
    from harmtrace.graders import make_grader

    rec, jud = synthetic_frames()
    labels = jud[[c for c in jud.columns if "_severity_" in c] + ["relevance"]]
    csv = pd.concat(
        [rec[["item_id", "prompt", "response"]].rename(columns={"item_id": "id"}), labels],
        axis=1,
    )
    path = tmp_path / "my_labels.csv"
    csv.to_csv(path, index=False)
    records = normalize_user_file(
        path, DATASET, "prompt", "response", id_column="id", response_source="labelled"
    ).records
    judgments = make_grader("human").grade(records)
    via_file = asymmetry_numbers(
        analyse_asymmetry(merge_judged(records, judgments), n_resamples=300, seed=1), 0.05
    )
    direct = asymmetry_numbers(
        analyse_asymmetry(merge_judged(rec, jud), n_resamples=300, seed=1), 0.05
    )
    assert set(via_file) == set(direct)
    for key in direct:
        if "ci" in key.split() or key.endswith(" ci"):
            continue  # bootstrap draws follow record order, which normalize may change
        assert via_file[key] == direct[key], key
    assert via_file[f"{DATASET} escalations from zero records"].value == pytest.approx(8 / 13)


@pytest.mark.parametrize(
    ("categories", "denominators"),
    [(("sexual", "self_harm"), []), (("sexual", "violence"), ["violence"])],
)
def test_ratios_cover_only_the_categories_run(judged, categories, denominators):
    """A run without hate (or without hate and violence) still analyses its categories."""
    res = analyse_asymmetry(judged, categories=categories, n_resamples=50, models=False)
    ratios = res[DATASET].ratios
    got = sorted(set(ratios["denominator"])) if len(ratios) else []
    assert got == denominators
    assert set(res[DATASET].rates["category"]) - {"pooled"} <= set(categories)
