"""Path helpers, input functions and shared state derived from config.

Rules name no dataset or grader; every path below follows config. Each rule's `code`
param hashes the harmtrace modules it runs (harmtrace.codehash), so a library edit
replans exactly the affected jobs.
"""

import json
import os
import re
from pathlib import Path

from harmtrace.codehash import code_hash
from harmtrace.data.air_taxonomy import DATASET as AIR_TAXONOMY
from harmtrace.config import (
    answer_sets,
    check_config,
    enabled_analyses,
    graded_datasets,
    paper_enabled,
    source_datasets,
)
from harmtrace.study import (
    backend_rules,
    graders,
    primary_grader,
    relevance_check_dataset,
    study_targets,
    trained_grader,
)
from harmtrace.graders.features import DEFAULT_EXTRACTOR, embedding_parts
from harmtrace.graders.registry import GRADERS as GRADER_REGISTRY
from harmtrace.moderate.settings import check_moderate_config, with_moderation
from harmtrace.trees.registry import generator_class
from harmtrace.targets.registry import BUILTIN as TARGET_MODULES, make_target_spec

DATASETS = check_config(config)
USER_DATASETS = config["data"].get("user_datasets") or {}
SOURCES = source_datasets(config)
"""Datasets read from files (registered or the user's); the rest are answer datasets."""
ANSWERS = answer_sets(config)
"""Answer datasets of the respond stage: name -> (prompt set, target, harmful|benign)."""
RAW = config["data"]["raw_dir"]
ALLOW_UNPINNED = [
    arg
    for name in config["data"].get("allow_unpinned") or []
    for arg in ("--allow-unpinned", name)
]
GRADERS = graders(config)
"""grade.graders plus the study's grader and reference grader."""
PRIMARY_GRADER = primary_grader(config)
"""The study's grader: prompt flag rates and the relevance check read its judgments."""
GRADED = {grader: graded_datasets(config, grader) for grader in GRADERS}
"""Datasets each backend grades (grade.datasets; every dataset unless listed)."""
ENV = "../../environment.yml"

# Producers register their products here; `rule all` and the paper rules read them
# through input functions, which run after every include, so no stage file depends on
# the order in which the Snakefile includes the others.
PAPER_NUMBERS = []
PAPER_ASSETS = []
FINAL = []


def registered(products):
    """An input function returning a registry's products, sorted, once parsing is done."""
    return lambda wildcards: sorted(products)


