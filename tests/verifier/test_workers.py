"""Real Celery workers on Redis (a redis-server of this module) and PostgreSQL, validating records of a
tiny random Llama: abstention, a worker killed mid-validation, and a broker restart plus an RPC outage
during a dispute.

Validators 0 and 1 hold the model; validator 2's store has only a different model (another seed), so
it cannot check these records and abstains on chain with its reason; once the other two have committed
and revealed, the round is complete and the workers resolve the dispute without waiting for a deadline.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from anchor.chain.client import Ballot, Outcome
from anchor.db.models import ChainEvent, Vote
from gpu_core.runner.loading import load_model
from gpu_core.runner.tiny import prepare_tiny_llama
from tests.fixtures.celery import PrivateRedis, wait_for
from tests.verifier.stack import (
    CHALLENGER,
    PARAMETERS,
    PROVIDER,
    VALIDATORS,
    Stack,
    build_stack,
    make_record,
    running,
)
from verifier.models import ABSTAINED, FINAL, VOTED, Validation

pytestmark = pytest.mark.slow

BPS = 10_000


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir: Path) -> Any:
    return load_model(tiny_llama_dir, "bfloat16")


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another model (a different seed): the store of a validator that cannot check the records."""
    folder, _ = prepare_tiny_llama(tmp_path_factory.mktemp("models"), seed=1)
    return folder


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateRedis]:
    redis = PrivateRedis()
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    _postgres_databases: Any,
    broker: PrivateRedis,
    tiny: Any,
    other_model: Path,
    queue_prefix: str,
) -> Iterator[Stack]:
    name = _postgres_databases.fresh()
    home = tmp_path_factory.mktemp("stack")
    s = build_stack(home, _postgres_databases.url(name), broker.url, queue_prefix, tiny)
    with running(s):
        s.give_models(VALIDATORS[0], [tiny.folder])
        s.give_models(VALIDATORS[1], [tiny.folder])
        s.give_models(VALIDATORS[2], [other_model])
        s.start_workers()
        s.start_watcher()
        yield s
    _postgres_databases.drop(name)


def validations(stack: Stack, dispute_id: int) -> dict[str, Validation]:
    with stack.sessions() as s:
        rows = s.scalars(select(Validation).where(Validation.dispute_id == dispute_id))
        return {v.validator: v for v in rows}


def wait_final(stack: Stack, dispute_id: int, timeout: float = 240.0) -> dict[str, Validation]:
    """Every committee member's validation finished (voted, abstained or cancelled)."""

    def done() -> dict[str, Validation] | None:
        rows = validations(stack, dispute_id)
        return rows if len(rows) == 3 and all(v.status in FINAL for v in rows.values()) else None

    return wait_for(done, timeout, f"the validations of dispute {dispute_id}")  # type: ignore[return-value]


def credits(stack: Stack) -> dict[str, int]:
    client = stack.client()
    return {a.address: client.credits(a.address) for a in (PROVIDER, CHALLENGER, *VALIDATORS)}


def test_validator_without_the_model_abstains_and_the_others_decide(stack: Stack, tiny: Any) -> None:
    index = stack.log_record(make_record(tiny, "abstain-1", [1, 17, 99, 250, 7, 31]))
    stack.anchor()
    before = credits(stack)
    stake_before = stack.client().stake_of(VALIDATORS[2].address).active
    filed = stack.dispute(index)

    rows = wait_final(stack, filed.dispute_id)
    v0, v1, v2 = (rows[v.address] for v in VALIDATORS)
    assert (v0.status, v0.fraud) == (VOTED, False) and (v1.status, v1.fraud) == (VOTED, False)
    assert v2.status == ABSTAINED and v2.fraud is None
    assert "not in the local model store" in (v2.reason or "")
    client = stack.client()
    # Never a fraud vote: an abstention on chain, bound to the published reason.
    assert client.ballot_of(filed.dispute_id, VALIDATORS[2].address).state == Ballot.ABSTAINED
    assert v2.evidence_hash is not None and b"not in the local model store" in (v2.report or b"")

    assert stack.wait_resolved(filed.dispute_id) == Outcome.HONEST

    # Honest: the bond goes to the provider and the two voters, with the abstainer's (small) penalty.
    bond, penalty = PARAMETERS.bond, PARAMETERS.abstentionPenalty
    provider_share = bond * PARAMETERS.providerShareBps // BPS
    voter_share = (bond - provider_share + penalty) // 2
    after = credits(stack)
    assert after[PROVIDER.address] - before[PROVIDER.address] == provider_share + (
        bond - provider_share + penalty - 2 * voter_share
    )
    assert after[VALIDATORS[0].address] - before[VALIDATORS[0].address] == voter_share
    assert after[VALIDATORS[1].address] - before[VALIDATORS[1].address] == voter_share
    assert after[VALIDATORS[2].address] == before[VALIDATORS[2].address]
    assert after[CHALLENGER.address] == before[CHALLENGER.address]  # the challenger lost its bond
    assert client.stake_of(VALIDATORS[2].address).active == stake_before - penalty


