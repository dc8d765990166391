from harmtrace.graders.features import (
    DEFAULT_EXTRACTOR,
    dataset_embeddings,
    embedding_parts,
)

EMBEDDED = grader_block("embedded")
TRAIN = EMBEDDED.get("train_datasets") or []
TRAIN_RECORDS = [records(d) for d in TRAIN]
REFUSAL = EMBEDDED.get("refusal") or {}
RELEVANCE_DATASET = relevance_check_dataset(config)


EMBED_PARTS = embedding_parts(EMBEDDED.get("extractor") or DEFAULT_EXTRACTOR)
COMPARED = (EMBEDDED.get("compare") or {}).get("extractors") or []
COMPARED_PARTS = list(
    dict.fromkeys(p for name in COMPARED for p in embedding_parts(name))
)
"""Stateless parts of the compared extractors (their training embeddings are cached too)."""


EMBEDDING_CACHES = training_embeddings(EMBED_PARTS)
EMBEDDING_DIR = EMBEDDED.get("embedding_dir", "results/embeddings")


if EMBED_PARTS or COMPARED_PARTS:

    rule embed_texts:
        """Embed every training text once per embedding part of the extractor (e.g. minilm
        in tfidf+minilm); training and the transfer evaluation read the vectors."""
        input:
            records=TRAIN_RECORDS,
        output:
            f"{EMBEDDED_DIR}/embeddings--{{part}}.parquet",
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
            code=code_hash(verbs=["embed-texts"]),
        shell:
            "harmtrace embed-texts {input.records:q} --extractor {wildcards.part:q} "
            "--threads {threads} --out {output:q} > {log:q} 2>&1"

    rule embed_dataset:
        """Embed once every text the trained grader reads in one dataset (prompts,
        responses, what each response conveys) and, where it is moderated, each response
        sentence; grading and moderation read the vectors."""
        input:
            records=records("{dataset}"),
            model=f"{EMBEDDED_DIR}/model.pkl",
            # the training texts' vectors, reused instead of embedded again
            known=f"{EMBEDDED_DIR}/embeddings--{{part}}.parquet",
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
            code=code_hash(verbs=["embed-texts"]),
        shell:
            "harmtrace embed-texts {input.records:q} --extractor {wildcards.part:q} "
            "--model-dir {params.model_dir:q} {params.sentences} --threads {threads} "
            "--known {input.known:q} --out {output:q} > {log:q} 2>&1"


SOURCE_WEIGHTS = repeat(
    "--source-weight",
    [
        f"{name}={weight}"
        for name, weight in sorted((EMBEDDED.get("source_weights") or {}).items())
    ],
)


rule train_grader:
    """Fit the embedded grader on human labels of moderation texts and prompt sets, with
    its refusal detector; score every training text out-of-fold."""
    input:
        records=TRAIN_RECORDS,
        lexicon=records(REFUSAL.get("lexicon")),
        labels=[records(name) for name in REFUSAL.get("labels") or []],
        caches=EMBEDDING_CACHES,
    output:
        model=f"{EMBEDDED_DIR}/model.pkl",
        manifest=f"{EMBEDDED_DIR}/manifest.json",
        oof=f"{EMBEDDED_DIR}/oof_scores.parquet",
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
        extractor=EMBEDDED.get("extractor"),
        folds=EMBEDDED.get("folds"),
        seed=EMBEDDED.get("seed"),
        model_dir=lambda wildcards, output: Path(output.model).parent,
        code=code_hash(verbs=["train-grader"]),
    shell:
        "harmtrace train-grader {params.records:q} {params.weights:q} {params.caches:q} "
        "--refusal-lexicon {input.lexicon:q} {params.labels:q} "
        "--model-dir {params.model_dir:q} --extractor {params.extractor:q} "
        "--folds {params.folds} --seed {params.seed} --jobs {threads} > {log:q} 2>&1"


rule evaluate_grader:
    """Out-of-fold validity of the embedded grader against its moderation training labels."""
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
        code=code_hash(verbs=["evaluate-grader"]),
    shell:
        "harmtrace evaluate-grader {params.records:q} --model-dir {params.model_dir:q} "
        "--numbers {output.numbers:q} --table {output.table:q} > {log:q} 2>&1"


rule compare_extractors:
    """Each offline feature extractor: out-of-fold AUROC/AUPRC/F1 on the moderation texts
    and leave-one-source-out AUROC on the prompt sets, and the rule's pick."""
    input:
        records=TRAIN_RECORDS,
        caches=training_embeddings(COMPARED_PARTS),
    output:
        results=f"{EMBEDDED_DIR}/extractor_comparison.parquet",
        loso=f"{EMBEDDED_DIR}/extractor_loso.parquet",
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
        extractors=",".join(EMBEDDED.get("compare", {}).get("extractors", [])),
        seeds=",".join(str(s) for s in EMBEDDED.get("compare", {}).get("seeds", [])),
        folds=EMBEDDED.get("folds"),
        configured=EMBEDDED.get("extractor"),
        caches=lambda wildcards, input: repeat("--embedding-cache", input.caches),
        inner=(EMBEDDED.get("transfer") or {}).get("inner_splits", 3),
        code=code_hash(verbs=["compare-extractors"]),
    shell:
        "harmtrace compare-extractors {params.records:q} {params.caches:q} "
        "--extractors {params.extractors:q} --seeds {params.seeds:q} --folds {params.folds} "
        "--configured {params.configured:q} --out {output.results:q} "
        "--loso-out {output.loso:q} --inner-splits {params.inner} "
        "--numbers {output.numbers:q} --table {output.table:q} "
        "--throughput {output.throughput:q} > {log:q} 2>&1"


