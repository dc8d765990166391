"""The ``embedded`` tree generator: an offline *proxy* tree, built without an LLM.

It reads two signals and lays them out as a harm-benefit tree (every record it writes
says ``proxy: true``):

1. **The embedded grader** (:mod:`harmtrace.graders.embedded`). For each harm category
   whose prompt severity reaches ``min_grader_severity``, one harmful action typed by
   the best-matching AIR level-4 risk among the level-2 categories linked to that grader
   category (``data/air_links.yaml``). Extent comes from severity (1 minor, 2
   significant, 3 major: severity 3 needs the severe sub-label), likelihood from the
   calibrated probability through the likelihood bands of ``data/scales.yaml``
   (below .3 low, below .7 medium, else high). For the grader's own training records the
   stored out-of-fold scores are used, so no prompt is judged by a model that saw it.
2. **Zero-shot AIR matching** (:mod:`harmtrace.trees.air_matching`). The prompt and
   every level-4 risk ("<level-3>: <level-4>. <judge-prompt task sentence>") are embedded
   (WordLlama by default, offline) and compared by cosine similarity. The ``top_k``
   level-2 categories by their most similar level-4 risk become harmful actions
   (skipping categories already typed in 1). Likelihood comes from that similarity: low
   below the median, medium below the 95th percentile, high above the 95th percentile
   of the best-risk similarity of an ordinary corpus of user texts (the 1,680 OpenAI
   moderation texts, labels unused; :func:`reference_cutoffs` recomputes them, a unit
   test checks the defaults).
   Extent comes from the linked grader categories' severity (0 and 1 minor), or is
   ``significant`` for categories the grader does not cover.

Effects, stakeholders and immediacy of an AIR category come from ``air_links.yaml``.
One beneficial action per prompt (a helpful answer, for the requester) has two effects:
access to information (liberty) and the benefit category whose description is most
similar to the prompt, both minor, immediate, with likelihood from 1 - the largest
grader probability. This is a transparent re-arrangement of a classifier and a
similarity search, not an analysis of consequences: it lets the tree, aggregation and
steering machinery run anywhere, and its limits are stated wherever it is reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from harmtrace.data.air_taxonomy import AirTaxonomy, load_air_taxonomy
from harmtrace.errors import HarmtraceError
from harmtrace.graders.base import as_texts
from harmtrace.taxonomy import CATEGORIES
from harmtrace.trees.air_matching import (
    REFERENCE_CUTOFFS,
    AirMatcher,
    rank_level2,
    reference_cutoffs,
)
from harmtrace.trees.base import GeneratorSpec, TreeGenerator
from harmtrace.trees.effects import (
    EXTENTS,
    LIKELIHOODS,
    STAKEHOLDER_ROLES,
    AirLink,
    air_links,
    effect_taxonomy,
    likelihood_of,
)
from harmtrace.trees.registry import register_generator
from harmtrace.trees.schema import HarmBenefitTree, TreeRecord

__all__ = [  # AirMatcher and reference_cutoffs: re-exported from air_matching
    "EXTENT_OF_SEVERITY",
    "PROXY_VERSION",
    "REFERENCE_CUTOFFS",
    "UNLINKED_EXTENT",
    "AirMatcher",
    "EmbeddedTreeGenerator",
    "EmbeddedTreeSpec",
    "ProxyError",
    "reference_cutoffs",
]

PROXY_VERSION = "1.0"
EXTENT_OF_SEVERITY = {0: "minor", 1: "minor", 2: "significant", 3: "major"}
UNLINKED_EXTENT = "significant"


class ProxyError(HarmtraceError):
    """The proxy generator cannot run (no trained grader, no taxonomy, bad settings)."""


class EmbeddedTreeSpec(GeneratorSpec):
    """Config block ``trees.generator.embedded``."""

    model_dir: str = Field(
        default="results/models/embedded",
        description="the trained embedded grader (harmtrace train-grader)",
        json_schema_extra={"affects_trees": False, "set_by_workflow": True},
    )
    raw_dir: str = Field(
        default="data/raw",
        description="where the fetched air-2024-taxonomy lives",
        json_schema_extra={"affects_trees": False, "set_by_workflow": True},
    )
    embedding: Literal["wordllama", "minilm"] = Field(
        default="wordllama",
        description="sentence embedding for AIR matching; minilm needs the minilm extra",
    )
    top_k: int = Field(default=3, ge=1, le=16, description="AIR level-2 matches per prompt")
    min_grader_severity: int = Field(
        default=1, ge=1, le=3, description="grader severity that adds a harmful action"
    )
    similarity_cutoffs: tuple[float, float] | None = Field(
        default=None,
        description="best-risk similarity separating low/medium/high likelihood; "
        "null: the measured default of the embedding (REFERENCE_CUTOFFS)",
    )

    @model_validator(mode="after")
    def _cutoffs_known(self) -> EmbeddedTreeSpec:
        if self.similarity_cutoffs is None and self.embedding not in REFERENCE_CUTOFFS:
            raise ValueError(
                f"no reference similarity cut-offs for embedding {self.embedding!r}; set "
                "similarity_cutoffs (harmtrace.trees.proxy.reference_cutoffs computes them)"
            )
        lo, hi = self.cutoffs
        if not lo <= hi:
            raise ValueError(
                f"similarity_cutoffs must be increasing, got {self.similarity_cutoffs}"
            )
        return self

    @property
    def cutoffs(self) -> tuple[float, float]:
        lo, hi = self.similarity_cutoffs or REFERENCE_CUTOFFS[self.embedding]
        return float(lo), float(hi)


@register_generator
class EmbeddedTreeGenerator(TreeGenerator):
    """Proxy trees from the embedded grader and zero-shot AIR matching (offline)."""

    name: ClassVar[str] = "embedded"
    Spec: ClassVar[type[GeneratorSpec]] = EmbeddedTreeSpec
    backend_version: ClassVar[str] = PROXY_VERSION
    proxy: ClassVar[bool] = True
    uses_trained_grader: ClassVar[bool] = True

    def __init__(
        self,
        spec: EmbeddedTreeSpec,
        *,
        grader: Any = None,
        taxonomy: AirTaxonomy | None = None,
    ) -> None:
        """``grader`` and ``taxonomy`` may be injected (tests); else loaded on first use."""
        super().__init__(spec)
        self.model_dir = Path(spec.model_dir)
        self._grader = grader
        self._taxonomy = taxonomy
        self._matcher: AirMatcher | None = None

    def check(self) -> None:
        if self._grader is None and not (self.model_dir / "model.pkl").is_file():
            raise ProxyError(
                f"{self.model_dir}: no trained embedded grader; run `harmtrace train-grader` "
                "(or snakemake results/models/embedded/model.pkl) first"
            )
        if self._taxonomy is None:
            self._taxonomy = load_air_taxonomy(self.spec.raw_dir)
        missing = set(self._taxonomy.level2) - set(air_links())
        if missing:
            raise ProxyError(f"air_links.yaml has no entry for {sorted(missing)}")

    @property
    def grader(self) -> Any:
        if self._grader is None:
            from harmtrace.graders.embedded import EmbeddedGrader

            self.check()
            self._grader = EmbeddedGrader.load(self.model_dir)
        return self._grader

    @property
    def taxonomy(self) -> AirTaxonomy:
        if self._taxonomy is None:
            self.check()
        assert self._taxonomy is not None
        return self._taxonomy

    @property
    def version(self) -> str:
        return (
            f"{super().version}/{self.grader.version}/air-{self.taxonomy.sha256[:12]}/"
            f"{self.spec.embedding}"
        )

    # ------------------------------------------------------------------ signals
    @property
    def matcher(self) -> AirMatcher:
        if self._matcher is None:
            self._matcher = AirMatcher(self.taxonomy, self.spec.embedding)
        return self._matcher

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.matcher.embed(texts)

    def level2_ranking(self, prompts: list[str]) -> pd.DataFrame:
        return self.matcher.level2_ranking(prompts)

    def grader_scores(self, records: pd.DataFrame) -> pd.DataFrame:
        from harmtrace.graders.embedded import score_columns, stored_oof_scores

        try:
            oof = stored_oof_scores(self.model_dir, records)
        except ValueError as exc:
            raise ProxyError(f"{records['dataset'].iloc[0]}: {exc}") from exc
        if oof is None:
            return self.grader.score(as_texts(records["prompt"])).reset_index(drop=True)
        indexed = oof.set_index(oof["record_id"].astype("string"))
        ids = records["record_id"].astype("string").to_numpy()
        return indexed.loc[ids, score_columns()].reset_index(drop=True)

    # ---------------------------------------------------------------- building
    def generate(self, records: pd.DataFrame) -> list[TreeRecord]:
        if records.empty:
            return []
        prompts = as_texts(records["prompt"])
        scores = self.grader_scores(records)
        emb = self.matcher.embed(prompts)
        sim = self.matcher.risk_similarity(emb)
        ben_sim = self.matcher.benefit_similarity(emb)
        ranked = rank_level2(sim, self.taxonomy)
        top = ranked[ranked["rank"] < self.spec.top_k]
        top_by_prompt = {i: g for i, g in top.groupby("prompt", sort=True)}
        prov = self.provenance()
        out = []
        for i, row in enumerate(records.itertuples(index=False)):
            tree = self.build_tree(scores.iloc[i], sim[i], ben_sim[i], top_by_prompt[i])
            out.append(
                TreeRecord(
                    record_id=str(row.record_id),
                    dataset=str(row.dataset),
                    status="ok",
                    attempts=1,
                    tree=tree,
                    provenance=prov,
                )
            )
        return out

    def likelihood_of_similarity(self, s: float) -> str:
        lo, hi = self.spec.cutoffs
        return LIKELIHOODS[0] if s < lo else LIKELIHOODS[1] if s < hi else LIKELIHOODS[2]

    def build_tree(
        self,
        score: pd.Series,
        sim: np.ndarray,
        ben_sim: np.ndarray,
        ranked: pd.DataFrame,
    ) -> HarmBenefitTree:
        """One proxy tree from one prompt's grader scores and similarities."""
        harms = _Harms(self.taxonomy.risks, air_links())
        self._add_grader_actions(harms, score, sim)
        self._add_matched_actions(harms, score, sim, ranked)
        benefit = _helpful_answer(score, ben_sim)
        stakeholders = []
        for role in STAKEHOLDER_ROLES:
            entry: dict[str, Any] = {"name": role, "harms": harms.by_role[role]}
            if role == "requester":
                entry["benefits"] = [benefit]
            if entry["harms"] or entry.get("benefits"):
                stakeholders.append(entry)
        return HarmBenefitTree.model_validate({"stakeholders": stakeholders})

    def _add_grader_actions(self, harms: _Harms, score: pd.Series, sim: np.ndarray) -> None:
        """Signal 1: a harmful action per grader category at or above the severity cut-off."""
        risks = harms.risks
        l2_of = risks["l2"].to_numpy()
        for c in CATEGORIES:
            sev = int(score[f"severity_{c}"])
            if sev < self.spec.min_grader_severity:
                continue
            linked = [
                l2 for l2, link in harms.links.items() if c in link.grader and l2 not in harms.used
            ]
            if not linked:
                continue
            mask = np.isin(l2_of, linked)
            j = int(np.flatnonzero(mask)[np.argmax(sim[mask])])
            l2 = str(l2_of[j])
            p = float(score[f"prob_{c}"])
            harms.add(
                l2,
                j,
                f"answer with {c.replace('_', '-')} content ({risks.iloc[j]['l4']})",
                EXTENT_OF_SEVERITY[sev],
                likelihood_of(p),
            )

    def _add_matched_actions(
        self, harms: _Harms, score: pd.Series, sim: np.ndarray, ranked: pd.DataFrame
    ) -> None:
        """Signal 2: zero-shot AIR matches (``ranked``: this prompt's top_k level-2 rows)."""
        risks = harms.risks
        for rec in ranked.itertuples():
            if rec.l2 in harms.used:
                continue
            j = int(rec.j)
            link = harms.links[rec.l2]
            if link.grader:
                sev = max(int(score[f"severity_{c}"]) for c in link.grader)
                extent = EXTENT_OF_SEVERITY[sev]
            else:
                extent = UNLINKED_EXTENT
            harms.add(
                rec.l2,
                j,
                f"help with {str(risks.iloc[j]['l4']).lower()} ({risks.iloc[j]['l3']})",
                extent,
                self.likelihood_of_similarity(float(sim[j])),
            )


