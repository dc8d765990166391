"""Transfer evaluation: metric definitions on hand-made scores; LOSO never sees its source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from harmtrace.graders.embedded import (
    grade_records,
    oof_for_texts,
    record_weights,
    train_grader,
    training_frame,
)
from harmtrace.graders.transfer import loso_scores, transfer_metrics
from harmtrace.taxonomy import CATEGORIES
from tests.devdata import prompt_frame

FAST = {"c_grid": (4.0,), "inner_splits": 3}


_frame = prompt_frame


def _scores(frame: pd.DataFrame, top: list[float], flagged: list[bool]) -> pd.DataFrame:
    out = {"record_id": frame["record_id"]}
    for c in CATEGORIES:
        out[f"prob_{c}"] = 0.0
        out[f"severity_{c}"] = 0
    out["prob_violence"] = top
    out["severity_violence"] = [2 if f else 0 for f in flagged]
    return pd.DataFrame(out)


def test_metrics_on_hand_made_scores():
    harmful = _frame(
        "strongreject", ["a", "b", "c", "d"], sr_category=["Violence"] * 3 + ["Sexual content"]
    )
    benign = _frame("rho-overrefusal", ["e", "f", "g", "h"], rho_category="medical")
    recs = pd.concat([harmful, benign], ignore_index=True)
    scores = _scores(
        recs,
        top=[0.9, 0.8, 0.3, 0.7, 0.1, 0.2, 0.85, 0.05],
        flagged=[True, True, False, True, False, False, True, False],
    )
    m = transfer_metrics(recs, scores, "loso", min_positives=1).set_index("dataset")
    sr = m.loc["strongreject"]
    assert sr["positives"] == "four categories" and sr["n_positive"] == 4
    # positives .9 .8 .3 .7 vs negatives .1 .2 .85 .05: pairs won = 4+3+3+3 of 16
    assert sr["auroc"] == pytest.approx(13 / 16)
    # flagged: 3 of 4 positives, 1 of 4 negatives -> precision 3/4, recall 3/4
    assert sr["f1"] == pytest.approx(0.75)
    assert m.loc["rho-overrefusal", "fpr"] == pytest.approx(0.25)
    assert np.isnan(m.loc["rho-overrefusal", "auroc"])


def _sources(seed: int = 0) -> pd.DataFrame:
    """Two harmful sources with one cue word per category, one benign set. Only
    'strongreject' marks its violent prompts with the token 'zzq' as well."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(300)]

    def prompts(n, extra):
        return [f"{extra} {' '.join(rng.choice(words, 4))}" for _ in range(n)]

    sr_parts = [
        ("zzq knife", "Violence"),
        ("nude", "Sexual content"),
        ("slur", "Hate, harassment and discrimination"),
        ("money scheme", "Non-violent crimes"),
    ]
    adv_parts = [
        ("knife attack", "Violence/armed conflict"),
        ("nude", "Sexualisation"),
        ("slur", "Discrimination"),
        ("cut myself", "Self-harm"),
        ("money fraud", "Financial and Business"),
    ]
    sr = _frame(
        "strongreject",
        [p for cue, _ in sr_parts for p in prompts(15, cue)],
        sr_category=[lab for _, lab in sr_parts for _ in range(15)],
    )
    adv = _frame(
        "advbench",
        [p for cue, _ in adv_parts for p in prompts(15, cue)],
        adv_harm_categories=[lab for _, lab in adv_parts for _ in range(15)],
    )
    ben = _frame(
        "rho-overrefusal",
        prompts(30, "kitchen recipe") + prompts(15, "cut myself free"),
        rho_category="medical",
    )
    return training_frame([sr, adv, ben])


def test_loso_scores_come_from_a_model_without_the_source():
    recs = _sources()
    lo = loso_scores(recs, ["strongreject", "rho-overrefusal"], **FAST)
    assert set(lo["dataset"]) == {"strongreject", "rho-overrefusal"}
    assert len(lo) == int(recs["dataset"].isin(["strongreject", "rho-overrefusal"]).sum())
    m = transfer_metrics(recs, lo, "loso").set_index("dataset")
    assert m.loc["strongreject", "auroc"] > 0.8  # the shared cue words carry over
    # a TF-IDF grader that never saw strongreject has no weight on its private token
    # 'zzq': scoring 'zzq' alone gives the same as an empty text
    from harmtrace.graders.embedded import EmbeddedGrader

    without = EmbeddedGrader(extractor="tfidf", relevance=False, **FAST)
    without.fit(recs[recs["dataset"] != "strongreject"])
    probe = without.predict(["zzq", ""])
    assert probe["prob_violence"].iloc[0] == pytest.approx(probe["prob_violence"].iloc[1])
    with pytest.raises(ValueError, match="not among the training records"):
        loso_scores(recs, ["nope"], **FAST)


def test_harm_head_scores_harmful_requests_outside_the_four_categories():
    """The prompt sets' money-fraud requests are negatives for all four categories but
    positives of the harm head, which therefore ranks them above the benign prompts."""
    from harmtrace.graders.embedded import EmbeddedGrader
    from harmtrace.graders.labels import category_targets, harm_targets

    recs = _sources()
    model = EmbeddedGrader(relevance=False, **FAST).fit(recs)
    cats = category_targets(recs).fillna(False).any(axis=1).to_numpy()
    harm = harm_targets(recs)
    other = harm.fillna(False).to_numpy() & ~cats
    benign = harm.eq(False).fillna(False).to_numpy()
    assert other.sum() == 30 and benign.sum() == 45
    probs = model.predict(recs["prompt"])
    keep = other | benign
    top4 = probs[[f"prob_{c}" for c in CATEGORIES]].max(axis=1)
    harm_auc = roc_auc_score(other[keep], probs["prob_harmful"][keep])
    assert harm_auc > 0.95 and harm_auc > roc_auc_score(other[keep], top4[keep])


