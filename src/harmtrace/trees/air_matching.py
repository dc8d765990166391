"""Zero-shot matching of prompts to AIR level-4 risks and to benefit categories.

Each level-4 risk is the text "<level-3>: <level-4>. <judge-prompt task sentence>", each
benefit category its title, description and subcategories; prompts and these texts are
embedded by a sentence embedding (WordLlama by default, offline) and compared by cosine
similarity. A level-2 category's similarity to a prompt is that of its most similar
level-4 risk; categories are ranked by it, ties broken by taxonomy order.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from harmtrace.data.air_taxonomy import AirTaxonomy
from harmtrace.graders.base import FeatureExtractor, as_texts
from harmtrace.trees.effects import effect_taxonomy

REFERENCE_QUANTILES = (0.5, 0.95)
REFERENCE_CUTOFFS: dict[str, tuple[float, float]] = {"wordllama": (0.257, 0.422)}
"""Median and 95th percentile of the best-risk similarity of the 1,680 OpenAI moderation
texts (:func:`reference_cutoffs`, rounded to 3 digits; checked by a unit test)."""


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
    cosine similarity of sentence embeddings (risk texts are embedded once, when first
    needed; ``__init__`` only stores the parameters)."""

    def __init__(self, taxonomy: AirTaxonomy, embedding: str = "wordllama") -> None:
        self.taxonomy = taxonomy
        self.embedding = embedding

    @functools.cached_property
    def extractor(self) -> FeatureExtractor:
        """The ``embedding`` extractor, built on first use."""
        from harmtrace.graders.features import make_extractor

        return make_extractor(self.embedding)

    @functools.cached_property
    def _risks(self) -> np.ndarray:
        return self.embed(match_texts(self.taxonomy))

    @functools.cached_property
    def _benefits(self) -> np.ndarray:
        return self.embed(benefit_texts())

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.extractor.transform(as_texts(texts)), dtype=np.float64)

    def risk_similarity(self, emb: np.ndarray) -> np.ndarray:
        """Cosine similarity of embedded prompts to each level-4 risk, shape (n, 314)."""
        return emb @ self._risks.T

    def benefit_similarity(self, emb: np.ndarray) -> np.ndarray:
        return emb @ self._benefits.T

    def level2_ranking(self, prompts: list[str]) -> pd.DataFrame:
        """Per prompt, level-2 categories ranked by their best level-4 similarity.

        Columns: ``prompt``, ``rank`` (0 best), ``l2``, ``j`` and ``idx`` of the best
        risk, ``sim``.
        """
        return rank_level2(self.risk_similarity(self.embed(prompts)), self.taxonomy)


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


def rank_level2(sim: np.ndarray, taxonomy: AirTaxonomy) -> pd.DataFrame:
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
