"""What the embedded grader's config block asks of the rest of the config, checked when
the workflow is parsed (:meth:`EmbeddedBackend.config_problems`)."""

from __future__ import annotations

import logging

from harmtrace.graders.embedded.spec import EmbeddedSpec

log = logging.getLogger("harmtrace.config")


def spec_problems(spec: EmbeddedSpec, datasets: list[str], where: str) -> list[str]:
    """Datasets the grader trains, weights, learns refusal from and holds out must all be
    built by the DAG (and the weighted and held-out ones trained on)."""
    problems = [
        f"{where}.train_datasets: {name!r} is not in data.datasets"
        for name in spec.train_datasets
        if name not in datasets
    ]
    if len(set(spec.train_datasets)) != len(spec.train_datasets):
        problems.append(f"{where}.train_datasets: a dataset is listed twice")
    problems += [
        f"{where}.source_weights: {name!r} is not in {where}.train_datasets"
        for name in spec.source_weights
        if name not in spec.train_datasets
    ]
    refusal = spec.refusal
    named_refusal = [("lexicon", refusal.lexicon)]
    named_refusal += [("labels", n) for n in refusal.labels]
    for key, name in named_refusal:
        if name not in datasets:
            problems.append(f"{where}.refusal.{key}: {name!r} is not in data.datasets")
    problems += refusal_evaluate_problems(refusal.evaluate, datasets, where)
    problems += [
        f"{where}.refusal.evaluate: {name!r} is also a training set (refusal.labels)"
        for name in sorted(set(refusal.labels) & set(refusal.evaluate))
    ]
    transfer = spec.transfer
    named = [("holdout", name) for name in transfer.holdout]
    if transfer.harm_word_source is not None:
        named.append(("harm_word_source", transfer.harm_word_source))
    problems += [
        f"{where}.transfer.{key}: {name!r} is not in {where}.train_datasets"
        for key, name in named
        if name not in spec.train_datasets
    ]
    return problems


def refusal_evaluate_problems(names: list[str], datasets: list[str], where: str) -> list[str]:
    """Test-only refusal sets must be registered; one the run does not build is left out of
    the refusal transfer evaluation with a log line (`refusal_sources`), not an error."""
    from harmtrace.data.registry import load_registry

    registered = load_registry()
    problems = []
    for name in names:
        if name in datasets:
            continue
        if name not in registered:
            problems.append(
                f"{where}.refusal.evaluate: {name!r} is neither in data.datasets nor registered"
            )
        else:
            log.warning(
                "%s.refusal.evaluate: %r is not in data.datasets: left out of the refusal "
                "transfer evaluation",
                where,
                name,
            )
    return problems
