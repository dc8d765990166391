"""Harm-benefit trees: the AIR taxonomy, trees per generator and dataset, the fitted
aggregation weights, and every prompt scored under every steering profile.

Everything follows the `trees:` block of the config (checked at parse time by
harmtrace.trees.config); no generator or dataset is named here.
"""

from harmtrace.trees.config import check_trees_config
from harmtrace.trees.registry import GENERATORS as GENERATOR_REGISTRY

TREES = check_trees_config(config, DATASETS)


rule fetch_taxonomy:
    """Fetch the AIR 2024 risk taxonomy (reference data, not records); verify its sha256."""
    output:
        manifest=TAXONOMY_MANIFEST,
    log:
        logfile("fetch", AIR_TAXONOMY),
    benchmark:
        bench("fetch", AIR_TAXONOMY)
    conda:
        ENV
    params:
        name=AIR_TAXONOMY,
        raw_dir=lambda wildcards, output: Path(output.manifest).parent.parent,
        mirror=(
            ["--mirror", config["data"]["mirror"]] if config["data"]["mirror"] else []
        ),
        code=code_hash(verbs=["fetch"]),
    shell:
        "harmtrace fetch {params.name:q} --raw-dir {params.raw_dir:q} {params.mirror:q} "
        "> {log:q} 2>&1"


rule trees:
    """One harm-benefit tree per prompt of a dataset (failures recorded, never dropped)."""
    input:
        unpack(tree_inputs),
    output:
        tree_file("{generator}", "{dataset}"),
    log:
        logfile("trees", "{generator}/{dataset}"),
    benchmark:
        bench("trees", "{generator}/{dataset}")
    wildcard_constraints:
        generator="|".join(TREES.generators) or "^$",
        dataset="|".join(TREES.datasets) or "^$",
    conda:
        ENV
    params:
        spec=lambda wildcards: json.dumps(
            TREES.block(wildcards.generator), sort_keys=True
        ),
        model_dir=MODEL_DIR,
        raw_dir=lambda wildcards, input: Path(input.taxonomy).parent.parent,
        code=lambda wildcards: code_hash(
            verbs=["trees"],
            modules=[GENERATOR_REGISTRY.module_of(wildcards.generator)],
        ),
    shell:
        "harmtrace trees {wildcards.dataset:q} --generator {wildcards.generator:q} "
        "--spec {params.spec:q} --records-dir results/records --out-dir results/trees "
        "--model-dir {params.model_dir:q} --raw-dir {params.raw_dir:q} > {log:q} 2>&1"


rule fit_tree_weights:
    """Aggregation weights fitted to labels, cross-fitted predictions, bootstrap intervals."""
    input:
        trees=lambda wildcards: [
            tree_file(wildcards.generator, d) for d in TREES.fit_datasets
        ],
        records=[records(d) for d in TREES.fit_datasets],
        taxonomy=TAXONOMY_MANIFEST,
    output:
        weights=harm_benefit("{generator}", "weights.json"),
        ci=harm_benefit("{generator}", "weights_ci.parquet"),
        oof=harm_benefit("{generator}", "oof.parquet"),
    log:
        logfile("trees", "{generator}/fit"),
    benchmark:
        bench("trees", "{generator}/fit")
    wildcard_constraints:
        generator="|".join(TREES.generators) or "^$",
    conda:
        ENV
    params:
        settings=json.dumps(TREES.fit, sort_keys=True),
        raw_dir=lambda wildcards, input: Path(input.taxonomy).parent.parent,
        trees_dir=lambda wildcards: f"results/trees/{wildcards.generator}",
        out_dir=lambda wildcards, output: Path(output.weights).parent,
        code=code_hash(verbs=["fit-tree-weights"]),
    shell:
        "harmtrace fit-tree-weights --generator {wildcards.generator:q} "
        "--trees-dir {params.trees_dir:q} --records-dir results/records "
        "--out-dir {params.out_dir:q} --raw-dir {params.raw_dir:q} "
        "--settings {params.settings:q} > {log:q} 2>&1"


rule score_trees:
    """Score, probability, explanation and label per steering profile for every prompt."""
    input:
        trees=tree_file("{generator}", "{dataset}"),
        weights=rules.fit_tree_weights.output.weights,
        oof=rules.fit_tree_weights.output.oof,
        taxonomy=TAXONOMY_MANIFEST,
    output:
        harm_benefit("{generator}", "{dataset}.parquet"),
    log:
        logfile("trees", "{generator}/score_{dataset}"),
    benchmark:
        bench("trees", "{generator}/score_{dataset}")
    wildcard_constraints:
        generator="|".join(TREES.generators) or "^$",
        dataset="|".join(TREES.datasets) or "^$",
    conda:
        ENV
    params:
        profiles=json.dumps(TREES.profiles, sort_keys=True),
        raw_dir=lambda wildcards, input: Path(input.taxonomy).parent.parent,
        trees_dir=lambda wildcards: f"results/trees/{wildcards.generator}",
        weights_dir=lambda wildcards, input: Path(input.weights).parent,
        code=code_hash(verbs=["score-trees"]),
    shell:
        "harmtrace score-trees {wildcards.dataset:q} --trees-dir {params.trees_dir:q} "
        "--weights-dir {params.weights_dir:q} --raw-dir {params.raw_dir:q} "
        "--profiles {params.profiles:q} > {log:q} 2>&1"


FINAL.extend(
    expand(
        tree_file("{generator}", "{dataset}"),
        generator=TREES.generators,
        dataset=TREES.datasets,
    )
)
FINAL.extend(
    expand(
        harm_benefit("{generator}", "{name}"),
        generator=TREES.generators,
        name=[
            "weights.json",
            "weights_ci.parquet",
            "oof.parquet",
            *(f"{d}.parquet" for d in TREES.datasets),
        ],
    )
)
