"""Grading verbs of the command line on real mirrored records.

One small grader is trained once per module (a stratified subset of the OpenAI moderation
records, two folds), and every other verb reuses it.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from harmtrace.cli import app
from harmtrace.data.normalize import normalize_dataset, write_normalized
from harmtrace.data.registry import get_dataset
from harmtrace.graders.embedded import EmbeddedGrader
from harmtrace.graders.features import DEFAULT_EXTRACTOR
from harmtrace.graders.labels import training_fingerprint
from harmtrace.io import read_table, write_table
from harmtrace.report.macros import count, pct, real, write_numbers
from tests.devdata import toy_refusal_records, write_user_records
from tests.rendering import rendered

CATS = ("hate", "sexual", "violence", "self_harm")
runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def training_subset(records: pd.DataFrame) -> pd.DataFrame:
    """Every self-harm / violence positive plus every 6th other record (~370 records)."""
    sh = records["label_SH"].fillna(False)
    v = records["label_V"].fillna(False) | records["label_V2"].fillna(False)
    rare = (sh | v).to_numpy(dtype=bool)
    keep = np.sort(np.concatenate([np.flatnonzero(rare), np.flatnonzero(~rare)[::6]]))
    return records.iloc[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def trained(raw_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_grade")
    full = normalize_dataset(get_dataset("openai-moderation"), raw_dir).records
    rec_path = root / "records" / "moderation-subset.parquet"
    recs = write_user_records(training_subset(full), rec_path, "moderation-subset")
    lexicon, labelled = toy_refusal_records()
    write_user_records(lexicon, root / "records" / "toy-lexicon.parquet", "toy-lexicon")
    write_user_records(labelled, root / "records" / "toy-refusals.parquet", "toy-refusals")
    paths = {
        "records": rec_path,
        "lexicon": root / "records" / "toy-lexicon.parquet",
        "labelled": root / "records" / "toy-refusals.parquet",
        "model": root / "model",
        "oof": root / "oof.parquet",
        "numbers": root / "numbers" / "grader.json",
        "table": root / "tables" / "grader.tex",
    }
    res = invoke(
        "train-grader",
        "--records",
        paths["records"],
        "--model-dir",
        paths["model"],
        "--oof",
        paths["oof"],
        "--folds",
        2,
        "--refusal-lexicon",
        paths["lexicon"],
        "--refusal-labels",
        paths["labelled"],
    )
    assert res.exit_code == 0, res.output
    res = invoke(
        "evaluate-grader",
        "--records",
        paths["records"],
        "--model-dir",
        paths["model"],
        "--numbers",
        paths["numbers"],
        "--table",
        paths["table"],
    )
    assert res.exit_code == 0, res.output
    return {"root": root, "recs": recs, **paths}


@pytest.fixture(scope="module")
def air(raw_dir, trained):
    """AIR-Bench records and their judgments by the trained grader."""
    root = trained["root"]
    result = normalize_dataset(get_dataset("air-bench-2024"), raw_dir)
    recs = result.records
    rec_path = root / "records" / "air-bench-2024.parquet"
    write_normalized(result, rec_path, None)
    out = root / "judgments" / "air-bench-2024.parquet"
    res = invoke(
        "grade",
        "air-bench-2024",
        "--records",
        rec_path,
        "--model-dir",
        trained["model"],
        "--out",
        out,
    )
    assert res.exit_code == 0, res.output
    return {"recs": recs, "records": rec_path, "judgments": out}


# ------------------------------------------------------------ compare-extractors
def test_compare_extractors_ranks_by_loso_and_keeps_timings_out(trained, raw_dir, tmp_path):
    """Out-of-fold metrics on the moderation texts, leave-one-source-out AUROC on the
    prompt sets, the rule's pick; a rerun gives the same bytes (no timing in a product),
    and the measured rates go to the --throughput timing file only."""
    sst = tmp_path / "simplesafetytests.parquet"
    write_normalized(normalize_dataset(get_dataset("simplesafetytests"), raw_dir), sst, None)
    sets = ["--records", sst]
    out = {k: tmp_path / f"run{k}" for k in (1, 2)}
    for d in out.values():
        res = invoke(
            "compare-extractors", "--records", trained["records"], *sets,
            "--extractors", "tfidf", "--seeds", 0, "--folds", 2, "--inner-splits", 2,
            "--out", d / "cmp.parquet", "--loso-out", d / "loso.parquet",
            "--numbers", d / "numbers.json", "--table", d / "table.tex",
            "--throughput", d / "throughput.json",
        )  # fmt: skip
        assert res.exit_code == 0, res.output
    for name in ("cmp.parquet", "loso.parquet", "numbers.json", "table.tex"):
        assert (out[1] / name).read_bytes() == (out[2] / name).read_bytes(), name
    cmp = pd.read_parquet(out[1] / "cmp.parquet")
    assert "texts_per_s" not in cmp and set(cmp["category"]) == set(CATS)
    loso = pd.read_parquet(out[1] / "loso.parquet")
    # one held-out prompt set, harmful only: no benign prompt scored out of source, so
    # its AUROC is undefined (NaN) rather than made up (metrics: test_grader_compare)
    assert loso["dataset"].tolist() == ["simplesafetytests"] and loso["auroc"].isna().all()
    assert json.loads((out[1] / "throughput.json").read_text())["tfidf"] > 0
    nums = json.loads((out[1] / "numbers.json").read_text())["numbers"]
    assert nums["chosen"]["value"] == "tfidf" and nums["loso sources"]["value"] == 0
    table = (out[1] / "table.tex").read_text()
    assert "LOSO mean" in table and "texts/s" not in table


# ------------------------------------------------------------------ train-grader


def test_train_grader_writes_model_and_manifest(trained):
    model_dir = trained["model"]
    blob = (model_dir / "model.pkl").read_bytes()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["files"]["model.pkl"]["sha256"] == hashlib.sha256(blob).hexdigest()
    assert manifest["training"]["n_records"] == len(trained["recs"])
    assert manifest["extractor"]["name"] == DEFAULT_EXTRACTOR
    assert manifest["training"]["sha256"] == training_fingerprint(trained["recs"])
    assert manifest["grader"] == "embedded"
    model = EmbeddedGrader.load(model_dir)
    assert model.version == manifest["grader_version"]


def test_train_grader_oof_covers_every_record_once(trained):
    oof = pd.read_parquet(trained["oof"])
    ids = trained["recs"]["record_id"].astype(str)
    assert len(oof) == len(ids)
    assert not oof["record_id"].duplicated().any()
    assert set(oof["record_id"]) == set(ids)
    assert set(oof["fold"]) == {0, 1}
    for cat in CATS:
        assert oof[f"prob_{cat}"].between(0, 1).all()
        assert set(oof[f"severity_{cat}"].dropna().astype(int)) <= {0, 1, 2, 3}


def test_train_grader_numbers_and_table(trained):
    payload = json.loads(trained["numbers"].read_text())
    assert payload["producer"] == "grader"
    nums = rendered(payload["numbers"])
    n = len(trained["recs"])
    assert nums["n train"] == f"{n:,}".replace(",", "{,}")
    assert nums["folds"] == "2" and nums["extractor"] == DEFAULT_EXTRACTOR
    # the AUROC in the numbers is the out-of-fold AUROC over the known hate labels
    recs, oof = trained["recs"], pd.read_parquet(trained["oof"]).set_index("record_id")
    hate = recs["label_H"].astype("boolean") | recs["label_H2"].astype("boolean")
    known = hate.notna().to_numpy()
    y = hate[known].astype(bool).to_numpy()
    p = oof.loc[recs["record_id"].astype(str)[known], "prob_hate"].to_numpy()
    assert nums["hate auroc"] == f"{roc_auc_score(y, p):.2f}"
    assert nums["hate known"] == f"{int(known.sum()):,}".replace(",", "{,}")
    tex = trained["table"].read_text()
    assert tex.startswith("\\begin{tabular}{lrrrrrl}")
    rows = [ln for ln in tex.splitlines() if ln.endswith("\\\\")]
    assert len(rows) == 1 + len(CATS)
    assert rows[0].startswith("Category & Known & Positive & AUROC & AUPRC")
    assert "$\\geq$" in rows[0] and "textbackslash" not in tex  # LaTeX header, not escaped
    assert any(r.startswith("Self-harm & ") for r in rows)


# ------------------------------------------------------------------ grade


def _grade(trained, out, *extra):
    return invoke(
        "grade",
        "moderation-subset",
        "--records",
        trained["records"],
        "--model-dir",
        trained["model"],
        "--out",
        out,
        *extra,
    )


def test_grading_the_training_set_uses_its_out_of_fold_scores(trained, tmp_path):
    out = tmp_path / "judged.parquet"
    res = _grade(trained, out)
    assert res.exit_code == 0, res.output
    judged = read_table(out, "judgments")
    oof = pd.read_parquet(trained["oof"]).set_index("record_id")
    assert judged["record_id"].astype(str).tolist() == trained["recs"]["record_id"].tolist()
    mine = oof.loc[judged["record_id"].astype(str)]
    for cat in CATS:
        np.testing.assert_allclose(
            judged[f"prompt_prob_{cat}"].to_numpy(dtype=float), mine[f"prob_{cat}"].to_numpy()
        )
        assert (
            judged[f"prompt_severity_{cat}"].astype(int).to_numpy()
            == mine[f"severity_{cat}"].astype(int).to_numpy()
        ).all()
        # moderation records have no response
        assert judged[f"response_prob_{cat}"].isna().all()
    assert judged["relevance"].isna().all()
    assert (judged["grader"] == "embedded").all() and (judged["status"] == "ok").all()


def test_grade_in_sample_opts_out_of_out_of_fold_scores(trained, tmp_path):
    """--in-sample scores even the training texts with the final model (diagnostics)."""
    model = EmbeddedGrader.load(trained["model"])
    direct = model.score(trained["recs"]["prompt"].tolist())
    oof = pd.read_parquet(trained["oof"]).set_index("record_id")
    for flags, expect_oof in (((), True), (("--in-sample",), False)):
        out = tmp_path / f"judged{len(flags)}.parquet"
        res = _grade(trained, out, *flags)
        assert res.exit_code == 0, res.output
        judged = read_table(out, "judgments")
        want = oof.loc[judged["record_id"].astype(str)]
        for cat in CATS:
            got = judged[f"prompt_prob_{cat}"].to_numpy(dtype=float)
            in_sample = direct[f"prob_{cat}"].to_numpy()
            if expect_oof:
                np.testing.assert_allclose(got, want[f"prob_{cat}"].to_numpy())
                assert not np.allclose(got, in_sample)
            else:
                np.testing.assert_allclose(got, in_sample)
        assert judged["grader_version"].str.startswith(model.version + "/spec-").all()


def _as_other_dataset(recs: pd.DataFrame, n: int, suffix: str = "") -> pd.DataFrame:
    other = recs.head(n).copy()
    other["record_id"] = pd.array([f"{i:016x}" for i in range(n)], dtype="string")
    other["dataset"] = pd.array(["elsewhere"] * n, dtype="string")
    other["prompt"] = other["prompt"] + suffix
    return other


def _grade_other(trained, tmp_path, other, *extra):
    write_user_records(other, tmp_path / "other.parquet", "elsewhere")
    out = tmp_path / "judged.parquet"
    res = invoke(
        "grade",
        "elsewhere",
        "--records",
        tmp_path / "other.parquet",
        "--model-dir",
        trained["model"],
        "--out",
        out,
        *extra,
    )
    assert res.exit_code == 0, res.output
    return read_table(out, "judgments")


def test_grading_other_records_uses_the_fitted_model(trained, tmp_path):
    other = _as_other_dataset(trained["recs"], 40, suffix=" (asked again)")
    judged = _grade_other(trained, tmp_path, other)
    model = EmbeddedGrader.load(trained["model"])
    direct = model.score(other["prompt"].tolist())
    for cat in CATS:
        got = judged[f"prompt_prob_{cat}"].to_numpy(dtype=float)
        np.testing.assert_allclose(got, direct[f"prob_{cat}"].to_numpy())
    version = judged["grader_version"].iloc[0]
    assert version.startswith(model.version + "/spec-")


def test_training_texts_in_another_dataset_get_their_out_of_fold_scores(trained, tmp_path):
    """Another dataset repeating training prompts (a second redistribution) is graded with
    those texts' out-of-fold scores, never in-sample; new texts by the model."""
    other = _as_other_dataset(trained["recs"], 40)
    other.loc[30:, "prompt"] = other.loc[30:, "prompt"] + " (asked again)"
    judged = _grade_other(trained, tmp_path, other)
    model = EmbeddedGrader.load(trained["model"])
    direct = model.score(other["prompt"].tolist())
    oof = pd.read_parquet(trained["oof"]).set_index("record_id")
    want = oof.loc[trained["recs"]["record_id"].astype(str).head(30)]
    for cat in CATS:
        got = judged[f"prompt_prob_{cat}"].to_numpy(dtype=float)
        np.testing.assert_allclose(got[:30], want[f"prob_{cat}"].to_numpy())
        np.testing.assert_allclose(got[30:], direct[f"prob_{cat}"].to_numpy()[30:])
    in_sample = _grade_other(trained, tmp_path, other, "--in-sample")
    np.testing.assert_allclose(
        in_sample["prompt_prob_hate"].to_numpy(dtype=float), direct["prob_hate"].to_numpy()
    )


