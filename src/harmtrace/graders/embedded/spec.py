"""The config block ``grader.embedded``: what to train on, how to grade, and the
evaluations reported beside the grader.

Fields marked ``affects_judgments: False`` (paths, the comparison and the transfer
evaluation) stay out of the spec hash in each judgment's grader version.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harmtrace.graders.base import GraderSpec
from harmtrace.graders.features import COMPARED_EXTRACTORS, DEFAULT_EXTRACTOR


class CompareSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    extractors: tuple[str, ...] = Field(
        COMPARED_EXTRACTORS, min_length=1, description="Extractors compared out-of-fold."
    )
    seeds: tuple[int, ...] = Field(
        (0,), min_length=1, description="Fold seeds; metrics as mean and sd over them."
    )


class RefusalSpec(BaseModel):
    """Where the refusal detector of relevance learns from (never the data it is tested on)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lexicon: str = Field(
        "garak-refusal", description="Dataset of refusal strings (gk_match: substring/prefix)."
    )
    labels: list[str] = Field(
        default_factory=lambda: ["pyrit-refusal"],
        min_length=1,
        description="Datasets of responses with human refusal labels, pooled.",
    )
    evaluate: list[str] = Field(
        default_factory=list,
        description="Refusal-labelled datasets the detector is only tested on (never trained "
        "on), each also held out in the refusal transfer evaluation.",
    )


class TransferSpec(BaseModel):
    """The leave-one-source-out evaluation (``harmtrace evaluate-transfer``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    holdout: tuple[str, ...] = Field(
        (),
        description=(
            "Training datasets to hold out one at a time; empty = every prompt set of "
            "train_datasets that the prompt label table maps."
        ),
    )
    harm_word_source: str | None = Field(
        "rho-overrefusal",
        description=(
            "Benign-with-harm-words prompt set whose false-positive rate is reported (null: none)."
        ),
    )
    c_from_model: bool = Field(
        True,
        description=(
            "Fit each held-out grader with the C values the trained model chose (no nested "
            "C search; keeps the DAG fast)."
        ),
    )
    inner_splits: int = Field(
        3, ge=2, description="Inner folds for Platt scaling and thresholds of each LOSO fit."
    )


class EmbeddedSpec(GraderSpec):
    """Config block ``grader.embedded``."""

    model_dir: str = Field(
        "results/models/embedded",
        description="Where the trained model, its manifest and out-of-fold scores live.",
        json_schema_extra={"affects_judgments": False},
    )
    extractor: str = Field(DEFAULT_EXTRACTOR, description="Feature extractor.")
    embedding_dir: str = Field(
        "results/embeddings",
        description=(
            "Where each dataset's embeddings (one parquet per stateless extractor part and "
            "dataset, from harmtrace embed-texts) are read; missing texts are embedded."
        ),
        json_schema_extra={"affects_judgments": False},
    )
    train_datasets: tuple[str, ...] = Field(
        ("openai-moderation",),
        min_length=1,
        description=(
            "Datasets with human labels the grader is trained on: moderation texts "
            "(label_<KEY>) and prompt sets mapped by the prompt label table."
        ),
    )
    source_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Weight of each record of a training dataset (default 1).",
    )
    folds: int = Field(5, ge=2, description="Cross-fitting folds.")
    seed: int = Field(0, description="Seed of fold assignment and model fitting.")
    prior_shift: bool = Field(
        False,
        description=(
            "Adjust each graded dataset's category probabilities to its own EM-estimated "
            "priors (Saerens et al. 2002) before severities are assigned."
        ),
    )
    prompt_text: Literal["dialogue", "last_turn"] = Field(
        "dialogue",
        description=(
            "Prompt severity reads the whole dialogue (the last turn and each earlier turn "
            "of the context, highest probability per head) or the last turn only."
        ),
    )
    response_text: Literal["conveyed", "whole"] = Field(
        "conveyed",
        description=(
            "Response severity reads what the response conveys (refusal sentences, "
            "sign-offs and pointers to help removed) or the whole text."
        ),
    )
    refusal: RefusalSpec = Field(
        default_factory=RefusalSpec, description="Training data of the refusal detector."
    )
    compare: CompareSpec = Field(
        default_factory=CompareSpec,
        description="The extractor comparison reported in the docs and the paper.",
        json_schema_extra={"affects_judgments": False},
    )
    transfer: TransferSpec = Field(
        default_factory=TransferSpec,
        description="The leave-one-source-out transfer evaluation.",
        json_schema_extra={"affects_judgments": False},
    )

    def datasets_needed(self) -> tuple[str, ...]:
        """Training texts and the refusal detector's data (its test-only sets are used
        only when the run builds them)."""
        named = (*self.train_datasets, self.refusal.lexicon, *self.refusal.labels)
        return tuple(dict.fromkeys(named))

    def datasets_tested(self) -> tuple[str, ...]:
        return tuple(self.refusal.evaluate)

    @field_validator("source_weights")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: w for k, w in v.items() if not w > 0}
        if bad:
            raise ValueError(f"weights must be positive, got {bad}")
        return v
