"""Tests that need something outside Python (a real server, a Slurm cluster): skipped
where it is missing, but a failure in CI or when their opt-in variable is 1, so a skip
there can never hide a missing install step."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def required(flag: str) -> bool:
    """True in CI (``CI`` set) or with ``<flag>=1``."""
    return os.environ.get(flag) == "1" or bool(os.environ.get("CI"))


def unavailable(flag: str, what: str, reason: str) -> NoReturn:
    """Skip with ``reason``, or fail with it where :func:`required` says ``what`` must run."""
    if required(flag):
        pytest.fail(f"{what} must run here (CI or {flag}=1), but {reason}")
    pytest.skip(reason)
