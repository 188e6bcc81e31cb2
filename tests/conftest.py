"""Shared pytest setup. Servers (Kafka, Triton) are started by the fixtures themselves, once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.kafka_broker",
    "tests.fixtures.triton_server",
    "tests.fixtures.clickhouse",
    "tests.fixtures.services",
    "tests.fixtures.hotlist_service",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATASETS = Path(os.environ.get("PLATEWATCH_SHARED_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """../shared/datasets (dev images, AGPL data: read in place, never copied). Skips when absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATASETS}; set PLATEWATCH_SHARED_DATASETS")
    return SHARED_DATASETS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests under tests/integration and tests/e2e carry their marker without repeating it."""
    for item in items:
        path = str(item.fspath)
        if f"{os.sep}integration{os.sep}" in path:
            item.add_marker(pytest.mark.integration)
        if f"{os.sep}e2e{os.sep}" in path:
            item.add_marker(pytest.mark.e2e)