checkpoint shard_plan:
    """How many grading shards of grade.shard_size records a dataset needs."""
    input:
        records=records("{dataset}"),
    output:
        shard_plan_file("{dataset}"),
    log:
        logfile("grade", "shard_plan/{dataset}"),
    benchmark:
        bench("grade", "shard_plan/{dataset}")
    conda:
        ENV
    params:
        shard_size=SHARD_SIZE,
        code=code_hash(verbs=["shard-plan"]),
    shell:
        "harmtrace shard-plan --records {input.records:q} --shard-size {params.shard_size} "
        "--out {output:q} > {log:q} 2>&1"


rule grade_shard:
    """Severity, confidence and relevance for one shard of one dataset, by one backend."""
    input:
        unpack(grader_inputs),
        records=records("{dataset}"),
    output:
        judgment_shard("{grader}", "{dataset}", "{shard}", "{shards}"),
    log:
        logfile("grade", "{grader}/{dataset}/{shard}-of-{shards}"),
    benchmark:
        bench("grade", "{grader}/{dataset}/{shard}-of-{shards}")
    wildcard_constraints:
        shard=r"\d+",
        shards=r"\d+",
    conda:
        ENV
    resources:
        # measured: an embedded shard of 20,000 records peaks at 0.6 GB (100,000: 1.5 GB)
        mem_mb=2000,
    params:
        spec=lambda wildcards: json.dumps(
            grader_block(wildcards.grader), sort_keys=True
        ),
        code=lambda wildcards: grader_code(wildcards.grader),
    shell:
        "harmtrace grade {wildcards.dataset:q} --grader {wildcards.grader:q} "
        "--spec {params.spec:q} --records {input.records:q} "
        "--shard {wildcards.shard}/{wildcards.shards} --out {output:q} > {log:q} 2>&1"


rule grade:
    """One dataset's judgments by one backend: its shards gathered in record order, every
    record judged exactly once."""
    input:
        records=records("{dataset}"),
        shards=judgment_shards,
    output:
        judgments("{grader}", "{dataset}"),
    log:
        logfile("grade", "{grader}/{dataset}"),
    benchmark:
        bench("grade", "{grader}/{dataset}")
    conda:
        ENV
    params:
        code=code_hash(verbs=["gather-judgments"]),
    shell:
        "harmtrace gather-judgments --out {output:q} --records {input.records:q} "
        "{input.shards:q} > {log:q} 2>&1"


FINAL.extend(rules.train_grader.output)
FINAL.extend(rules.evaluate_grader.output)
FINAL.extend(rules.compare_extractors.output)
FINAL.extend(
    judgments(grader, dataset) for grader in GRADERS for dataset in GRADED[grader]
)
PAPER_NUMBERS.extend(
    [rules.evaluate_grader.output.numbers, rules.compare_extractors.output.numbers]
)
PAPER_ASSETS.extend(
    [rules.evaluate_grader.output.table, rules.compare_extractors.output.table]
)


if RELEVANCE_DATASET:

    rule validate_relevance:
        """Agreement of the relevance/refusal method with a judge's refusal scores."""
        input:
            records=records(RELEVANCE_DATASET),
            judgments=judgments(PRIMARY_GRADER, RELEVANCE_DATASET),
            model=rules.train_grader.output.model,
        output:
            numbers=numbers("relevance"),
            table=report(
                "results/tables/relevance--validation.tex",
                caption="../report/relevance.rst",
                category="Grader",
            ),
            refusal=report(
                "results/tables/relevance--refusal.tex",
                caption="../report/refusal.rst",
                category="Grader",
            ),
        log:
            logfile("grade", "validate_relevance"),
        benchmark:
            bench("grade", "validate_relevance")
        conda:
            ENV
        params:
            model_dir=lambda wildcards, input: Path(input.model).parent,
            code=code_hash(verbs=["validate-relevance"]),
        shell:
            "harmtrace validate-relevance --records {input.records:q} "
            "--judgments {input.judgments:q} --model-dir {params.model_dir:q} "
            "--numbers {output.numbers:q} --table {output.table:q} "
            "--refusal-table {output.refusal:q} > {log:q} 2>&1"

    PAPER_NUMBERS.append(rules.validate_relevance.output.numbers)
    PAPER_ASSETS.extend(
        [
            rules.validate_relevance.output.table,
            rules.validate_relevance.output.refusal,
        ]
    )


rule flag_rates:
    """Prompt flag rates per dataset: how much known harm the thresholds still catch."""
    input:
        expand(judgments(PRIMARY_GRADER, "{dataset}"), dataset=GRADED[PRIMARY_GRADER]),
    output:
        numbers("flags"),
    log:
        logfile("grade", "flag_rates"),
    benchmark:
        bench("grade", "flag_rates")
    conda:
        ENV
    params:
        code=code_hash(verbs=["flag-rates"]),
    shell:
        "harmtrace flag-rates --out {output:q} {input:q} > {log:q} 2>&1"


PAPER_NUMBERS.append(rules.flag_rates.output[0])
