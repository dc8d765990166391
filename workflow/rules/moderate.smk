"""Traceable moderation: one trace per response under each configured policy, and a static
trace viewer per policy. Policies, clock and grader come from config `moderate`
(MODERATE in common.smk).

The policy simulation is notebook 06, an `analysis` entry run by the generic notebook rule
(analysis.smk); common.smk completes that entry from the `moderate` and `grader` blocks
(`harmtrace.moderate.settings.with_moderation`) rather than repeating them in the config.
"""

from harmtrace.graders.features import embedding_parts

if MODERATE.judge_dir:
    JUDGE_PARTS = embedding_parts(MODERATE.judge_extractor)

    rule train_judge:
        """The judge that counts what a policy removed: the trained grader fitted on the
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


if MODERATE.policies and MODERATE.datasets:

    rule moderate:
        """Raw output, safety analysis, intervention and final output of every response,
        under every policy: one job per dataset splits and scores the responses once.
        """
        input:
            records=records("{dataset}"),
            judgments=judgments(MODERATE.grader, "{dataset}"),
            model=trained_model(),
            embeddings=lambda wildcards: dataset_embedding_files(wildcards.dataset),
        output:
            [f"{TRACES_DIR}/{policy}/{{dataset}}.jsonl" for policy in MODERATE.policies],
        log:
            logfile("moderate", "{dataset}"),
        benchmark:
            bench("moderate", "{dataset}")
        wildcard_constraints:
            dataset="|".join(MODERATE.datasets),
        conda:
            ENV
        threads: MODERATE.workers
        params:
            policies=lambda wildcards, output: MODERATE.policies_args(output),
            clock=MODERATE.clock,
            model_dir=lambda wildcards, input: Path(input.model).parent,
            caches=lambda wildcards, input: repeat(
                "--embedding-cache", input.embeddings
            ),
            grader=TRAINED,
            code=grader_code(TRAINED, ["moderate"]),
        shell:
            "harmtrace moderate --grader {params.grader:q} {wildcards.dataset:q} "
            "{params.policies:q} --records {input.records:q} --judgments {input.judgments:q} "
            "--model-dir {params.model_dir:q} {params.caches:q} --clock {params.clock:q} "
            "--workers {threads} > {log:q} 2>&1"

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
