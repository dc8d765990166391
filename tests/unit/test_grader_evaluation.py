"""Out-of-fold grader evaluation on a hand-made records frame with unknown labels.

Expected values come from an independent three-valued OR written here and from
scikit-learn / statsmodels applied to the known subset by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from harmtrace.graders.evaluation import oof_metrics, severe_agreement
from harmtrace.taxonomy import CATEGORIES
from tests.rendering import rendered

T, F, U = True, False, None  # U: the annotators did not judge this label
KEYS = ("H", "H2", "S", "S3", "V", "V2", "SH")
CATS = ("hate", "sexual", "violence", "self_harm")
CAT_KEYS = {
    "hate": ("H", "H2"),
    "sexual": ("S", "S3"),
    "violence": ("V", "V2"),
    "self_harm": ("SH",),
}
SEVERE = {"hate": "H2", "sexual": "S3", "violence": "V2"}

#        H  H2 S  S3 V  V2 SH
LABELS = [
    (T, F, F, F, F, F, F),  # r0
    (F, F, T, T, F, F, F),  # r1
    (U, F, F, U, T, T, F),  # r2: hate unknown (F, U), sexual unknown (F, U)
    (U, T, F, F, F, U, T),  # r3: hate True via H2 despite unknown H; violence unknown
    (F, F, F, F, F, F, F),  # r4
    (T, T, F, F, T, F, U),  # r5: self-harm unknown
    (F, U, T, F, F, F, F),  # r6: hate unknown
    (F, F, F, F, F, F, T),  # r7
    (F, F, F, F, T, F, F),  # r8
    (T, F, U, U, F, F, F),  # r9: sexual unknown
]
# out-of-fold probability and severity per record and category (hate, sexual, violence, self_harm)
PROBS = [
    (0.91, 0.05, 0.10, 0.02),
    (0.20, 0.88, 0.15, 0.01),
    (0.97, 0.99, 0.70, 0.03),
    (0.60, 0.07, 0.99, 0.81),
    (0.15, 0.30, 0.20, 0.04),
    (0.72, 0.12, 0.40, 0.95),
    (0.02, 0.64, 0.05, 0.06),
    (0.33, 0.09, 0.35, 0.22),
    (0.40, 0.18, 0.82, 0.07),
    (0.55, 0.01, 0.12, 0.05),
]
SEVERITY = [
    (3, 0, 0, 0),
    (0, 3, 0, 0),
    (3, 3, 2, 0),
    (2, 0, 3, 2),
    (0, 1, 0, 0),
    (2, 0, 1, 3),
    (0, 2, 0, 0),
    (1, 0, 1, 0),
    (1, 0, 3, 0),
    (2, 0, 0, 0),
]


def kleene_or(values) -> bool | None:
    if any(v is True for v in values):
        return True
    if all(v is False for v in values):
        return False
    return None


def make_records() -> pd.DataFrame:
    n = len(LABELS)
    frame = pd.DataFrame(
        {
            "record_id": pd.array([f"{i:016x}" for i in range(n)], dtype="string"),
            "dataset": "openai-moderation",
            "prompt": [f"text {i}" for i in range(n)],
        }
    )
    for j, key in enumerate(KEYS):
        frame[f"label_{key}"] = pd.array([row[j] for row in LABELS], dtype="boolean")
    return frame


def make_oof(records: pd.DataFrame) -> pd.DataFrame:
    oof = pd.DataFrame({"record_id": records["record_id"].astype(str)})
    for j, cat in enumerate(CATS):
        oof[f"prob_{cat}"] = [row[j] for row in PROBS]
        oof[f"severity_{cat}"] = pd.array([row[j] for row in SEVERITY], dtype="Int8")
    return oof


def truth(cat: str) -> list[bool | None]:
    idx = [KEYS.index(k) for k in CAT_KEYS[cat]]
    return [kleene_or([row[i] for i in idx]) for row in LABELS]


@pytest.fixture
def records() -> pd.DataFrame:
    return make_records()


@pytest.fixture
def oof(records) -> pd.DataFrame:
    # shuffled on purpose: scores are matched on record_id, not on position
    return make_oof(records).sample(frac=1.0, random_state=3).reset_index(drop=True)


def test_known_and_positive_counts_leave_unknown_labels_out(records, oof):
    m = oof_metrics(records, oof).set_index("category")
    assert m.index.tolist() == list(CATS)
    # literal hand counts from the table above
    assert (m.loc["hate", "n_known"], m.loc["hate", "n_positive"]) == (8, 4)
    assert (m.loc["sexual", "n_known"], m.loc["sexual", "n_positive"]) == (8, 2)
    assert (m.loc["violence", "n_known"], m.loc["violence", "n_positive"]) == (9, 3)
    assert (m.loc["self_harm", "n_known"], m.loc["self_harm", "n_positive"]) == (9, 2)
    for cat in CATS:
        y = [v for v in truth(cat) if v is not None]
        assert m.loc[cat, "n_known"] == len(y)
        assert m.loc[cat, "n_positive"] == sum(y)
        assert m.loc[cat, "base_rate"] == pytest.approx(sum(y) / len(y))


def test_auroc_and_auprc_match_sklearn_on_the_known_subset(records, oof):
    m = oof_metrics(records, oof).set_index("category")
    for j, cat in enumerate(CATS):
        known = [i for i, v in enumerate(truth(cat)) if v is not None]
        y = [truth(cat)[i] for i in known]
        p = [PROBS[i][j] for i in known]
        assert m.loc[cat, "auroc"] == pytest.approx(roc_auc_score(y, p))
        assert m.loc[cat, "auprc"] == pytest.approx(average_precision_score(y, p))
        # including the unknown records as negatives would give another AUROC
        y_all = [bool(v) for v in truth(cat)]
        p_all = [row[j] for row in PROBS]
        if len(known) < len(LABELS):
            assert roc_auc_score(y_all, p_all) != pytest.approx(m.loc[cat, "auroc"])


def test_hate_auroc_by_hand(records, oof):
    # known hate records and probabilities: positives r0 .91, r3 .60, r5 .72, r9 .55;
    # negatives r1 .20, r4 .15, r7 .33, r8 .40 -> every positive outranks every negative
    m = oof_metrics(records, oof).set_index("category")
    assert m.loc["hate", "auroc"] == 1.0
    assert m.loc["hate", "auprc"] == 1.0


def test_f1_recall_precision_of_severity_two_or_more(records, oof):
    m = oof_metrics(records, oof).set_index("category")
    for j, cat in enumerate(CATS):
        tp = fp = fn = 0
        for i, y in enumerate(truth(cat)):
            if y is None:
                continue
            flagged = SEVERITY[i][j] >= 2
            tp += flagged and y
            fp += flagged and not y
            fn += (not flagged) and y
        assert m.loc[cat, "f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn)), cat
        assert m.loc[cat, "recall"] == pytest.approx(tp / (tp + fn)), cat
        if tp + fp:
            assert m.loc[cat, "precision"] == pytest.approx(tp / (tp + fp)), cat
        lo, hi = proportion_confint(tp, tp + fn, alpha=0.05, method="wilson")
        assert m.loc[cat, "recall_lo"] == pytest.approx(lo)
        assert m.loc[cat, "recall_hi"] == pytest.approx(hi)
    # literal: violence known positives r2 (sev 2), r5 (sev 1), r8 (sev 3) -> recall 2/3;
    # flagged negatives: none among known (r3 has sev 3 but its violence label is unknown)
    assert m.loc["violence", "recall"] == pytest.approx(2 / 3)
    assert m.loc["violence", "precision"] == 1.0
    # sexual: r2 (sev 3) is unknown, so it is not a false positive; r1 tp, r6 tp
    assert m.loc["sexual", "precision"] == 1.0 and m.loc["sexual", "recall"] == 1.0


def test_scores_of_unknown_records_do_not_matter(records, oof):
    base = oof_metrics(records, oof)
    changed = oof.copy().set_index("record_id")
    for j, cat in enumerate(CATS):
        unknown = [records["record_id"][i] for i, v in enumerate(truth(cat)) if v is None]
        changed.loc[unknown, f"prob_{cat}"] = 1.0 if j % 2 else 0.0
        changed.loc[unknown, f"severity_{cat}"] = 3
    again = oof_metrics(records, changed.reset_index())
    pd.testing.assert_frame_equal(base, again)


def test_category_without_positives_or_labels_gives_nan(records, oof):
    rec = records.copy()
    rec["label_SH"] = pd.array([False] * len(rec), dtype="boolean")  # no positive
    rec = rec.drop(columns=["label_V", "label_V2"])  # violence never judged
    m = oof_metrics(rec, oof).set_index("category")
    sh = m.loc["self_harm"]
    assert sh["n_known"] == len(rec) and sh["n_positive"] == 0
    assert all(math.isnan(sh[k]) for k in ("auroc", "auprc", "f1", "recall"))
    v = m.loc["violence"]
    assert v["n_known"] == 0 and math.isnan(v["base_rate"]) and math.isnan(v["auroc"])
    # the other categories are untouched
    assert m.loc["hate", "auroc"] == 1.0


def test_every_record_needs_a_score(records, oof):
    with pytest.raises(KeyError):
        oof_metrics(records, oof.iloc[1:])


def test_severe_agreement(records, oof):
    s = severe_agreement(records, oof).set_index("category")
    assert s.index.tolist() == ["hate", "sexual", "violence"]
    for cat, key in SEVERE.items():
        j, k = CATS.index(cat), KEYS.index(key)
        known = [i for i, row in enumerate(LABELS) if row[k] is not None]
        y = [LABELS[i][k] for i in known]
        high = [SEVERITY[i][j] == 3 for i in known]
        hits = sum(a and b for a, b in zip(high, y, strict=True))
        assert s.loc[cat, "n_known"] == len(known)
        assert s.loc[cat, "n_severe"] == sum(y)
        assert s.loc[cat, "n_predicted_3"] == sum(high)
        if sum(y):
            assert s.loc[cat, "recall_3"] == pytest.approx(hits / sum(y))
        if sum(high):
            assert s.loc[cat, "precision_3"] == pytest.approx(hits / sum(high))
    # literal: H2 known in 9 records, severe r3 (sev 2) and r5 (sev 2) -> recall 0;
    # sev 3 on r0 and r2 (both H2 False) -> precision 0
    assert s.loc["hate", "n_known"] == 9 and s.loc["hate", "n_severe"] == 2
    assert s.loc["hate", "recall_3"] == 0.0 and s.loc["hate", "precision_3"] == 0.0
    # S3: r1 severe with sev 3; r2 (sev 3) has S3 unknown and does not count
    assert s.loc["sexual", "n_known"] == 8 and s.loc["sexual", "n_predicted_3"] == 1
    assert s.loc["sexual", "recall_3"] == 1.0 and s.loc["sexual", "precision_3"] == 1.0
    # V2: r2 severe but sev 2; r8 sev 3 not severe; r3 (sev 3) unknown
    assert s.loc["violence", "recall_3"] == 0.0 and s.loc["violence", "precision_3"] == 0.0


def test_severe_agreement_without_severe_labels_is_nan(records, oof):
    rec = records.copy()
    rec["label_S3"] = pd.array([False] * len(rec), dtype="boolean")
    s = severe_agreement(rec, oof).set_index("category")
    assert s.loc["sexual", "n_severe"] == 0 and np.isnan(s.loc["sexual", "recall_3"])
    assert s.loc["sexual", "n_known"] == len(rec)


def test_flag_rates_counts_levels_per_category_and_any():
    from harmtrace.graders.evaluation import flag_rates

    sev = {
        "hate": [0, 1, 2, 3],
        "sexual": [0, 0, 0, 2],
        "violence": [1, 0, 0, 0],
        "self_harm": [0, 0, 0, 0],
    }
    j = pd.DataFrame({f"prompt_severity_{c}": pd.array(v, dtype="Int8") for c, v in sev.items()})
    rates = flag_rates(j).set_index(["category", "level"])
    assert rates.loc[("hate", 1), "k"] == 3 and rates.loc[("hate", 2), "k"] == 2
    assert rates.loc[("any", 1), "k"] == 4 and rates.loc[("any", 2), "k"] == 2
    assert rates.loc[("self_harm", 1), "share"] == 0.0
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(3, 4, method="wilson")
    assert rates.loc[("hate", 1), "ci_lo"] == pytest.approx(lo)
    assert rates.loc[("hate", 1), "ci_hi"] == pytest.approx(hi)


def test_flag_rate_numbers_keys():
    from harmtrace.graders.evaluation import flag_rates
    from harmtrace.report.grader_report import flag_rate_numbers

    j = pd.DataFrame({f"prompt_severity_{c}": pd.array([0, 2], dtype="Int8") for c in CATEGORIES})
    nums = rendered(flag_rate_numbers({"sst": flag_rates(j)}))
    assert nums["sst any at least 2"] == "50.0\\%"
    assert nums["sst n"] == "2"