def one_of(names):
    """A wildcard constraint matching exactly these names (never an empty regex)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def records(dataset):
    return f"results/records/{dataset}.parquet"


def judgments(grader, dataset):
    return f"results/judgments/{grader}/{dataset}.parquet"


def numbers(producer):
    return f"results/numbers/{producer}.json"


def logfile(stage, name):
    return f"results/logs/{stage}/{name}.log"


def bench(stage, name):
    return f"results/benchmarks/{stage}/{name}.tsv"


def repeat(option, values):
    """`--option a --option b`: one CLI argument pair per value (each shell-quoted by :q)."""
    return [arg for value in values for arg in (option, str(value))]


def grader_block(name):
    return (config.get("grader") or {}).get(name) or {}


def grader_code(name, verbs=("grade",)):
    """Code hash of a verb run with one backend (the registry imports it by name)."""
    return code_hash(verbs=list(verbs), modules=[GRADER_REGISTRY.module_of(name)])


def grader_inputs(wildcards):
    """What a backend needs besides the records (the trained grader: its model and the
    dataset's embeddings)."""
    if wildcards.grader == TRAINED:
        return {
            "model": trained_model(),
            "embeddings": dataset_embedding_files(wildcards.dataset),
        }
    return {}


def trained_model(name="model.pkl"):
    """A file of the trained grader's model folder (rule train_grader writes them)."""
    return f"{MODEL_DIR}/{name}"


def training_embeddings(parts):
    """The training texts' vectors by each stateless extractor part (rule embed_texts)."""
    return [trained_model(f"embeddings--{part}.parquet") for part in parts]


def dataset_embedding_files(dataset):
    """A dataset's embeddings by every stateless part of the trained grader's extractor."""
    from harmtrace.graders.features import dataset_embeddings

    return [str(dataset_embeddings(EMBEDDING_DIR, p, dataset)) for p in EMBED_PARTS]


def moderated_datasets():
    """Datasets whose responses the moderation flow splits into sentences and scores."""
    return list(MODERATE.datasets) if MODERATE.policies else []


# The trained grader (the rules it declares are included only when it exists)
TRAINED = trained_grader(config)
"""The grader backend the workflow trains; None when the config names none."""
BACKEND_RULES = backend_rules(config, workflow.basedir)
"""The Snakemake files of its rules (its class's ``workflow_rules``): the Snakefile's."""
TRAINED_SPEC = grader_block(TRAINED) if TRAINED else {}
"""Its config block (grader.<name>)."""
MODEL_DIR = TRAINED_SPEC.get("model_dir", f"results/models/{TRAINED}")
TRAIN = TRAINED_SPEC.get("train_datasets") or []
TRAIN_RECORDS = [records(d) for d in TRAIN]
REFUSAL = TRAINED_SPEC.get("refusal") or {}
EMBED_PARTS = embedding_parts(TRAINED_SPEC.get("extractor") or DEFAULT_EXTRACTOR)
"""Stateless parts of its extractor (e.g. minilm in tfidf+minilm): encoded once, cached."""
COMPARED = (TRAINED_SPEC.get("compare") or {}).get("extractors") or []
COMPARED_PARTS = list(
    dict.fromkeys(p for name in COMPARED for p in embedding_parts(name))
)
"""Stateless parts of the compared extractors (their training embeddings are cached too)."""
EMBEDDING_CACHES = training_embeddings(EMBED_PARTS)
EMBEDDING_DIR = TRAINED_SPEC.get("embedding_dir", "results/embeddings")
SOURCE_WEIGHTS = repeat(
    "--source-weight",
    [
        f"{name}={weight}"
        for name, weight in sorted((TRAINED_SPEC.get("source_weights") or {}).items())
    ],
)


# Moderation (moderate.smk) and the analysis entries (analysis.smk)
MODERATE = check_moderate_config(config, DATASETS)
TRACES_DIR = "results/traces"
ANALYSES = with_moderation(
    enabled_analyses(config),
    MODERATE,
    MODEL_DIR,
    TRACES_DIR,
    (
        GRADER_REGISTRY.module_of(MODERATE.grader)
        if MODERATE.grader
        else "harmtrace.graders"
    ),
    # the sentence vectors the moderation jobs read, read again by notebook 06
    dataset_embedding_files("{dataset}") if MODERATE.grader == TRAINED else [],
)
"""Analysis entries that run (enabled: false leaves one out), notebook 06's completed."""


SHARD_SIZE = config["grade"].get("shard_size", 20000)
"""Records per grading job (grade.shard_size)."""


def shard_plan_file(dataset):
    return f"results/shards/{dataset}.plan.json"


def judgment_shard(grader, dataset, shard, shards):
    return f"results/shards/{grader}/{dataset}/{shard}-of-{shards}.parquet"


def judgment_shards(wildcards):
    """Every shard of one grader's judgments of one dataset (known once the plan exists)."""
    plan = checkpoints.shard_plan.get(dataset=wildcards.dataset).output[0]
    n = json.loads(Path(plan).read_text(encoding="utf-8"))["shards"]
    return [
        judgment_shard(wildcards.grader, wildcards.dataset, i, n)
        for i in range(1, n + 1)
    ]


def normalize_input(wildcards):
    """A registered dataset's fetch manifest, or a user dataset's own file."""
    if wildcards.dataset in USER_DATASETS:
        return {"source": USER_DATASETS[wildcards.dataset]["path"]}
    return {"source": rules.fetch.output.manifest.format(dataset=wildcards.dataset)}


def normalize_source(wildcards):
    """CLI arguments naming where the records come from (every value shell-quoted)."""
    spec = USER_DATASETS.get(wildcards.dataset)
    if spec is None:
        return [wildcards.dataset, "--raw-dir", RAW, *ALLOW_UNPINNED]
    args = ["--input", spec["path"], "--name", wildcards.dataset]
    for key in ("prompt_column", "response_column", "id_column", "context_column"):
        if spec.get(key):
            args += [f"--{key.replace('_', '-')}", spec[key]]
    if spec.get("response_source"):
        args += ["--response-source", spec["response_source"]]
    return args


def sample_args(wildcards):
    """``--sample N`` where data.sample cuts the dataset to a stable sample."""
    n = (config["data"].get("sample") or {}).get(wildcards.dataset)
    return [] if n is None else ["--sample", str(n)]


def paper_sources(folder):
    """Every file of the paper's template folder (a folder input would not notice an edit)."""
    return sorted(str(p) for p in Path(folder).rglob("*") if p.is_file())


def notebook_inputs(spec):
    """Records and judgments of the analysed datasets, plus the entry's own inputs."""
    datasets = spec["datasets"]
    extra = [
        path.format(grader=spec["grader"], dataset=dataset, raw_dir=RAW)
        for path in spec.get("inputs", [])
        for dataset in datasets
    ]
    return {
        "records": [records(d) for d in datasets],
        "judgments": [judgments(spec["grader"], d) for d in datasets],
        "extra": sorted(set(extra)),
    }


def notebook_parameters(producer, spec):
    """Everything papermill injects: the entry's parameters plus where to read and write."""
    stem = spec["notebook"]
    parameters = dict(spec.get("parameters", {}))
    if "raw_dir" in parameters:  # fetched files live where data.raw_dir says
        parameters["raw_dir"] = RAW
    return {
        **parameters,
        "producer": producer,
        "grader": spec["grader"],
        "datasets": spec["datasets"],
        "records_dir": "results/records",
        "judgments_dir": "results/judgments",
        "tables_dir": f"results/tables/{stem}",
        "figures_dir": f"results/figures/{stem}",
        "numbers_out": numbers(stem),
    }


# Harm-benefit trees (trees.smk)
TAXONOMY_MANIFEST = f"{RAW}/{AIR_TAXONOMY}/MANIFEST.json"
"""The fetched AIR taxonomy (reference data the tree generators and notebook 05 read)."""


def tree_file(generator, dataset):
    return f"results/trees/{generator}/{dataset}.jsonl"


def harm_benefit(generator, name):
    return f"results/harm_benefit/{generator}/{name}"


def tree_inputs(wildcards):
    """Records, the taxonomy, and what the generator builds on (the trained grader)."""
    out = {"records": records(wildcards.dataset), "taxonomy": TAXONOMY_MANIFEST}
    if generator_class(wildcards.generator).uses_trained_grader:
        out["model"] = trained_model()
        out["oof"] = trained_model("oof_scores.parquet")
    return out


# The respond stage (respond.smk)
RESPOND = config.get("respond") or {}
TARGETS = config.get("targets") or {}
STUDY_TARGETS = study_targets(config)
"""The models under test (study.targets): each answers every prompt set."""
PROGRESS_DIR = RESPOND.get("progress_dir", "results/cache/respond")
MAX_PROMPTS = (
    ["--max-prompts", RESPOND["max_prompts"]] if RESPOND.get("max_prompts") else []
)


def target_model(target):
    """The registered model a target's weights come from, if the DAG must prepare it."""
    return make_target_spec(target, TARGETS[target]).prepared_model()


def target_threads(wildcards):
    """A respond job's threads: what its target keeps busy (torch threads for in-process)."""
    return make_target_spec(wildcards.target, TARGETS[wildcards.target]).cpu_threads()


def target_code(target):
    """Code hash of answering with one target's backend (the registry imports it by name)."""
    backend = TARGETS[target]["backend"]
    return code_hash(
        verbs=["respond"], modules=[TARGET_MODULES.get(backend, "harmtrace.targets")]
    )


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
    return (
        ["--model-dir", str(Path(input.model).parent)]
        if "model" in input.keys()
        else []
    )
