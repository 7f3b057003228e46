"""Verifier suite fixtures: a deployed chain with a recorder database (see chain_env.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.verifier.chain_env import Chain, open_chain


@pytest.fixture
def chain(database_url: str, tmp_path: Path) -> Iterator[Chain]:
    """On SQLite and on PostgreSQL."""
    yield from open_chain(database_url, tmp_path)


@pytest.fixture
def sqlite_chain(sqlite_url: str, tmp_path: Path) -> Iterator[Chain]:
    yield from open_chain(sqlite_url, tmp_path)
