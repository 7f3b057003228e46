"""Group commit of single submissions on both databases: concurrent records share a transaction, and a bad
one in a group fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from anchor.db import make_engine, session_factory
from anchor.errors import InputError
from anchor.leaf import leaf_hash
from anchor.log.store import LogStore
from anchor.merkle import reference as ref
from anchor.merkle import sha256_hasher
from anchor.records.group_commit import GroupCommit
from anchor.records.ingest import Accepted, NotRegisteredError, Recorder, Submission
from tests.anchor.conftest import MAX_MERGE_DELAY, seed_registry
from tests.anchor.factory import DOMAIN, PROVIDER, RECEIPT_KEY, entry, make_record, other_key


class GatedRecorder(Recorder):
    """The real recorder, whose first transaction waits for the test to open a gate (so that others
    queue up meanwhile); records every batch it is asked to submit."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        super().__init__(sessions, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY)
        self.gate = threading.Event()
        self.batches: list[list[str]] = []

    def submit(self, subs: Sequence[Submission], api_key: str | None = None) -> list[Accepted]:
        self.batches.append([sub.record.request_id for sub in subs])
        self.gate.wait(timeout=60)
        return super().submit(subs, api_key)


def _poll(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _submit_all(group: GroupCommit, subs: list[Submission]) -> list[Any]:
    """Submit each from its own thread, the first alone until it holds the (gated) transaction."""
    results: list[Any] = [None] * len(subs)

    def run(i: int) -> None:
        try:
            results[i] = group.submit(subs[i])
        except Exception as exc:
            results[i] = exc

    recorder = group.recorder
    assert isinstance(recorder, GatedRecorder)
    recorder.batches.clear()
    recorder.gate.clear()
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(subs))]
    threads[0].start()
    _poll(lambda: len(recorder.batches) == 1, "the first submission to lead")
    for t in threads[1:]:
        t.start()
    _poll(lambda: group.waiting() == len(subs) - 1, "every other submission to queue")
    recorder.gate.set()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    return results


@pytest.fixture
def recorder(database_url: str) -> Any:
    seed_registry(database_url)
    engine = make_engine(database_url)
    yield GatedRecorder(session_factory(engine))
    engine.dispose()


def _sub(request_id: str, **kwargs: Any) -> Submission:
    return Submission.from_json(entry(make_record(request_id), **kwargs), DOMAIN)


def test_concurrent_singles_share_one_transaction_and_get_their_own_receipts(recorder: GatedRecorder) -> None:
    group = GroupCommit(recorder)
    subs = [_sub(f"g-{i}") for i in range(8)]
    results = _submit_all(group, subs)
    assert recorder.batches == [["g-0"], [f"g-{i}" for i in range(1, 8)]]  # two transactions for 8 records
    assert all(isinstance(r, Accepted) and r.created for r in results)
    indexes = [r.receipt.log_index for r in results]
    assert sorted(indexes) == list(range(8)) and indexes[0] == 0
    for sub, r in zip(subs, results, strict=True):
        assert r.receipt.record_digest == sub.digest
        assert r.receipt.signer(r.signature, DOMAIN) == RECEIPT_KEY.public_key.to_checksum_address()
    leaves = [b""] * 8
    for sub, r in zip(subs, results, strict=True):
        leaves[r.receipt.log_index] = leaf_hash(PROVIDER, sub.digest)
    with recorder.sessions() as s:
        assert LogStore(s).root(8) == ref.root(sha256_hasher, leaves)
    # The same record sent twice at once: logged once, the second answer is a replay.
    again = _submit_all(GroupCommit(recorder), [_sub("twice"), _sub("twice"), _sub("once")])
    assert [r.created for r in again] == [True, False, True]
    assert again[0].receipt == again[1].receipt


def test_a_bad_submission_in_a_group_fails_alone(recorder: GatedRecorder) -> None:
    group = GroupCommit(recorder)
    stranger = other_key("stranger")  # signs validly, but is not a registered provider
    foreign = make_record("bad-1", provider=stranger.public_key.to_checksum_address())
    subs = [
        _sub("ok-0"),
        _sub("ok-1"),
        Submission.from_json(entry(foreign, key=stranger), DOMAIN),
        _sub("ok-2"),
    ]
    results = _submit_all(group, subs)
    assert isinstance(results[2], NotRegisteredError) and results[2].field == "record.provider"
    assert [type(r) for r in results] == [Accepted, Accepted, NotRegisteredError, Accepted]
    # The group of three was refused as a whole, then each was retried on its own.
    assert recorder.batches == [["ok-0"], ["ok-1", "bad-1", "ok-2"], ["ok-1"], ["bad-1"], ["ok-2"]]
    assert sorted(r.receipt.log_index for r in results if isinstance(r, Accepted)) == [0, 1, 2]
    with recorder.sessions() as s:
        assert LogStore(s).size() == 3
    with pytest.raises(InputError):
        group.submit(subs[2])  # alone: the same answer, straight away