def test_worker_killed_mid_validation_votes_exactly_once(stack: Stack, tiny: Any) -> None:
    index = stack.log_record(make_record(tiny, "killed-1", [5, 6, 7, 8, 9, 10, 11]))
    stack.anchor()
    victim = VALIDATORS[0]
    dispute_id = stack.client().dispute_count() + 1
    gate = stack.hold_dir / f"hold-{dispute_id}"
    gate.touch()
    filed = stack.dispute(index)
    assert filed.dispute_id == dispute_id

    marker = stack.hold_dir / f"running-{dispute_id}-{victim.address.lower()}"
    wait_for(marker.exists, 120, "the validation to start on the victim's worker")
    pid = int(marker.read_text())
    worker = stack.workers[victim.address]
    assert pid in worker.children()  # the pool process running the task, not the worker itself
    os.kill(pid, signal.SIGKILL)
    marker.unlink()
    wait_for(
        lambda: pid not in worker.children() and worker.children(), 60, "the pool to replace its process"
    )
    gate.unlink()

    rows = wait_final(stack, dispute_id)
    mine = rows[victim.address]
    assert mine.status == VOTED and mine.fraud is False
    assert mine.attempts == 2, mine  # redelivered (acks_late, reject_on_worker_lost) and run again
    client = stack.client()
    assert client.ballot_of(dispute_id, victim.address).state == Ballot.HONEST

    def synced_votes() -> list[ChainEvent]:
        with stack.sessions() as s:
            events = s.scalars(select(ChainEvent).where(ChainEvent.name == "VoteRevealed")).all()
        return [e for e in events if e.args["disputeId"] == dispute_id]

    wait_for(lambda: len(synced_votes()) == 2, 60, "the watcher to sync both votes")
    assert [e.args["validator"] for e in synced_votes()].count(victim.address) == 1
    with stack.sessions() as s:
        votes = s.scalar(select(func.count()).select_from(Vote).where(Vote.validator == victim.address))
    assert votes == 2  # one per dispute of this module so far: this one and the first test's
    assert stack.wait_resolved(dispute_id) == Outcome.HONEST


def test_broker_restart_and_rpc_outage_during_a_dispute(
    stack: Stack, tiny: Any, broker: PrivateRedis
) -> None:
    index = stack.log_record(make_record(tiny, "outage-1", [40, 41, 42, 43, 44]))
    stack.anchor()
    dispute_id = stack.client().dispute_count() + 1
    gate = stack.hold_dir / f"hold-{dispute_id}"
    gate.touch()
    filed = stack.dispute(index)
    markers = [stack.hold_dir / f"running-{dispute_id}-{v.address.lower()}" for v in VALIDATORS[:2]]
    wait_for(lambda: all(m.exists() for m in markers), 120, "both validations to start")

    # The broker goes away with every queued message, and the node stops answering.
    broker.stop()
    stack.proxy.stop()
    gate.unlink()  # the validations finish while both are down; their votes cannot be sent
    wait_for(
        lambda: sum(v.status == "validated" for v in validations(stack, dispute_id).values()) == 2,
        120,
        "both reports stored",
    )
    broker.start()  # empty: nothing queued survived; the watcher queues the votes again

    def vote_failed(v: Validation) -> bool:
        return v.status == "validated" and "vote not sent yet" in (v.reason or "")

    wait_for(
        lambda: sum(vote_failed(v) for v in validations(stack, dispute_id).values()) == 2,
        120,
        "both votes to fail against the unreachable node",
    )
    stack.proxy.start()

    rows = wait_final(stack, dispute_id)
    assert [rows[v.address].status for v in VALIDATORS] == [VOTED, VOTED, ABSTAINED]
    assert stack.wait_resolved(filed.dispute_id) == Outcome.HONEST
    client = stack.client()
    assert [client.ballot_of(dispute_id, v.address).state for v in VALIDATORS] == [
        Ballot.HONEST,
        Ballot.HONEST,
        Ballot.ABSTAINED,
    ]
