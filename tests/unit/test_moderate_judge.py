"""Moderation judged independently: a second grader counts what a policy removed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmtrace.config import ConfigError
from harmtrace.moderate.judge import Judge
from harmtrace.moderate.policies import get_policy
from harmtrace.moderate.settings import JUDGE_DIR, check_moderate_config
from harmtrace.moderate.simulation import long_outcomes, run_simulation
from harmtrace.moderate.simulation_report import paper_numbers
from harmtrace.taxonomy import CATEGORIES
from tests.unit.test_moderate_simulation import POLICIES, toy_analysis

JUDGE_WORDS = {"hate": {"rude": 2}, "violence": {"stab": 2}}
"""The judge reads the toy rows differently from the trigger (tests.moderation_fakes):
"massacre" is nothing to it, "rude" is Medium hate, "stab" Medium violence."""


class KeywordJudge:
    """A judge with the interface of :class:`Judge`, on its own keyword table."""

    name = "keyword judge"

    def __init__(self) -> None:
        self.graded: list[int] = []

    def _sev(self, texts) -> np.ndarray:
        self.graded.append(len(texts))
        out = np.zeros((len(texts), len(CATEGORIES)), dtype=np.int64)
        for i, text in enumerate(texts):
            words = set(str(text).lower().replace(".", " ").split())
            for k, c in enumerate(CATEGORIES):
                out[i, k] = max([v for w, v in JUDGE_WORDS.get(c, {}).items() if w in words] or [0])
        return out

    def before(self, items: pd.DataFrame):
        return self._sev(items["prompt"].tolist()), self._sev(items["response"].tolist())

    def after(self, items, final, changed):
        out = self.before(items)[1]
        idx = np.flatnonzero(changed)
        out[idx] = self._sev([final[i] for i in idx])
        return out


@pytest.fixture(scope="module")
def judged():
    analysis, scorer = toy_analysis()
    return run_simulation(
        analysis, [get_policy(p) for p in POLICIES], scorer, thresholds=[0.5], judge=KeywordJudge()
    )


def _overall(effects, policy):
    d = effects.loc[(effects["category"] == "overall") & (effects["policy"] == policy)]
    return d.iloc[0]


def test_the_judge_counts_and_the_trigger_count_is_kept_beside_it(judged):
    assert judged.counted_by == "judge" and judged.judge == "keyword judge"
    # trigger: rows 1-3 escalate (violence 3, violence 2, hate 1); block_high blocks row 1
    trig = _overall(judged.trigger_effects, "block_high")
    assert (trig["escalations_before"], trig["removed"]) == (3, 1)
    # judge: rows 2 (stab) and 3 (rude) escalate to Medium; block_high blocks neither, and
    # the two rows it blocks (1 and 4) are Safe by the judge: benign responses changed
    jud = _overall(judged.effects, "block_high")
    assert (jud["escalations_before"], jud["harmful_escalations"], jud["removed"]) == (2, 2, 0)
    assert (jud["benign"], jud["benign_changed"]) == (3, 2)
    # the trigger's view of the same outcomes is unchanged by the judge
    assert judged.outcomes.loc[judged.outcomes["policy"] == "block_high", "action"].tolist() == [
        "block", "annotate", "annotate", "block", "pass",
    ]  # fmt: skip


def test_redaction_is_counted_on_the_judges_grade_of_the_final_output(judged):
    out = judged.outcomes.loc[judged.outcomes["policy"] == "redact_medium_block_high"]
    # row 2's "He would stab." is redacted: the judge grades the redacted text Safe
    assert out["judge_before_sev_violence"].tolist()[1] == 2
    assert out["judge_after_sev_violence"].tolist()[1] == 0
    assert _overall(judged.effects, "redact_medium_block_high")["removed"] == 1


def test_numbers_say_who_counted(judged):
    nums = paper_numbers(judged, POLICIES)
    assert nums["counted by"].value == "judge"
    assert nums["judge"].value == "keyword judge"
    assert nums["toy block_high trigger removed"].value == pytest.approx(1 / 3)
    assert nums["toy block_high removed"].value == 0


def test_judge_counts_need_judge_columns():
    analysis, scorer = toy_analysis()
    res = run_simulation(analysis, [get_policy("observe")], scorer)
    assert res.counted_by == "trigger" and res.trigger_effects is None
    with pytest.raises(ValueError, match="no judge severities"):
        long_outcomes(res.outcomes, "judge")
    with pytest.raises(ValueError, match="counted_by"):
        long_outcomes(res.outcomes, "nobody")


def test_the_real_judge_grades_once_and_regrades_only_changed_outputs(raw_dir):
    from harmtrace.data.normalize import normalize_dataset
    from harmtrace.data.registry import get_dataset
    from harmtrace.graders.embedded import EmbeddedGrader
    from tests.devdata import toy_refusal_detector

    train = normalize_dataset(get_dataset("openai-moderation"), raw_dir).records.iloc[::4]
    model = EmbeddedGrader("tfidf", c_grid=(4.0,), inner_splits=3)
    judge = Judge(model.fit(train, refusal=toy_refusal_detector()))
    items = normalize_dataset(get_dataset("air-bench-2024"), raw_dir).records.head(6)
    prompt, response = judge.before(items)
    assert prompt.shape == response.shape == (6, len(CATEGORIES))
    assert judge.before(items)[0] is prompt  # graded once per set of records
    final = ["I can't help with that.", *items["response"].tolist()[1:]]
    after = judge.after(items, final, np.array([True] + [False] * 5))
    assert (after[1:] == response[1:]).all()
    assert (after[0] == 0).all()  # a bare refusal conveys nothing
    assert judge.name.endswith("(tfidf)")


BASE = {
    "data": {"datasets": ["air-bench-2024"]},
    "grade": {"graders": ["embedded"]},
    "grader": {"embedded": {"extractor": "tfidf+minilm", "compare": {"extractors": ["tfidf"]}}},
    "respond": {"enabled": False},
    "analysis": {},
}


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        ({"extractor": "tfidf+minilm"}, "is the trigger's own extractor"),
        ({"extractor": "nope"}, "unknown extractor"),
        ({"extractor": "wordllama"}, "no rule embeds the training texts for"),
    ],
)
def test_a_judge_that_cannot_judge_independently_is_a_config_error(judge, message):
    config = {**BASE, "moderate": {"judge": judge}}
    with pytest.raises(ConfigError, match=message):
        check_moderate_config(config, ["air-bench-2024"])


def test_the_judge_has_its_own_model_folder():
    settings = check_moderate_config({**BASE, "moderate": {"judge": {"extractor": "tfidf"}}}, [])
    assert settings.judge_dir == JUDGE_DIR and settings.judge_extractor == "tfidf"
    assert check_moderate_config({**BASE, "moderate": {"judge": None}}, []).judge_dir is None
