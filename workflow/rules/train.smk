"""Training of the grader the workflow trains itself (TRAINED in common.smk): embeddings,
the model with its out-of-fold scores, its validity and the extractor comparison.

Its backend declares this file (``workflow_rules``); the Snakefile includes it only when
that backend is the run's trained grader.
"""

from harmtrace.graders.features import dataset_embeddings

if EMBED_PARTS or COMPARED_PARTS:

    rule embed_texts:
        """Embed every training text once per embedding part of the extractor (e.g. minilm
        in tfidf+minilm); training and the transfer evaluation read the vectors."""
        input:
            records=TRAIN_RECORDS,
        output:
            trained_model("embeddings--{part}.parquet"),
        log:
            logfile("grade", "embed_texts/{part}"),
        benchmark:
            bench("grade", "embed_texts/{part}")
        wildcard_constraints:
            part="|".join(dict.fromkeys(EMBED_PARTS + COMPARED_PARTS)),
        conda:
            ENV
        # on the critical path (training waits for it): both cores
        threads: 2
        params:
            grader=TRAINED,
            code=grader_code(TRAINED, ["embed-texts"]),
        shell:
            "harmtrace embed-texts --grader {params.grader:q} "
            "{input.records:q} --extractor {wildcards.part:q} "
            "--threads {threads} --out {output:q} > {log:q} 2>&1"

    rule embed_dataset:
        """Embed once every text the trained grader reads in one dataset (prompts,
        responses, what each response conveys) and, where it is moderated, each response
        sentence; grading and moderation read the vectors."""
        input:
            records=records("{dataset}"),
            model=trained_model(),
            # the training texts' vectors, reused instead of encoded again
            known=trained_model("embeddings--{part}.parquet"),
        output:
            str(dataset_embeddings(EMBEDDING_DIR, "{part}", "{dataset}")),
        log:
            logfile("grade", "embed_dataset/{part}/{dataset}"),
        benchmark:
            bench("grade", "embed_dataset/{part}/{dataset}")
        wildcard_constraints:
            part="|".join(EMBED_PARTS),
        conda:
            ENV
        resources:
            mem_mb=2000,
        params:
            model_dir=lambda wildcards, input: Path(input.model).parent,
            sentences=lambda wildcards: (
                "--sentences" if wildcards.dataset in moderated_datasets() else ""
            ),
            grader=TRAINED,
            code=grader_code(TRAINED, ["embed-texts"]),
        shell:
            "harmtrace embed-texts --grader {params.grader:q} "
            "{input.records:q} --extractor {wildcards.part:q} "
            "--model-dir {params.model_dir:q} {params.sentences} --threads {threads} "
            "--known {input.known:q} --out {output:q} > {log:q} 2>&1"


rule train_grader:
    """Fit the trained grader on human labels of moderation texts and prompt sets, with
    its refusal detector; score every training text out-of-fold."""
    input:
        records=TRAIN_RECORDS,
        lexicon=records(REFUSAL.get("lexicon")),
        labels=[records(name) for name in REFUSAL.get("labels") or []],
        caches=EMBEDDING_CACHES,
    output:
        model=trained_model(),
        manifest=trained_model("manifest.json"),
        oof=trained_model("oof_scores.parquet"),
    log:
        logfile("grade", "train_grader"),
    benchmark:
        bench("grade", "train_grader")
    # on the critical path (grading, trees and moderation wait for it): first, with the
    # fold models fitted in parallel
    priority: 10
    conda:
        ENV
    threads: 2
    params:
        records=lambda wildcards, input: repeat("--records", input.records),
        weights=SOURCE_WEIGHTS,
        labels=lambda wildcards, input: repeat("--refusal-labels", input.labels),
        caches=repeat("--embedding-cache", EMBEDDING_CACHES),
        extractor=TRAINED_SPEC.get("extractor"),
        folds=TRAINED_SPEC.get("folds"),
        seed=TRAINED_SPEC.get("seed"),
        model_dir=lambda wildcards, output: Path(output.model).parent,
        grader=TRAINED,
        code=grader_code(TRAINED, ["train-grader"]),
    shell:
        "harmtrace train-grader --grader {params.grader:q} "
        "{params.records:q} {params.weights:q} {params.caches:q} "
        "--refusal-lexicon {input.lexicon:q} {params.labels:q} "
        "--model-dir {params.model_dir:q} --extractor {params.extractor:q} "
        "--folds {params.folds} --seed {params.seed} --jobs {threads} > {log:q} 2>&1"


