"""One adapter per dataset: raw files in, a frame of candidate records out.

Adapters only parse. Text stays exactly as published (decoded with
``surrogateescape`` so invalid UTF-8 survives to be reported, not crashed on),
and every row keeps its position in the source (``_source_row``) so that
quality checks downstream can say where a bad row came from.

Adapters register themselves in :data:`ADAPTERS` by the registry's ``adapter`` name
when their family module is imported; importing this package imports every family.
"""

from __future__ import annotations

from harmtrace.data.adapters.airbench import air_bench, air_bench_full
from harmtrace.data.adapters.base import ADAPTERS, Adapter, AdapterError, adapter
from harmtrace.data.adapters.benchmarks import (
    OPENAI_LABEL_KEYS,
    harmbench,
    openai_moderation,
    simplesafetytests,
    sorry_bench,
    wildguardtest,
    xstest,
)
from harmtrace.data.adapters.dialogues import hh_rlhf, split_transcript
from harmtrace.data.adapters.garak import GARAK_MATCH, garak_refusal
from harmtrace.data.adapters.prompt_sets import (
    HARMBENCH_KEPT,
    advbench,
    harmbench_behaviors,
    rho_overrefusal,
    rho_refusal_pairs,
    strongreject,
)
from harmtrace.data.adapters.pyrit import PYRIT_HARM_CATEGORIES, pyrit_harm, pyrit_refusal

__all__ = [
    "ADAPTERS",
    "GARAK_MATCH",
    "HARMBENCH_KEPT",
    "OPENAI_LABEL_KEYS",
    "PYRIT_HARM_CATEGORIES",
    "Adapter",
    "AdapterError",
    "adapter",
    "advbench",
    "air_bench",
    "air_bench_full",
    "garak_refusal",
    "harmbench",
    "harmbench_behaviors",
    "hh_rlhf",
    "openai_moderation",
    "pyrit_harm",
    "pyrit_refusal",
    "rho_overrefusal",
    "rho_refusal_pairs",
    "simplesafetytests",
    "sorry_bench",
    "split_transcript",
    "strongreject",
    "wildguardtest",
    "xstest",
]
