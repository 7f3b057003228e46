"""Fixtures shared by every suite. Suites add their own in tests/<package>/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
VECTORS = REPO_ROOT / "tests" / "vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return VECTORS


# Fixtures shared across suites live in tests/fixtures/<topic>.py, one owner each.
pytest_plugins = [
    "tests.fixtures.chain",
    "tests.fixtures.database",
    "tests.fixtures.celery",
    "tests.fixtures.models",
    "tests.fixtures.proxy",
]
