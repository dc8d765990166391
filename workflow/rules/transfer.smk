"""Transfer of the trained grader (TRAINED in common.smk) to prompt sources it never saw,
refusal detection across sources, and prior shift.

Its backend declares this file (``workflow_rules``); the Snakefile includes it only when
that backend is the run's trained grader.
"""

from harmtrace.config import refusal_sources
from harmtrace.graders.labels import load_label_map

TRANSFER = TRAINED_SPEC.get("transfer") or {}
PROMPT_SOURCES = TRANSFER.get("holdout") or [d for d in TRAIN if d in load_label_map()]
HARM_WORD = [TRANSFER["harm_word_source"]] if TRANSFER.get("harm_word_source") else []


if PROMPT_SOURCES:

    rule evaluate_transfer:
        """Leave-one-source-out: a grader fitted without each prompt set scores it; metrics
        next to the out-of-fold (in-source) ones."""
        input:
            records=TRAIN_RECORDS,
            caches=EMBEDDING_CACHES,
            model=trained_model(),
            oof=trained_model("oof_scores.parquet"),
        output:
            metrics=trained_model("transfer_metrics.parquet"),
            numbers=numbers("transfer"),
            table=report(
                "results/tables/transfer--loso.tex",
                caption="../report/transfer.rst",
                category="Grader",
            ),
        log:
            logfile("grade", "evaluate_transfer"),
        benchmark:
            bench("grade", "evaluate_transfer")
        conda:
            ENV
        params:
            records=lambda wildcards, input: repeat("--records", input.records),
            holdout=repeat("--holdout", TRANSFER.get("holdout") or []),
            weights=SOURCE_WEIGHTS,
            caches=repeat("--embedding-cache", EMBEDDING_CACHES),
            harm_word=repeat("--harm-word-source", HARM_WORD),
            c_from_model=(
                "--c-from-model"
                if TRANSFER.get("c_from_model")
                else "--no-c-from-model"
            ),
            inner_splits=TRANSFER.get("inner_splits"),
            seed=TRAINED_SPEC.get("seed"),
            model_dir=lambda wildcards, input: Path(input.model).parent,
            grader=TRAINED,
            code=grader_code(TRAINED, ["evaluate-transfer"]),
        shell:
            "harmtrace evaluate-transfer --grader {params.grader:q} "
            "{params.records:q} {params.holdout:q} {params.weights:q} "
            "{params.caches:q} "
            "--model-dir {params.model_dir:q} {params.harm_word:q} "
            "{params.c_from_model} --inner-splits {params.inner_splits} --seed {params.seed} "
            "--out {output.metrics:q} --numbers {output.numbers:q} --table {output.table:q} "
            "> {log:q} 2>&1"

    FINAL.extend(rules.evaluate_transfer.output)
    PAPER_NUMBERS.append(rules.evaluate_transfer.output.numbers)
    PAPER_ASSETS.append(rules.evaluate_transfer.output.table)


REFUSAL_SOURCES = refusal_sources(config, DATASETS)


if len(REFUSAL_SOURCES) >= 2:

    rule evaluate_refusal_transfer:
        """Refusal detection per refusal-labelled source: fitted on it (out-of-fold), on
        the other sources, and as deployed (trained on refusal.labels)."""
        input:
            lexicon=records(REFUSAL.get("lexicon")),
            sources=[records(name) for name in REFUSAL_SOURCES],
        output:
            metrics=trained_model("refusal_transfer.parquet"),
            numbers=numbers("refusal_transfer"),
            table=report(
                "results/tables/refusal_transfer--loso.tex",
                caption="../report/refusal_transfer.rst",
                category="Grader",
            ),
        log:
            logfile("grade", "evaluate_refusal_transfer"),
        benchmark:
            bench("grade", "evaluate_refusal_transfer")
        conda:
            ENV
        params:
            sources=lambda wildcards, input: repeat("--source", input.sources),
            train=repeat("--train", REFUSAL.get("labels") or []),
            seed=TRAINED_SPEC.get("seed"),
            code=code_hash(verbs=["evaluate-refusal-transfer"]),
        shell:
            "harmtrace evaluate-refusal-transfer --lexicon {input.lexicon:q} "
            "{params.sources:q} {params.train:q} --seed {params.seed} "
            "--out {output.metrics:q} --numbers {output.numbers:q} --table {output.table:q} "
            "> {log:q} 2>&1"

    FINAL.extend(rules.evaluate_refusal_transfer.output)
    PAPER_NUMBERS.append(rules.evaluate_refusal_transfer.output.numbers)
    PAPER_ASSETS.append(rules.evaluate_refusal_transfer.output.table)


if TRAINED_SPEC.get("prior_shift"):

    rule prior_shift:
        """With the trained grader's prior_shift the judgments are adjusted to each dataset's
        EM priors; this keeps the unadjusted judgments and the priors beside them.
        """
        input:
            records=records("{dataset}"),
            model=trained_model(),
        output:
            raw="results/prior_shift/{dataset}--raw_judgments.parquet",
            priors="results/prior_shift/{dataset}--priors.parquet",
        log:
            logfile("grade", "prior_shift/{dataset}"),
        benchmark:
            bench("grade", "prior_shift/{dataset}")
        conda:
            ENV
        params:
            spec=json.dumps(TRAINED_SPEC, sort_keys=True),
            scratch=lambda wildcards: f"results/prior_shift/{wildcards.dataset}--adjusted.tmp.parquet",
            grader=TRAINED,
            code=grader_code(TRAINED),
        shell:
            "harmtrace grade {wildcards.dataset:q} --grader {params.grader:q} --spec {params.spec:q} "
            "--records {input.records:q} --out {params.scratch:q} --raw-out {output.raw:q} "
            "--priors-out {output.priors:q} > {log:q} 2>&1 && rm -f {params.scratch:q}"

    FINAL.extend(expand(rules.prior_shift.output, dataset=GRADED.get(TRAINED, [])))