def test_grading_partly_training_records_is_refused(trained, tmp_path):
    mixed = pd.concat(
        [trained["recs"].head(10), _as_other_dataset(trained["recs"].iloc[10:], 3)],
        ignore_index=True,
    )
    write_user_records(mixed, tmp_path / "mixed.parquet", "mixed")
    res = invoke(
        "grade",
        "mixed",
        "--records",
        tmp_path / "mixed.parquet",
        "--model-dir",
        trained["model"],
        "--out",
        tmp_path / "j.parquet",
    )
    assert res.exit_code == 2
    assert "10 of 13 records were training records" in res.output


def test_grade_prior_shift_out_writes_adjusted_judgments_and_priors(trained, tmp_path):
    """The adjusted judgments sit beside the raw ones; at the EM fixed point each estimated
    prior equals the mean adjusted probability (Saerens et al. 2002, eq. 2.9)."""
    raw, shifted, priors = (tmp_path / n for n in ("raw.parquet", "s.parquet", "p.parquet"))
    res = _grade(trained, raw, "--prior-shift-out", shifted, "--priors-out", priors)
    assert res.exit_code == 0, res.output
    judged, adjusted = read_table(raw, "judgments"), read_table(shifted, "judgments")
    table = read_table(priors, "category_priors").set_index(["side", "category"])
    oof = pd.read_parquet(trained["oof"]).set_index("record_id")
    for cat in CATS:
        raw_p = judged[f"prompt_prob_{cat}"].to_numpy(dtype=float)
        np.testing.assert_allclose(raw_p, oof.loc[judged["record_id"], f"prob_{cat}"])
        adj = adjusted[f"prompt_prob_{cat}"].to_numpy(dtype=float)
        row = table.loc[("prompt", cat)]
        assert row["converged"]
        assert abs(adj.mean() - row["estimated_prior"]) < 1e-6
        assert abs(raw_p.mean() - row["mean_prob_raw"]) < 1e-12
    # spec option: the same adjustment as the grader's own config
    again = tmp_path / "again.parquet"
    res = _grade(trained, again, "--spec", '{"prior_shift": true}')
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(
        read_table(again, "judgments")["prompt_prob_hate"].to_numpy(dtype=float),
        adjusted["prompt_prob_hate"].to_numpy(dtype=float),
    )


