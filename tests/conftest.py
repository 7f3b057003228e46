"""Fixtures shared by every suite. Suites add their own in tests/<package>/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# `make test` runs two pytest-xdist workers on two cores: one compute thread each (torch reads this at
# import, subprocesses inherit it), since two workers of two spinning threads each slow model tests 2.5x.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
VECTORS = REPO_ROOT / "tests" / "vectors"


# Files that dominate the run go first, so one worker starts on them while the other takes the rest
# (xdist's loadfile hands each worker whole files, in collection order).
FIRST = ("tests/gpu_core/test_sound_verdicts.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(REPO_ROOT).as_posix()
        return FIRST.index(path) if path in FIRST else len(FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


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
