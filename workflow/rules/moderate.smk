"""Traceable moderation: one trace per response under each configured policy, and a static
trace viewer per policy. Policies, clock and grader come from config `moderate`.

The policy simulation is notebook 06, an `analysis` entry run by the generic notebook rule
(analysis.smk, included after this file). Its model folder, user policies and the traces
it cross-checks come from the `moderate` and `grader` blocks, so they are filled into that
entry here (parameters and inputs) rather than repeated in the config.
"""

from harmtrace.graders.features import embedding_parts
from harmtrace.moderate.settings import check_moderate_config, notebook_injection

MODERATE = check_moderate_config(config, DATASETS)
TRACES_DIR = "results/traces"

for _entry in MODERATE.notebook_entries:
    _spec = ANALYSES[_entry]  # the resolved entry analysis.smk turns into its rule
    # the grader whose judgments the policies moderate
    _spec["grader"] = MODERATE.grader
    _params, _inputs = notebook_injection(
        MODERATE, list(_spec["parameters"]["policies"]), EMBEDDED_DIR, TRACES_DIR
    )
    _spec["parameters"] = {**_spec["parameters"], **_params}
    _spec["inputs"] = [*(_spec.get("inputs") or []), *_inputs]


if MODERATE.judge_dir:
    JUDGE_PARTS = embedding_parts(MODERATE.judge_extractor)

    rule train_judge:
        """The judge that counts what a policy removed: the embedded grader fitted on the
        same labels with another feature extractor (harmtrace.moderate.judge)."""
        input:
            records=TRAIN_RECORDS,
            lexicon=records(REFUSAL.get("lexicon")),
            labels=[records(name) for name in REFUSAL.get("labels") or []],
            caches=training_embeddings(JUDGE_PARTS),
        output:
            model=f"{MODERATE.judge_dir}/model.pkl",
            manifest=f"{MODERATE.judge_dir}/manifest.json",
            oof=f"{MODERATE.judge_dir}/oof_scores.parquet",
        log:
            logfile("moderate", "train_judge"),
        benchmark:
            bench("moderate", "train_judge")
        conda:
            ENV
        threads: 2
        params:
            records=lambda wildcards, input: repeat("--records", input.records),
            weights=SOURCE_WEIGHTS,
            labels=lambda wildcards, input: repeat("--refusal-labels", input.labels),
            caches=lambda wildcards, input: repeat("--embedding-cache", input.caches),
            extractor=MODERATE.judge_extractor,
            folds=EMBEDDED.get("folds"),
            seed=EMBEDDED.get("seed"),
            model_dir=lambda wildcards, output: Path(output.model).parent,
            code=code_hash(verbs=["train-grader"]),
        shell:
            "harmtrace train-grader {params.records:q} {params.weights:q} {params.caches:q} "
            "--refusal-lexicon {input.lexicon:q} {params.labels:q} "
            "--model-dir {params.model_dir:q} --extractor {params.extractor:q} "
            "--folds {params.folds} --seed {params.seed} --jobs {threads} > {log:q} 2>&1"


if MODERATE.policies and MODERATE.datasets:

    rule moderate:
        """Raw output, safety analysis, intervention and final output of every response."""
        input:
            records=records("{dataset}"),
            judgments=judgments(MODERATE.grader, "{dataset}"),
            model=f"{EMBEDDED_DIR}/model.pkl",
            embeddings=lambda wildcards: dataset_embedding_files(wildcards.dataset),
        output:
            f"{TRACES_DIR}/{{policy}}/{{dataset}}.jsonl",
        log:
            logfile("moderate", "{policy}/{dataset}"),
        benchmark:
            bench("moderate", "{policy}/{dataset}")
        wildcard_constraints:
            policy="|".join(MODERATE.policies),
            dataset="|".join(MODERATE.datasets),
        conda:
            ENV
        threads: MODERATE.workers
        params:
            spec=lambda wildcards: MODERATE.policy_spec_args(wildcards.policy),
            clock=MODERATE.clock,
            model_dir=lambda wildcards, input: Path(input.model).parent,
            caches=lambda wildcards, input: repeat(
                "--embedding-cache", input.embeddings
            ),
            code=code_hash(verbs=["moderate"]),
        shell:
            "harmtrace moderate {wildcards.dataset:q} --policy {wildcards.policy:q} "
            "{params.spec:q} --records {input.records:q} --judgments {input.judgments:q} "
            "--model-dir {params.model_dir:q} {params.caches:q} --clock {params.clock:q} "
            "--workers {threads} --out {output:q} > {log:q} 2>&1"

    rule trace_viewer:
        """A static, offline site to search, filter and read one policy's traces."""
        input:
            lambda wildcards: [
                f"{TRACES_DIR}/{wildcards.policy}/{d}.jsonl" for d in MODERATE.datasets
            ],
        output:
            index=report(
                "results/traces/{policy}/index.html",
                caption="../report/traces.rst",
                category="Moderation",
                subcategory="{policy}",
            ),
            pages=directory("results/traces/{policy}/requests"),
            assets=directory("results/traces/{policy}/assets"),
        log:
            logfile("moderate", "{policy}/viewer"),
        benchmark:
            bench("moderate", "{policy}/viewer")
        wildcard_constraints:
            policy="|".join(MODERATE.policies),
        conda:
            ENV
        params:
            traces=lambda wildcards, input: [
                a for path in input for a in ("--traces", path)
            ],
            out_dir=lambda wildcards, output: Path(output.index).parent,
            code=code_hash(verbs=["trace-viewer"]),
        shell:
            "harmtrace trace-viewer {params.traces:q} --out-dir {params.out_dir:q} "
            "> {log:q} 2>&1"

    FINAL.extend(
        expand(
            "results/traces/{policy}/index.html",
            policy=MODERATE.policies,
        )
    )
