"""Prompt -> response risk transitions on judged records: every statistic of them.

Pure functions on pandas frames, called from the analysis notebooks. The
input is a judgments frame with ``record_id``, ``prompt_severity_<cat>`` and
``response_severity_<cat>`` for every category in
:data:`harmtrace.taxonomy.CATEGORIES` (nullable ints 0..3; the response
columns are null for records without a response) and ``relevance`` (1..3),
optionally merged with record columns (``dataset``, ``hh_side``,
``hh_pair_id``, ...).

Most functions take the *long* frame from :func:`long_format`: one row per
record x category, plus the ``"overall"`` pseudo-category (record severity =
max over categories). Outputs are tidy frames with counts, shares and 95%
intervals, so a notebook only formats them.

Two populations recur. A record x category whose prompt is already at
severity 0 cannot de-escalate, so a (0, 0) pair counts as "preserve" and
dilutes the de-escalation share; every share function therefore lets the
caller restrict to prompts with severity > 0 (``prompt_positive``), which is
the population where de-escalation is possible.

Two units recur too. :mod:`.shares`, :mod:`.category` and :mod:`.paired` count
category cells (or pairs) as units; :mod:`.clustered` resamples and tests whole
records, since a record adds one cell per category. :mod:`.frames` builds the long
frame they all start from. ``wilson_interval`` is re-exported from
:mod:`harmtrace.analysis.rates`, where it is defined, for callers of its old place here.
"""

from harmtrace.analysis.rates import wilson_interval

from .category import CategoryAsymmetry, category_asymmetry
from .clustered import (
    METRICS,
    category_rates,
    category_ratios,
    clustered_chi2,
    deescalation_logit,
    escalation_origin_summary,
    record_counts,
    severity_ordinal,
)
from .frames import (
    CATEGORY_LEVELS,
    OVERALL,
    POOLED,
    add_pooled,
    long_format,
    overall_severity,
    transition,
)
from .paired import HH_SIDES, PairedSideComparison, paired_sample, paired_side_comparison
from .shares import (
    POPULATIONS,
    escalation_origin,
    escalation_relevance,
    persistence_drift,
    relevance_by_response_severity,
    severity_matrix,
    shares_by_population,
    transition_shares,
)

__all__ = [
    "CATEGORY_LEVELS",
    "HH_SIDES",
    "METRICS",
    "OVERALL",
    "POOLED",
    "POPULATIONS",
    "CategoryAsymmetry",
    "PairedSideComparison",
    "add_pooled",
    "category_asymmetry",
    "category_rates",
    "category_ratios",
    "clustered_chi2",
    "deescalation_logit",
    "escalation_origin",
    "escalation_origin_summary",
    "escalation_relevance",
    "long_format",
    "overall_severity",
    "paired_sample",
    "paired_side_comparison",
    "persistence_drift",
    "record_counts",
    "relevance_by_response_severity",
    "severity_matrix",
    "severity_ordinal",
    "shares_by_population",
    "transition",
    "transition_shares",
    "wilson_interval",
]
