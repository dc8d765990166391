"""The ``embedded`` grader backend: the registry's entry point to a trained model.

It loads the model the training step saved, with the embeddings the DAG keeps for the
graded datasets, and grades training records by their stored out-of-fold scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pandas as pd

from harmtrace.errors import HarmtraceError
from harmtrace.graders.base import Grader, GraderSpec, judgment_dtypes
from harmtrace.graders.embedded.checks import spec_problems
from harmtrace.graders.embedded.columns import GRADER_NAME, GRADER_VERSION
from harmtrace.graders.embedded.grading import grade_records, grade_texts
from harmtrace.graders.embedded.model import EmbeddedGrader
from harmtrace.graders.embedded.persistence import (
    MODEL_FILE,
    oof_for_texts,
    stored_oof_scores,
)
from harmtrace.graders.embedded.spec import EmbeddedSpec
from harmtrace.graders.features import dataset_embeddings, embedding_parts, load_caches
from harmtrace.graders.prior_shift import judgment_priors
from harmtrace.graders.registry import register_grader


@register_grader
class EmbeddedBackend(Grader):
    """Grades records with the trained model in ``spec.model_dir``.

    Records the model was trained on are graded with their stored out-of-fold scores, never
    in-sample; a dataset partly inside the training set is refused
    (:func:`stored_oof_scores`).
    """

    name: ClassVar[str] = GRADER_NAME
    Spec: ClassVar[type[GraderSpec]] = EmbeddedSpec
    backend_version: ClassVar[str] = GRADER_VERSION
    trains_in_workflow: ClassVar[bool] = True
    scores_sentences: ClassVar[bool] = True
    training_api: ClassVar[str | None] = "harmtrace.graders.embedded"
    workflow_rules: ClassVar[tuple[str, ...]] = (
        "workflow/rules/train.smk",
        "workflow/rules/transfer.smk",
    )

    @classmethod
    def config_problems(cls, spec: GraderSpec, datasets: list[str], where: str) -> list[str]:
        assert isinstance(spec, EmbeddedSpec)
        return spec_problems(spec, datasets, where)

    def check(self) -> None:
        directory = Path(self.spec.model_dir)
        if not (directory / MODEL_FILE).is_file():
            raise HarmtraceError(
                f"no trained embedded grader in {directory}: run `harmtrace train-grader` "
                "(or `snakemake` to build it) first"
            )

    def load(self, datasets: Sequence[str] = ()) -> EmbeddedGrader:
        """The trained model, reading the embeddings the DAG keeps for ``datasets``."""
        self.check()
        model = EmbeddedGrader.load(self.spec.model_dir)
        paths = [
            path
            for part in embedding_parts(model.extractor_.name)
            for name in datasets
            if (path := dataset_embeddings(self.spec.embedding_dir, part, name)).is_file()
        ]
        if paths:
            model.attach_caches(load_caches(paths))
        return model

    def prompt_scores(
        self, model: EmbeddedGrader, records: pd.DataFrame, in_sample: bool = False
    ) -> tuple[pd.DataFrame | None, bool]:
        """Out-of-fold prompt scores for records the model was trained on, and whether they
        cover only some records (``partial``).

        A dataset wholly inside the training set gets its stored out-of-fold scores (one
        partly inside by record id is refused). Otherwise prompts whose *text* was a
        training text get that text's out-of-fold scores (another redistribution of a
        training set). ``in_sample`` turns both off: every prompt is scored by the final
        model (for diagnostics; such figures are in-sample).
        """
        if in_sample:
            return None, False
        try:
            scores = stored_oof_scores(self.spec.model_dir, records)
        except ValueError as exc:
            raise HarmtraceError(str(exc)) from exc
        if scores is not None:
            return scores, False
        scores = oof_for_texts(self.spec.model_dir, records)
        return scores, scores is not None

    def grade(
        self,
        records: pd.DataFrame,
        in_sample: bool = False,
        prior_shift: bool | None = None,
    ) -> pd.DataFrame:
        """Judgments; ``prior_shift`` (default: the spec's) adjusts each side's category
        probabilities to this dataset's EM priors (:mod:`harmtrace.graders.prior_shift`)."""
        model = self.load(sorted(set(records["dataset"].astype(str))) if len(records) else ())
        prompt_scores, partial = self.prompt_scores(model, records, in_sample)
        shift = self.spec.prior_shift if prior_shift is None else prior_shift
        out = grade_records(
            model,
            records,
            prompt_scores=prompt_scores,
            partial=partial,
            prior_shift=shift,
            response_text=self.spec.response_text,
            prompt_text=self.spec.prompt_text,
        )
        out["grader_version"] = f"{model.version}/spec-{self.spec.spec_hash()}"
        return out.astype(judgment_dtypes())

    def grade_shifted(
        self, records: pd.DataFrame, raw: pd.DataFrame | None = None, in_sample: bool = False
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Prior-shifted judgments and the per-side category priors (training, EM
        estimate, mean raw probability) they were shifted to; reported beside the raw
        judgments ``raw`` (graded here when not given)."""
        if raw is None:
            raw = self.grade(records, in_sample=in_sample, prior_shift=False)
        shifted = self.grade(records, in_sample=in_sample, prior_shift=True)
        return shifted, judgment_priors(self.load(), raw)

    def grade_texts(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> pd.DataFrame:
        return grade_texts(self.load(), texts, ids)
