"""Fixtures of the deployment tests: the tools they drive, installed into var/tools on first use."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.tools import ToolUnavailable, helm_binary, prometheus_bin_dir


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    """Directory with `prometheus` and `promtool` from Debian's package."""
    try:
        return prometheus_bin_dir()
    except ToolUnavailable as exc:
        pytest.fail(f"cannot install Prometheus: {exc}")


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm binary, built from the Go module proxy on first use."""
    try:
        return helm_binary()
    except ToolUnavailable as exc:
        pytest.fail(f"cannot install helm: {exc}")
