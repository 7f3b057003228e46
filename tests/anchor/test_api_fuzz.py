"""Every route fuzzed from the app's own OpenAPI document (schemathesis, in process over ASGI), on both
databases: no answer is a 5xx, and every answer has a documented status, content type and schema (the
problem shape for every failure). A log of a few records is there, so reads find something too."""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from anchor.api import AppConfig, create_app
from tests.anchor.conftest import MAX_MERGE_DELAY, seed_registry
from tests.anchor.factory import DOMAIN, RECEIPT_KEY, entry, make_record

KEY = "tak_fuzz"
EXAMPLES = 30
"""Per operation, positive and negative cases together: ~300 cases per database, about 30 s on a loaded
2-core machine; a 422 left out of one route's document was found within them (tried by hand)."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _cases(operation: Any) -> Any:
    """Cases that fit the document and cases that do not (negative: wrong types, out of bounds...)."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    if operation.path_parameters or operation.query or operation.headers or operation.body:
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    return st.one_of(strategies)


def test_no_route_answers_a_5xx_or_off_its_document(database_url: str) -> None:
    seed_registry(database_url, api_key=KEY)
    app = create_app(AppConfig(database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY))
    with TestClient(app) as c:
        batch = {"entries": [entry(make_record(f"f-{i}")) for i in range(3)]}
        assert c.post("/v1/records:batch", json=batch, headers={"X-Api-Key": KEY}).status_code == 201
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 16  # every route of the document
    cases = 0

    for operation in operations:  # (schemathesis's pytest plugin does not run on pytest 9)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=_cases(operation))
        def fuzz(case: Any) -> None:
            nonlocal cases
            cases += 1
            case.call_and_validate(headers={"X-Api-Key": KEY}, checks=CHECKS)

        fuzz()
    print(f"{cases} cases over {len(operations)} operations")
    app.state.engine.dispose()