def test_grade_spec_errors_name_the_key(trained, tmp_path):
    res = _grade(trained, tmp_path / "j.parquet", "--spec", '{"extractr": "tfidf"}')
    assert res.exit_code == 2
    assert "grader.embedded.extractr" in res.output


def test_grade_input_file(trained, tmp_path):
    texts = ["I will hurt you badly", "Lovely weather for a picnic", "How do I bake bread?"]
    src = tmp_path / "texts.csv"
    pd.DataFrame({"uid": ["a", "b", "c"], "body": texts}).to_csv(src, index=False)
    out = tmp_path / "scores.parquet"
    res = invoke(
        "grade",
        "--input",
        src,
        "--text-column",
        "body",
        "--id-column",
        "uid",
        "--output",
        out,
        "--model-dir",
        trained["model"],
    )
    assert res.exit_code == 0, res.output
    scores = pd.read_parquet(out)
    assert scores["id"].tolist() == ["a", "b", "c"]
    direct = EmbeddedGrader.load(trained["model"]).score(texts)
    for cat in CATS:
        np.testing.assert_allclose(scores[f"prob_{cat}"], direct[f"prob_{cat}"])
        assert scores[f"severity_{cat}"].tolist() == direct[f"severity_{cat}"].tolist()


def test_grade_input_missing_column_lists_the_columns(trained, tmp_path):
    src = tmp_path / "texts.csv"
    pd.DataFrame({"uid": ["a"], "body": ["hello"]}).to_csv(src, index=False)
    res = invoke(
        "grade",
        "--input",
        src,
        "--text-column",
        "text",
        "--output",
        tmp_path / "o.parquet",
        "--model-dir",
        trained["model"],
    )
    assert res.exit_code == 2
    assert "no column 'text'; the file has ['uid', 'body']" in res.output
    assert "_source_row" not in res.output
    assert not (tmp_path / "o.parquet").exists()


