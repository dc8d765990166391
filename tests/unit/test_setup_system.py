"""scripts/setup-system: silent when everything is there, one actionable message otherwise."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "setup-system"


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _env(tmp_path: Path, present: list[str], uid: int) -> dict[str, str]:
    """A PATH with stub commands only (plus a real bash/python3), as user ``uid``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in present:
        _stub(bin_dir, tool, "exit 0")
    _stub(bin_dir, "id", f"echo {uid}")
    _stub(bin_dir, "apt-get", f'echo "apt-get $*" >> {tmp_path}/apt.log')
    os.symlink(shutil.which("bash"), bin_dir / "bash")
    os.symlink(os.path.realpath(sys.executable), bin_dir / "python3")
    return {"PATH": str(bin_dir), "HOME": str(tmp_path)}


def _run(env: dict[str, str], purpose: str = "paper") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), purpose], env=env, capture_output=True, text=True, check=False
    )


ALL = ["make", "git", "latexmk", "pdftotext", "chromium", "chromedriver", "slurmctld", "munged"]


def test_silent_when_nothing_is_missing(tmp_path):
    res = _run(_env(tmp_path, ALL, uid=1000), "test")
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""


def test_without_root_it_prints_the_exact_apt_line(tmp_path):
    res = _run(_env(tmp_path, ["make", "git", "pdftotext"], uid=1000))
    assert res.returncode == 1
    assert (
        "sudo apt-get install -y --no-install-recommends latexmk texlive-latex-recommended "
        "texlive-latex-extra texlive-fonts-recommended" in res.stderr
    )
    assert not (tmp_path / "apt.log").exists()


def test_as_root_it_installs_what_is_missing(tmp_path):
    res = _run(_env(tmp_path, ["make", "git", "latexmk", "pdftotext"], uid=0), "test")
    assert res.returncode == 0, res.stderr
    log = (tmp_path / "apt.log").read_text()
    assert "apt-get update" in log
    assert "install -y -qq --no-install-recommends chromium chromium-driver" in log


def test_the_paper_purpose_does_not_ask_for_a_browser(tmp_path):
    res = _run(_env(tmp_path, ["make", "git", "latexmk", "pdftotext"], uid=1000), "paper")
    assert res.returncode == 0 and "chromium" not in res.stderr


@pytest.mark.parametrize("purpose", ["bogus"])
def test_unknown_purpose_is_a_usage_error(tmp_path, purpose):
    res = _run(_env(tmp_path, ALL, uid=0), purpose)
    assert res.returncode == 2 and "usage" in res.stderr