def test_auroc_uses_the_harm_score_and_keeps_the_category_score():
    harmful = _frame("strongreject", ["a", "b"], sr_category=["Violence"] * 2)
    benign = _frame("rho-overrefusal", ["c", "d"], rho_category="medical")
    recs = pd.concat([harmful, benign], ignore_index=True)
    scores = _scores(recs, top=[0.1, 0.9, 0.5, 0.2], flagged=[False] * 4)
    # category score: positives .1 .9 vs negatives .5 .2 -> 2 of 4 pairs won
    without = transfer_metrics(recs, scores, "oof", min_positives=1).set_index("dataset")
    assert without.loc["strongreject", "auroc"] == pytest.approx(0.5)
    assert without.loc["strongreject", "auroc_categories"] == pytest.approx(0.5)
    scores["prob_harmful"] = [0.8, 0.7, 0.6, 0.1]  # harm score ranks both positives first
    with_harm = transfer_metrics(recs, scores, "oof", min_positives=1).set_index("dataset")
    assert with_harm.loc["strongreject", "auroc"] == pytest.approx(1.0)
    assert with_harm.loc["strongreject", "auroc_categories"] == pytest.approx(0.5)


def test_weights_and_training_frame_checks():
    recs = _sources()
    w = record_weights(recs, {"advbench": 2.0})
    assert w[(recs["dataset"] == "advbench").to_numpy()].tolist() == [2.0] * 75
    assert set(w[(recs["dataset"] != "advbench").to_numpy()]) == {1.0}
    with pytest.raises(ValueError, match="positive"):
        record_weights(recs, {"advbench": 0})
    with pytest.raises(ValueError, match="more than one record set"):
        training_frame([recs, recs])


def test_training_texts_in_another_dataset_get_their_oof_scores(tmp_path):
    recs = _sources()
    model = train_grader(recs, tmp_path, n_splits=3, **FAST)
    # a second dataset repeating two training prompts plus one new prompt
    again = _frame("copy", [recs["prompt"].iloc[0], recs["prompt"].iloc[100], "something new"])
    found = oof_for_texts(tmp_path, again)
    assert found["record_id"].tolist() == again["record_id"].iloc[:2].tolist()
    oof = pd.read_parquet(tmp_path / "oof_scores.parquet")
    assert found["prob_violence"].iloc[0] == pytest.approx(oof["prob_violence"].iloc[0])
    judged = grade_records(model, again, prompt_scores=found, partial=True)
    fresh = model.score(["something new"])
    assert judged["prompt_prob_violence"].iloc[2] == pytest.approx(fresh["prob_violence"].iloc[0])
    with pytest.raises(ValueError, match="lacks 1 of the records"):
        grade_records(model, again, prompt_scores=found)
    shifted = grade_records(model, again, prompt_scores=found, partial=True, prior_shift=True)
    assert not shifted["prompt_prob_violence"].equals(judged["prompt_prob_violence"])


def test_transfer_report_pairs_in_and_out_of_source():
    from harmtrace.report.transfer_report import (
        transfer_numbers,
        transfer_table,
        transfer_table_tex,
    )

    m = pd.DataFrame(
        {
            "evaluation": ["oof", "loso", "oof", "loso"],
            "dataset": ["a", "a", "b", "b"],
            "n": [10, 10, 5, 5],
            "n_positive": [4, 4, 0, 0],
            "positives": ["four categories"] * 2 + ["none"] * 2,
            "n_benign": [0, 0, 5, 5],
            "auroc": [0.9, 0.7, np.nan, np.nan],
            "f1": [0.5, 0.4, np.nan, np.nan],
            "recall": [0.5, 0.5, np.nan, np.nan],
            "fpr": [np.nan, np.nan, 0.1, 0.3],
            "category_auroc": [0.8, 0.6, np.nan, np.nan],
            "n_categories": [1, 1, 0, 0],
        }
    )
    tab = transfer_table(m).set_index("Source")
    assert tab.loc["a", "AUROC"] == "0.90 / 0.70"
    assert tab.loc["b", "FPR benign"] == "10% / 30%"
    nums = transfer_numbers(m, harm_word_source="b")
    assert nums["loso min auroc"].value == pytest.approx(0.7)
    assert nums["loso auroc target met"].value == "not met"
    assert nums["harm word fpr"].value == pytest.approx(0.3)
    assert nums["harm word fpr target met"].value == "not met"  # 30% > 10%
    assert nums["harm word fpr insource"].value == pytest.approx(0.1)
    assert nums["harm word fpr insource target met"].value == "met"  # 10% <= 10%
    assert nums["loso sources"].value == 1 and nums["loso sources at target"].value == 0
    assert nums["oof min auroc"].value == pytest.approx(0.9)
    lenient = transfer_numbers(m, harm_word_source="b", target_auroc=0.7, target_fpr=0.3)
    assert lenient["loso auroc target met"].value == "met"
    assert lenient["harm word fpr target met"].value == "met"
    # the LaTeX table: the same headers, the long ones on two lines; cells escaped once
    tex = transfer_table_tex(transfer_table(m))
    assert tex.startswith("\\begin{tabular}{lrrrrrr}\n\\toprule\nSource & Positives & AUROC & ")
    assert "\\begin{tabular}[b]{@{}c@{}}F1 \\\\ (severity 2+)\\end{tabular}" in tex
    assert "\\begin{tabular}[b]{@{}c@{}}FPR \\\\ benign\\end{tabular}" in tex
    assert "\nb & 0 & n/a / n/a & n/a / n/a & n/a / n/a & 10\\% / 30\\% & n/a / n/a \\\\\n" in tex