def test_grade_input_needs_output(trained, tmp_path):
    src = tmp_path / "texts.csv"
    pd.DataFrame({"body": ["hello"]}).to_csv(src, index=False)
    res = invoke("grade", "--input", src, "--text-column", "body", "--model-dir", trained["model"])
    assert res.exit_code == 2
    assert "--input needs --text-column and --output" in res.output


def test_grade_unknown_grader(tmp_path):
    res = invoke("grade", "openai-moderation", "--grader", "oracle", "--model-dir", tmp_path)
    assert res.exit_code == 2
    assert "unknown grader 'oracle'; registered: embedded, human, openai" in res.output


def test_grade_missing_model_is_a_clear_error(tmp_path):
    res = invoke("grade", "openai-moderation", "--model-dir", tmp_path / "none")
    assert res.exit_code == 2
    assert "no trained embedded grader in" in res.output and "train-grader" in res.output


# ------------------------------------------------------------------ validate-relevance


def test_validate_relevance(trained, air, tmp_path):
    numbers, table, refusal = tmp_path / "rel.json", tmp_path / "rel.tex", tmp_path / "ref.tex"
    res = invoke(
        "validate-relevance",
        "--records",
        air["records"],
        "--judgments",
        air["judgments"],
        "--numbers",
        numbers,
        "--table",
        table,
        "--refusal-table",
        refusal,
        "--model-dir",
        trained["model"],
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(numbers.read_text())
    assert payload["producer"] == "relevance"
    nums = rendered(payload["numbers"])
    recs = air["recs"]
    with_response = recs.loc[recs["response"].notna()]
    assert nums["n"] == str(len(with_response))
    assert nums["judge refused"] == str(int((with_response["air_judge_score"] == 1.0).sum()))
    judged = read_table(air["judgments"], "judgments")
    assert nums["flagged"] == str(int(judged["refusal"].fillna(False).sum()))
    tex = table.read_text()
    assert tex.startswith("\\begin{tabular}{lrrr}")
    # one body row per relevance level that occurs in the judgments
    rows = [ln for ln in tex.splitlines() if ln.endswith("\\\\")]
    assert len(rows) == 1 + judged["relevance"].dropna().nunique()
    # the refusal detector: in source (its own labelled responses, out-of-fold) and out of
    # sample (these AIR-Bench responses), apart
    model = EmbeddedGrader.load(trained["model"])
    in_source = model.relevance.refusal.training_["in_source"]
    assert nums["refusal insource n"] == str(in_source["n"]) == "24"
    assert nums["refusal insource kappa"] == f"{in_source['kappa']:.2f}"
    assert nums["refusal test n"] == nums["n"]
    assert nums["refusal test n flagged"] == nums["flagged"]
    assert nums["refusal test kappa"] == nums["kappa"]
    assert nums["refusal labelled source"] == "toy-refusals"
    tex = refusal.read_text()
    assert "In source (toy-refusals, out-of-fold) & Out of sample (air-bench-2024)" in tex
    assert "Cohen's $\\kappa$" in tex


def test_validate_relevance_refuses_judgments_of_another_model(trained, air, tmp_path):
    judged = read_table(air["judgments"], "judgments")
    i = int(np.flatnonzero(judged["relevance"].notna().to_numpy())[0])
    judged.loc[i, "relevance"] = 1 if judged.loc[i, "relevance"] != 1 else 3
    other = tmp_path / "other.parquet"
    write_table(judged, other, "judgments")
    res = invoke(
        "validate-relevance",
        "--records",
        air["records"],
        "--judgments",
        other,
        "--numbers",
        tmp_path / "n.json",
        "--table",
        tmp_path / "t.tex",
        "--model-dir",
        trained["model"],
    )
    assert res.exit_code == 2
    assert "relevance differs from the grader's; regrade" in res.output
    assert not (tmp_path / "n.json").exists()


# ------------------------------------------------------------------ numbers


def test_data_numbers(trained, air, tmp_path):
    out = tmp_path / "data.json"
    res = invoke("data-numbers", "--out", out, trained["records"], air["records"])
    assert res.exit_code == 0, res.output
    payload = json.loads(out.read_text())
    assert payload["producer"] == "data"
    nums = rendered(payload["numbers"])
    n_mod, n_air = len(trained["recs"]), len(air["recs"])
    assert nums["moderation-subset records"] == f"{n_mod:,}".replace(",", "{,}")
    assert nums["moderation-subset responses"] == "0"
    assert nums["air-bench-2024 records"] == str(n_air)
    assert nums["air-bench-2024 responses"] == str(int(air["recs"]["response"].notna().sum()))
    assert nums["total records"] == f"{n_mod + n_air:,}".replace(",", "{,}")
    assert nums["categories"] == "4"


def test_data_numbers_missing_file(tmp_path):
    res = invoke("data-numbers", "--out", tmp_path / "d.json", tmp_path / "none.parquet")
    assert res.exit_code == 2
    assert "no such table" in res.output


def test_numbers_merges_producers_into_macros(tmp_path):
    write_numbers({"n train": count(1680), "hate auroc": real(0.91)}, tmp_path / "g.json", "grader")
    write_numbers({"ci level": pct(0.95, 0)}, tmp_path / "t.json", "transitions")
    out = tmp_path / "paper" / "numbers.tex"
    res = invoke("numbers", out, tmp_path / "t.json", tmp_path / "g.json")
    assert res.exit_code == 0, res.output
    tex = out.read_text()
    lines = [ln for ln in tex.splitlines() if ln.startswith("\\newcommand")]
    assert lines == [
        "\\newcommand{\\HtGraderHateAuroc}{0.91}",
        "\\newcommand{\\HtGraderNTrain}{1{,}680}",
        "\\newcommand{\\HtTransitionsCiLevel}{95\\%}",
    ]


def test_numbers_refuses_clashing_macros(tmp_path):
    write_numbers({"n train": count(1)}, tmp_path / "a.json", "grader")
    write_numbers({"n-train": count(2)}, tmp_path / "b.json", "grader")
    res = invoke("numbers", tmp_path / "m.tex", tmp_path / "a.json", tmp_path / "b.json")
    assert res.exit_code == 2
    assert "clashes" in res.output


def test_cited_numbers(tmp_path):
    out = tmp_path / "cited.json"
    res = invoke("cited-numbers", "--out", out)
    assert res.exit_code == 0, res.output
    payload = json.loads(out.read_text())
    assert payload["producer"] == "cited"
    raw = yaml.safe_load(resources.files("harmtrace.report").joinpath("cited.yaml").read_text())
    assert set(payload["numbers"]) == {str(k) for k in raw["numbers"]}
    assert rendered(payload["numbers"])["deescalate"] == "61\\%"
    assert rendered(payload["numbers"])["records"] == "1{,}250"
    assert list(payload["numbers"]) == sorted(payload["numbers"])


def test_grade_input_missing_id_column_is_a_clear_error(trained, tmp_path):
    src = tmp_path / "texts.csv"
    pd.DataFrame({"body": ["hello"]}).to_csv(src, index=False)
    res = invoke(
        "grade",
        "--input",
        src,
        "--text-column",
        "body",
        "--id-column",
        "uid",
        "--output",
        tmp_path / "o.parquet",
        "--model-dir",
        trained["model"],
    )
    assert res.exit_code == 2
    assert "no column 'uid'" in res.output


@pytest.mark.parametrize("which", ["training set", "air-bench"])
def test_embedded_shards_gather_to_the_unsharded_judgments(trained, air, tmp_path, which):
    """Sharding holds for the embedded backend too, on its training set (out-of-fold
    scores) and on another dataset (the fitted model): shards 1..3 gathered are byte-equal
    to grading in one job."""
    if which == "training set":
        name, records, whole = "moderation-subset", trained["records"], tmp_path / "whole.parquet"
        res = _grade(trained, whole)
        assert res.exit_code == 0, res.output
    else:
        name, records, whole = "air-bench-2024", air["records"], air["judgments"]
    shards = []
    for i in (1, 2, 3):
        out = tmp_path / f"shard-{i}.parquet"
        res = invoke(
            "grade", name, "--grader", "embedded", "--records", records,
            "--model-dir", trained["model"], "--shard", f"{i}/3", "--out", out,
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        shards.append(out)
    gathered = tmp_path / "gathered.parquet"
    res = invoke("gather-judgments", "--out", gathered, "--records", records, *shards)
    assert res.exit_code == 0, res.output
    assert gathered.read_bytes() == whole.read_bytes()
