"""The shared skip-or-fail rule of the tests that need an outside stack."""

from __future__ import annotations

import pytest

from tests.required import unavailable


def test_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("HARMTRACE_X", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no daemon"):
        unavailable("HARMTRACE_X", "the X tests", "no daemon")


@pytest.mark.parametrize(("name", "value"), [("CI", "true"), ("HARMTRACE_X", "1")])
def test_fails_in_ci_or_when_asked_for(monkeypatch, name, value):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv(name, value)
    with pytest.raises(pytest.fail.Exception, match=r"the X tests must run here .*no daemon"):
        unavailable("HARMTRACE_X", "the X tests", "no daemon")
