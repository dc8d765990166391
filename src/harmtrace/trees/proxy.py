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
2. **Zero-shot AIR matching.** The prompt and every level-4 risk ("<level-3>: <level-4>.
   <judge-prompt task sentence>") are embedded (WordLlama by default, offline) and
   compared by cosine similarity. The ``top_k`` level-2 categories by their most
   similar level-4 risk become harmful actions (skipping categories already typed in
   1). Likelihood comes from that similarity: low below the median, medium below the
   95th percentile, high above the 95th percentile of the best-risk similarity of an
   ordinary corpus of user texts (the 1,680 OpenAI moderation texts, labels unused;
   :func:`reference_cutoffs` recomputes them, a unit test checks the defaults).
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
from harmtrace.trees.base import GeneratorSpec, TreeGenerator
from harmtrace.trees.effects import (
    EXTENTS,
    LIKELIHOODS,
    STAKEHOLDER_ROLES,
    air_links,
    effect_taxonomy,
    likelihood_of,
)
from harmtrace.trees.registry import register_generator
from harmtrace.trees.schema import HarmBenefitTree, TreeRecord

PROXY_VERSION = "1.0"
EXTENT_OF_SEVERITY = {0: "minor", 1: "minor", 2: "significant", 3: "major"}
UNLINKED_EXTENT = "significant"


REFERENCE_QUANTILES = (0.5, 0.95)
REFERENCE_CUTOFFS: dict[str, tuple[float, float]] = {"wordllama": (0.257, 0.422)}
"""Median and 95th percentile of the best-risk similarity of the 1,680 OpenAI moderation
texts (:func:`reference_cutoffs`, rounded to 3 digits; checked by a unit test)."""


class ProxyError(HarmtraceError):
    """The proxy generator cannot run (no trained grader, no taxonomy, bad settings)."""


class EmbeddedTreeSpec(GeneratorSpec):
    """Config block ``trees.generator.embedded``."""

    model_dir: str = Field(
        default="results/models/embedded",
        description="the trained embedded grader (harmtrace train-grader)",
        json_schema_extra={"affects_trees": False},
    )
    raw_dir: str = Field(
        default="data/raw",
        description="where the fetched air-2024-taxonomy lives",
        json_schema_extra={"affects_trees": False},
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


def match_texts(taxonomy: AirTaxonomy) -> list[str]:
    r = taxonomy.risks
    return (r["l3"] + ": " + r["l4"] + ". " + r["description"]).tolist()


def benefit_texts() -> list[str]:
    tax = effect_taxonomy("benefit")
    return [
        f"{tax.titles[c]}: {tax.descriptions[c]}; "
        + "; ".join(s for cat, s in tax.subcategories.values() if cat == c)
        for c in tax.categories
    ]


def reference_cutoffs(
    embed: Any, taxonomy: AirTaxonomy, texts: list[str], quantiles=REFERENCE_QUANTILES
) -> tuple[float, float]:
    """Quantiles of the best-risk similarity over a reference corpus of texts.

    ``embed(texts) -> unit-length rows``; e.g. ``EmbeddedTreeGenerator.embed``.
    """
    best = (embed(texts) @ embed(match_texts(taxonomy)).T).max(axis=1)
    lo, hi = np.quantile(best, quantiles)
    return float(lo), float(hi)


class AirMatcher:
    """Zero-shot matching of prompts to AIR level-4 risks and to benefit categories by
    cosine similarity of sentence embeddings (risk texts are embedded once)."""

    def __init__(self, taxonomy: AirTaxonomy, embedding: str = "wordllama") -> None:
        from harmtrace.graders.features import make_extractor

        self.taxonomy = taxonomy
        self.extractor = make_extractor(embedding)
        self._risks: np.ndarray | None = None
        self._benefits: np.ndarray | None = None

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.extractor.transform(as_texts(texts)), dtype=np.float64)

    def risk_similarity(self, emb: np.ndarray) -> np.ndarray:
        """Cosine similarity of embedded prompts to each level-4 risk, shape (n, 314)."""
        if self._risks is None:
            self._risks = self.embed(match_texts(self.taxonomy))
        return emb @ self._risks.T

    def benefit_similarity(self, emb: np.ndarray) -> np.ndarray:
        if self._benefits is None:
            self._benefits = self.embed(benefit_texts())
        return emb @ self._benefits.T

    def level2_ranking(self, prompts: list[str]) -> pd.DataFrame:
        """Per prompt, level-2 categories ranked by their best level-4 similarity.

        Columns: ``prompt``, ``rank`` (0 best), ``l2``, ``j`` and ``idx`` of the best
        risk, ``sim``.
        """
        return _rank_level2(self.risk_similarity(self.embed(prompts)), self.taxonomy)


@register_generator
class EmbeddedTreeGenerator(TreeGenerator):
    """Proxy trees from the embedded grader and zero-shot AIR matching (offline)."""

    name: ClassVar[str] = "embedded"
    Spec: ClassVar[type[GeneratorSpec]] = EmbeddedTreeSpec
    backend_version: ClassVar[str] = PROXY_VERSION
    proxy: ClassVar[bool] = True
    uses_embedded_grader: ClassVar[bool] = True

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
        ranked = _rank_level2(sim, self.taxonomy)
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
        risks = self.taxonomy.risks
        links = air_links()
        harms: dict[str, list[dict[str, Any]]] = {s: [] for s in STAKEHOLDER_ROLES}
        used_l2: set[str] = set()
        l2_of = risks["l2"].to_numpy()

        def add(l2: str, j: int, action: str, extent: str, likelihood: str) -> None:
            link = links[l2]
            r = risks.iloc[j]
            harms[link.stakeholder].append(
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
            used_l2.add(l2)

        # 1. grader categories at or above the severity cut-off
        for c in CATEGORIES:
            sev = int(score[f"severity_{c}"])
            if sev < self.spec.min_grader_severity:
                continue
            linked = [l2 for l2, link in links.items() if c in link.grader and l2 not in used_l2]
            if not linked:
                continue
            mask = np.isin(l2_of, linked)
            j = int(np.flatnonzero(mask)[np.argmax(sim[mask])])
            l2 = str(l2_of[j])
            p = float(score[f"prob_{c}"])
            add(
                l2,
                j,
                f"answer with {c.replace('_', '-')} content ({risks.iloc[j]['l4']})",
                EXTENT_OF_SEVERITY[sev],
                likelihood_of(p),
            )

        # 2. zero-shot AIR matches (``ranked``: this prompt's top_k level-2 rows)
        for rec in ranked.itertuples():
            if rec.l2 in used_l2:
                continue
            j = int(rec.j)
            link = links[rec.l2]
            if link.grader:
                sev = max(int(score[f"severity_{c}"]) for c in link.grader)
                extent = EXTENT_OF_SEVERITY[sev]
            else:
                extent = UNLINKED_EXTENT
            add(
                rec.l2,
                j,
                f"help with {str(risks.iloc[j]['l4']).lower()} ({risks.iloc[j]['l3']})",
                extent,
                self.likelihood_of_similarity(float(sim[j])),
            )

        # benefits: a helpful answer, for the requester
        ben = effect_taxonomy("benefit")
        top = ben.categories[int(np.argmax(ben_sim))]
        cats = ["liberty"] + ([top] if top != "liberty" else [])
        p_max = max(float(score[f"prob_{c}"]) for c in CATEGORIES)
        benefit = {
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
        stakeholders = []
        for role in STAKEHOLDER_ROLES:
            entry: dict[str, Any] = {"name": role, "harms": harms[role]}
            if role == "requester":
                entry["benefits"] = [benefit]
            if entry["harms"] or entry.get("benefits"):
                stakeholders.append(entry)
        return HarmBenefitTree.model_validate({"stakeholders": stakeholders})


def best_per_level2(sim: np.ndarray, taxonomy: AirTaxonomy) -> tuple[np.ndarray, np.ndarray]:
    """For each prompt and level-2 category (taxonomy order): the column of its most
    similar level-4 risk and that similarity; shapes (n, 16)."""
    l2_of = taxonomy.risks["l2"].to_numpy()
    names = list(taxonomy.level2)
    best_j = np.empty((sim.shape[0], len(names)), dtype=np.int64)
    for g, name in enumerate(names):
        idx = np.flatnonzero(l2_of == name)
        best_j[:, g] = idx[np.argmax(sim[:, idx], axis=1)]
    return best_j, np.take_along_axis(sim, best_j, axis=1)


def _rank_level2(sim: np.ndarray, taxonomy: AirTaxonomy) -> pd.DataFrame:
    """Level-2 categories per prompt ranked by the similarity of their best level-4 risk
    (ties broken by taxonomy order)."""
    names = np.asarray(taxonomy.level2, dtype=object)
    best_j, best_s = best_per_level2(sim, taxonomy)
    order = np.argsort(-best_s, axis=1, kind="stable")
    n, k = order.shape
    j = np.take_along_axis(best_j, order, axis=1)
    return pd.DataFrame(
        {
            "prompt": np.repeat(np.arange(n), k),
            "rank": np.tile(np.arange(k), n),
            "l2": names[order].ravel(),
            "j": j.ravel(),
            "idx": taxonomy.risks["idx"].to_numpy()[j.ravel()],
            "sim": np.take_along_axis(best_s, order, axis=1).ravel(),
        }
    )
