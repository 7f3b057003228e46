"""The embedded defaults `make demo` runs on: a SQLite database and the kombu SQLAlchemy transport on a
SQLite file as the broker (no server at all), with real worker processes and the watcher. An honest
record and one with a changed output token (tiny random Llama) are disputed and decided."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from anchor.chain.client import Outcome
from gpu_core.runner.loading import load_model
from tests.verifier.stack import PROVIDER, VALIDATORS, Stack, build_stack, make_record, running
from verifier.models import VOTED, Validation

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tmp_path: Path, sqlite_url: str, sqlite_broker_url: str, tiny_llama_dir: Path) -> Iterator[Stack]:
    model = load_model(tiny_llama_dir, "bfloat16")
    s = build_stack(tmp_path / "home", sqlite_url, sqlite_broker_url, "", model)
    s.model = model  # type: ignore[attr-defined]
    with running(s):
        for validator in VALIDATORS:
            s.give_models(validator, [tiny_llama_dir])
        s.start_workers()
        s.start_watcher()
        yield s


def test_disputes_resolve_on_sqlite_database_and_sqlite_broker(stack: Stack) -> None:
    model: Any = stack.model  # type: ignore[attr-defined]
    honest = make_record(model, "embedded-honest", [3, 1, 4, 1, 5, 9, 2, 6], 24, 8)
    output = list(honest.output_tokens)
    output[5] = (output[5] + 7) % 1024
    changed = replace(honest, output_tokens=tuple(output), request_id="embedded-changed")
    indexes = [stack.log_record(honest), stack.log_record(changed)]
    stack.anchor()
    client = stack.client()
    stake = client.stake_of(PROVIDER.address).active
    disputes = [stack.dispute(i).dispute_id for i in indexes]

    assert stack.wait_resolved(disputes[0]) == Outcome.HONEST
    assert stack.wait_resolved(disputes[1]) == Outcome.FRAUD
    with stack.sessions() as s:
        rows = s.scalars(select(Validation).order_by(Validation.dispute_id, Validation.id)).all()
    assert [(v.dispute_id, v.status, v.fraud) for v in rows] == [
        (disputes[0], VOTED, False),
        (disputes[0], VOTED, False),
        (disputes[0], VOTED, False),
        (disputes[1], VOTED, True),
        (disputes[1], VOTED, True),
        (disputes[1], VOTED, True),
    ]
    assert client.stake_of(PROVIDER.address).active == stake - client.parameters().slashAmount
