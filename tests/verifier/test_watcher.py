"""The watcher on a real Anvil and both databases: every contract event lands exactly once across
crashes in the middle of a pass (`toploc-audit watch --once` subprocesses that SIGKILL themselves, then
a restart), and a reorganisation of the chain removes what vanished and applies the new branch.

Disputes, votes and resolutions are sent here directly with the participants' keys (no workers): the
watcher only copies what the chain says.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from anchor.db import transaction
from anchor.db.models import ChainEvent, Dispute, Payout, Slash, Vote
from anchor.db.models import Record as RecordRow
from tests.verifier.chain_env import Chain
from tests.verifier.stack import CHALLENGER
from verifier.models import ABSTAINING, PENDING, Validation
from verifier.validation import load_jobs

pytestmark = pytest.mark.slow


def test_every_event_lands_once_across_crashes_mid_pass(chain: Chain) -> None:
    first, second = chain.log_and_anchor("w-1"), chain.log_and_anchor("w-2")
    d1, committee1 = chain.dispute(first)
    d2, committee2 = chain.dispute(second)
    chain.votes(d1, dict.fromkeys(committee1, True))  # every member reveals: resolvable at once
    chain.votes(d2, {committee2[0]: False})
    chain.client(CHALLENGER).resolve(d1)  # fraud: the provider is slashed, everyone credited

    for step in ("after-fetch", "after-apply"):
        crashed = chain.watch_process(crash_at=step)
        assert crashed.returncode == -9, crashed.stderr  # SIGKILLed itself mid-pass
        assert chain.count(ChainEvent) == 0  # the pass was one transaction: nothing of it is left

    done = chain.watch()
    assert done.added == len(chain.chain_logs()) and done.removed == 0
    assert chain.stored() == chain.chain_logs()
    assert chain.count(Dispute) == 2 and chain.count(Vote) == 4
    assert chain.count(Payout) == 1 + 3  # the challenger and the three fraud voters
    assert chain.count(Slash) == 1
    with chain.recorder.sessions() as s:
        outcome = s.scalar(select(Dispute.outcome).where(Dispute.dispute_id == d1))
        ours = s.scalars(select(Validation).where(Validation.dispute_id == d2)).all()
    assert outcome == 1
    assert len(ours) == 3  # every member of d2 is one of this deployment's validators

    again = chain.watch()
    assert (again.added, again.removed) == (0, 0)
    assert chain.count(ChainEvent) == len(chain.chain_logs())


def test_reorg_removes_the_vanished_branch_and_applies_the_new_one(chain: Chain) -> None:
    first, second = chain.log_and_anchor("r-1"), chain.log_and_anchor("r-2")
    chain.watch()
    snapshot = chain.node.snapshot()

    # Branch A: a dispute of entry `first`, one vote, synced.
    d_a, committee_a = chain.dispute(first)
    chain.votes(d_a, {committee_a[0]: True})
    chain.watch()
    with chain.recorder.sessions() as s:
        leaf = s.scalar(select(Dispute.leaf_index).where(Dispute.dispute_id == d_a))
    assert leaf == first and chain.count(Vote) == 1
    branch_a = chain.stored()

    # Branch B replaces it (deeper than the confirmation depth): the same dispute id, another entry.
    chain.node.revert(snapshot)
    d_b, committee_b = chain.dispute(second)
    assert d_b == d_a
    chain.node.mine(10)
    done = chain.watch()
    assert done.removed == len(branch_a - chain.chain_logs()) > 0

    assert chain.stored() == chain.chain_logs()
    with chain.recorder.sessions() as s:
        gone = s.scalars(select(ChainEvent).where(ChainEvent.removed.is_(True))).all()
        dispute = s.scalars(select(Dispute).where(Dispute.dispute_id == d_b)).one()
        validations = s.scalars(select(Validation).where(Validation.dispute_id == d_b)).all()
    assert {(bytes(e.tx_hash), e.log_index) for e in gone} == branch_a - chain.chain_logs()
    assert dispute.leaf_index == second and dispute.committee == list(committee_b)
    assert chain.count(Vote) == 0  # branch A's vote vanished with it
    # Branch A's validations were cancelled, then started afresh for branch B's record.
    with chain.recorder.sessions() as s:
        record_b = s.scalar(select(RecordRow.id).where(RecordRow.log_index == second))
    assert {v.validator for v in validations} == set(committee_b)
    assert {(v.status, v.record_id) for v in validations} == {(PENDING, record_b)}

    again = chain.watch()
    assert (again.added, again.removed) == (0, 0)


def test_a_changed_or_withheld_record_is_judged_from_the_calldata(chain: Chain) -> None:
    """openDispute carries the record's bytes: when the log's copy is changed after the dispute, the
    validators load the chain's copy instead of abstaining; with neither, they abstain saying why."""
    index = chain.log_and_anchor("withheld-0")
    dispute_id, _ = chain.dispute(index)
    with transaction(chain.recorder.sessions) as s:
        row = s.scalars(select(RecordRow).where(RecordRow.log_index == index)).one()
        digest, canonical = bytes(row.record_digest), bytes(row.canonical)
        row.canonical = canonical.replace(b'"request_id":"withheld-0"', b'"request_id":"withheld-1"')
    chain.watch()
    with chain.recorder.sessions() as s:
        ids = list(s.scalars(select(Validation.id).where(Validation.dispute_id == dispute_id)))
        assert s.scalars(select(Dispute.record).where(Dispute.dispute_id == dispute_id)).one() == canonical
    assert ids
    jobs, ended = load_jobs(chain.recorder.sessions, ids)
    assert ended == [] and len(jobs) == len(ids)
    assert all(j.record.canonical_bytes() == canonical and j.digest == digest for j in jobs)

    with transaction(chain.recorder.sessions) as s:  # a dispute synced without the calldata's copy
        s.execute(update(Dispute).where(Dispute.dispute_id == dispute_id).values(record=None))
    jobs, ended = load_jobs(chain.recorder.sessions, ids)
    assert jobs == [] and {o.status for o in ended} == {ABSTAINING}
    assert all(o.reason.startswith("recordDigest mismatch: the stored record hashes to") for o in ended)
