"""Models under study (targets): prompts in, answers with provenance out.

* :mod:`harmtrace.targets.base` -- the :class:`Target` contract and :class:`Answer`.
* :mod:`harmtrace.targets.registry` -- backends by name (``transformers``, ``openai``).
* :mod:`harmtrace.targets.respond` -- a shard of prompt records to answer records,
  resumable after a kill.
"""