rule evaluate_grader:
    """Out-of-fold validity of the trained grader against its moderation training labels."""
    input:
        records=TRAIN_RECORDS,
        model=rules.train_grader.output.model,
        oof=rules.train_grader.output.oof,
    output:
        numbers=numbers("grader"),
        table=report(
            "results/tables/grader--oof_metrics.tex",
            caption="../report/grader.rst",
            category="Grader",
        ),
    log:
        logfile("grade", "evaluate_grader"),
    benchmark:
        bench("grade", "evaluate_grader")
    conda:
        ENV
    params:
        records=lambda wildcards, input: repeat("--records", input.records),
        model_dir=lambda wildcards, input: Path(input.model).parent,
        grader=TRAINED,
        code=grader_code(TRAINED, ["evaluate-grader"]),
    shell:
        "harmtrace evaluate-grader --grader {params.grader:q} "
        "{params.records:q} --model-dir {params.model_dir:q} "
        "--numbers {output.numbers:q} --table {output.table:q} > {log:q} 2>&1"


rule compare_extractors:
    """Each offline feature extractor: out-of-fold AUROC/AUPRC/F1 on the moderation texts
    and leave-one-source-out AUROC on the prompt sets, and the rule's pick."""
    input:
        records=TRAIN_RECORDS,
        caches=training_embeddings(COMPARED_PARTS),
    output:
        results=trained_model("extractor_comparison.parquet"),
        loso=trained_model("extractor_loso.parquet"),
        numbers=numbers("extractors"),
        table=report(
            "results/tables/extractors--comparison.tex",
            caption="../report/extractors.rst",
            category="Grader",
        ),
        # measured rates: a timing like the benchmark files, not a byte-stable product
        throughput="results/benchmarks/grade/extractor_throughput.json",
    log:
        logfile("grade", "compare_extractors"),
    benchmark:
        bench("grade", "compare_extractors")
    conda:
        ENV
    params:
        records=lambda wildcards, input: repeat("--records", input.records),
        extractors=",".join(TRAINED_SPEC.get("compare", {}).get("extractors", [])),
        seeds=",".join(str(s) for s in TRAINED_SPEC.get("compare", {}).get("seeds", [])),
        folds=TRAINED_SPEC.get("folds"),
        configured=TRAINED_SPEC.get("extractor"),
        caches=lambda wildcards, input: repeat("--embedding-cache", input.caches),
        inner=(TRAINED_SPEC.get("transfer") or {}).get("inner_splits", 3),
        grader=TRAINED,
        code=grader_code(TRAINED, ["compare-extractors"]),
    shell:
        "harmtrace compare-extractors --grader {params.grader:q} "
        "{params.records:q} {params.caches:q} "
        "--extractors {params.extractors:q} --seeds {params.seeds:q} --folds {params.folds} "
        "--configured {params.configured:q} --out {output.results:q} "
        "--loso-out {output.loso:q} --inner-splits {params.inner} "
        "--numbers {output.numbers:q} --table {output.table:q} "
        "--throughput {output.throughput:q} > {log:q} 2>&1"


FINAL.extend(rules.train_grader.output)
FINAL.extend(rules.evaluate_grader.output)
FINAL.extend(rules.compare_extractors.output)
PAPER_NUMBERS.extend(
    [rules.evaluate_grader.output.numbers, rules.compare_extractors.output.numbers]
)
PAPER_ASSETS.extend(
    [rules.evaluate_grader.output.table, rules.compare_extractors.output.table]
)
