"""An independent count of what a moderation policy changed (``moderate.judge``).

Method: a policy acts on the moderation grader's scores (whole response and each
sentence). Counting what it removed with those same scores makes some figures true by
construction: a policy that blocks every response the grader rates Medium removes every
escalation to Medium that the grader sees, whatever the responses say. The judge is a
second model of the grader the workflow trains, fitted inside the DAG on the same labels
with another feature extractor; it grades each record's prompt (in its dialogue) and response before
moderation, and each final output that a policy changed (a block's safe message
included). Escalations before and after moderation, and what counts as removed, are read
off the judge's severities; the trigger's own count is kept beside them. Both models learn
from the same labels, so their errors are not independent: the judge removes the
construction, not every bias the two share.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmtrace.graders.registry import training_api
from harmtrace.taxonomy import CATEGORIES

JUDGE_COLUMNS = ("record_id", "dataset", "prompt", "context", "response")
"""Record columns the judge reads."""


def _key(items: pd.DataFrame) -> str:
    ids = "\x1f".join(items["record_id"].astype(str))
    return hashlib.sha256(ids.encode("utf-8")).hexdigest()


def _severities(judgments: pd.DataFrame, side: str) -> np.ndarray:
    cols = [f"{side}_severity_{c}" for c in CATEGORIES]
    return judgments[cols].astype("Float64").fillna(0).to_numpy(dtype=float).astype(np.int64)


@dataclass
class Judge:
    """A trained model used only to count, never to trigger: its backend's training
    interface (:class:`~harmtrace.graders.base.TrainingAPI`) loads and grades with it."""

    model: Any
    api: Any = None  # the backend's TrainingAPI (default: the default trained grader's)
    response_text: str = "conveyed"
    prompt_text: str = "dialogue"
    _before: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def backend_api(self) -> Any:
        """``api``, or the default trained grader's, looked up when first used (building a
        judge resolves nothing)."""
        return self.api if self.api is not None else training_api()

    @classmethod
    def load(cls, model_dir: str | Path, grader: str | None = None, **reading: str) -> Judge:
        api = training_api(grader)
        return cls(api.load_model(model_dir), api, **reading)

    @property
    def name(self) -> str:
        return f"{self.model.name} ({self.extractor})"

    @property
    def version(self) -> str:
        return str(self.model.version)

    @property
    def extractor(self) -> str:
        return str(self.model.extractor_name)

    def _grade(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.backend_api.grade_records(
            self.model,
            frame.reindex(columns=list(JUDGE_COLUMNS)).reset_index(drop=True),
            response_text=self.response_text,  # type: ignore[arg-type]
            prompt_text=self.prompt_text,  # type: ignore[arg-type]
        )

    def before(self, items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Prompt and response severities (records x categories) before moderation; graded
        once per set of records, however many policies are counted."""
        key = _key(items)
        if key not in self._before:
            graded = self._grade(items)
            self._before[key] = (_severities(graded, "prompt"), _severities(graded, "response"))
        return self._before[key]

    def after(self, items: pd.DataFrame, final: Sequence[str], changed: np.ndarray) -> np.ndarray:
        """Response severities of the final outputs: the judge's own before-value where
        nothing changed, a fresh grade of the final output where something did."""
        _, response = self.before(items)
        out = response.copy()
        idx = np.flatnonzero(np.asarray(changed, dtype=bool))
        if len(idx):
            frame = items.iloc[idx].copy()
            frame["response"] = [final[i] for i in idx]
            out[idx] = _severities(self._grade(frame), "response")
        return out
