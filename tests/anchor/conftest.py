"""Anchor suite fixtures: a recorder database with a registered provider and model, and an API client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from anchor.api import AppConfig, create_app
from anchor.api.config import AccessPolicy
from anchor.db import make_engine, session_factory, transaction
from anchor.records.registry import declare_model, register_provider
from tests.anchor.factory import DOMAIN, LIMITS, MODEL, PROVIDER, RECEIPT_KEY

MAX_MERGE_DELAY = 600
KEYLESS = AccessPolicy(require_api_key=False)


def field_reason(response) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    """The field and reason of a problem answer (RFC 9457 with the project's extension members)."""
    body = response.json()
    return {"field": body["field"], "reason": body["reason"]}


def seed_registry(database_url: str, api_key: str | None = None) -> None:
    engine = make_engine(database_url)
    with transaction(session_factory(engine)) as s:
        register_provider(s, PROVIDER, "test provider", api_key)
        declare_model(s, MODEL.name, MODEL.fingerprint, LIMITS)
    engine.dispose()


@pytest.fixture
def app_config(database_url: str) -> AppConfig:
    seed_registry(database_url)
    # The provider has no API key here; tests of keys build their own app (test_api.py, API keys).
    return AppConfig(database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY, access=KEYLESS)


@pytest.fixture
def client(app_config: AppConfig) -> Iterator[TestClient]:
    app = create_app(app_config)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()
