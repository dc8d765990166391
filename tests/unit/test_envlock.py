"""The dependency lock (harmtrace.envlock): made from pip's lock, pinned and hashed, and in
agreement with pyproject.toml and environment.yml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement

from harmtrace.envlock import (
    LOCK_FILE,
    LockError,
    lock_sha256,
    locked_versions,
    requirements_from_pylock,
)

ROOT = Path(__file__).resolve().parents[2]
PYLOCK = """
lock-version = "1.0"
created-by = "pip"

[[packages]]
name = "Zeta"
version = "2.0"
[[packages.wheels]]
name = "zeta-2.0-py3-none-any.whl"
url = "file:///mirror/zeta-2.0-py3-none-any.whl"
[packages.wheels.hashes]
sha256 = "bb"
[packages.sdist]
name = "zeta-2.0.tar.gz"
url = "https://example/zeta-2.0.tar.gz"
[packages.sdist.hashes]
sha256 = "aa"

[[packages]]
name = "harmtrace"
[packages.directory]
path = "."
editable = true

[[packages]]
name = "alpha"
version = "1.0"
[[packages.wheels]]
name = "alpha-1.0-py3-none-any.whl"
url = "https://example/alpha-1.0-py3-none-any.whl"
[packages.wheels.hashes]
sha256 = "cc"
"""


def test_pip_lock_becomes_hash_pinned_requirements_without_machine_paths():
    text = requirements_from_pylock(PYLOCK)
    body = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert body == [
        "alpha==1.0 \\",
        "    --hash=sha256:cc",
        "Zeta==2.0 \\",
        "    --hash=sha256:aa \\",
        "    --hash=sha256:bb",
    ]
    assert "file://" not in text and "harmtrace" not in "".join(body)
    assert locked_versions(text) == {"alpha": "1.0", "zeta": "2.0"}


def test_a_package_without_a_hash_is_refused():
    broken = PYLOCK.replace('sha256 = "cc"', "")
    with pytest.raises(LockError, match="'alpha' has no version or no sha256"):
        requirements_from_pylock(broken)


def _dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names = [*project["dependencies"], *extras["dev"], *extras["model"]]
    return [Requirement(r) for r in names if not r.startswith("harmtrace")]


def test_the_lock_pins_every_dependency_within_its_specifier():
    text = (ROOT / LOCK_FILE).read_text()
    locked = locked_versions(text)
    env = default_environment()
    missing, outside = [], []
    for req in _dependencies():
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        version = locked.get(req.name.lower().replace("_", "-")) or locked.get(req.name.lower())
        if version is None:
            missing.append(req.name)
        elif not req.specifier.contains(version, prereleases=True):
            outside.append(f"{req} locked at {version}")
    assert missing == [] and outside == [], "run `make lock`"
    blocks = [b for b in text.split("\n") if "==" in b and not b.startswith("#")]
    assert all(b.endswith("\\") for b in blocks)  # every pin carries its hashes


def test_environment_yml_installs_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == ["--require-hashes", f"-r {LOCK_FILE}"]
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python == "python=3.11"  # the version the lock's wheels are for (cp311)
    assert "torch==2.13.0+cpu" in (ROOT / LOCK_FILE).read_text()


def test_the_lock_hash_names_the_file(tmp_path):
    assert lock_sha256(tmp_path) is None
    (tmp_path / LOCK_FILE).write_bytes(b"a==1 \\\n    --hash=sha256:00\n")
    assert (
        lock_sha256(tmp_path) == "94f941082d6e79dfc21549166ee50f4041702f1ed61309c4d4084be3b50f5f51"
    )
