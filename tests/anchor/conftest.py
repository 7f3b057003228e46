"""Anchor suite fixtures: a recorder database with a registered provider and model, and an API client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from anchor.api import AppConfig, create_app
from anchor.db import make_engine, session_factory, transaction
from anchor.records.registry import declare_model, register_provider
from tests.anchor.factory import DOMAIN, LIMITS, MODEL, PROVIDER, RECEIPT_KEY

MAX_MERGE_DELAY = 600


def seed_registry(database_url: str, api_key: str | None = None) -> None:
    engine = make_engine(database_url)
    with transaction(session_factory(engine)) as s:
        register_provider(s, PROVIDER, "test provider", api_key)
        declare_model(s, MODEL.name, MODEL.fingerprint, LIMITS)
    engine.dispose()


@pytest.fixture
def app_config(database_url: str) -> AppConfig:
    seed_registry(database_url)
    return AppConfig(database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY)


@pytest.fixture
def client(app_config: AppConfig) -> Iterator[TestClient]:
    app = create_app(app_config)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()