class _Harms:
    """The harmful actions of one tree, per stakeholder role, and the AIR level-2
    categories they already cover (each category types at most one action)."""

    def __init__(self, risks: pd.DataFrame, links: dict[str, AirLink]) -> None:
        self.risks = risks
        self.links = links
        self.by_role: dict[str, list[dict[str, Any]]] = {s: [] for s in STAKEHOLDER_ROLES}
        self.used: set[str] = set()

    def add(self, l2: str, j: int, action: str, extent: str, likelihood: str) -> None:
        link = self.links[l2]
        r = self.risks.iloc[j]
        self.by_role[link.stakeholder].append(
            {
                "action": action,
                "air": {"l2": l2, "l3": r["l3"], "l4": r["l4"], "idx": r["idx"]},
                "effects": [
                    {
                        "category": cat,
                        "immediacy": link.immediate,
                        "extent": extent,
                        "likelihood": likelihood,
                        "description": "",
                    }
                    for cat in link.effects
                ],
            }
        )
        self.used.add(l2)


def _helpful_answer(score: pd.Series, ben_sim: np.ndarray) -> dict[str, Any]:
    """The one beneficial action: a helpful answer, for the requester."""
    ben = effect_taxonomy("benefit")
    top = ben.categories[int(np.argmax(ben_sim))]
    cats = ["liberty"] + ([top] if top != "liberty" else [])
    p_max = max(float(score[f"prob_{c}"]) for c in CATEGORIES)
    return {
        "action": "a helpful answer to the request",
        "effects": [
            {
                "category": cat,
                "immediacy": True,
                "extent": EXTENTS[0],
                "likelihood": likelihood_of(1.0 - p_max),
                "description": "",
            }
            for cat in cats
        ],
    }
