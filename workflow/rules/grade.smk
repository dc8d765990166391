"""Grading: every configured backend judges every dataset it grades, in shards; the
relevance check and the prompt flag rates."""

RELEVANCE_DATASET = relevance_check_dataset(config)


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
        # measured: a trained-grader shard of 20,000 records peaks at 0.6 GB (100,000: 1.5 GB)
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


FINAL.extend(
    judgments(grader, dataset) for grader in GRADERS for dataset in GRADED[grader]
)


if RELEVANCE_DATASET and TRAINED:  # its refusal detector is the trained grader's

    rule validate_relevance:
        """Agreement of the relevance/refusal method with a judge's refusal scores."""
        input:
            records=records(RELEVANCE_DATASET),
            judgments=judgments(PRIMARY_GRADER, RELEVANCE_DATASET),
            model=trained_model(),
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
            grader=TRAINED,
            code=grader_code(TRAINED, ["validate-relevance"]),
        shell:
            "harmtrace validate-relevance --grader {params.grader:q} "
            "--records {input.records:q} "
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
