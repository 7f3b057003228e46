"""The validation pipeline in this process (no broker, no chain): batched claims, digest checks, the
model store, reports and evidence hashes, on SQLite and PostgreSQL, with real records of the tiny Llama.

Disputes are inserted as the watcher would have stored them."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from eth_keys import keys
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from anchor.db import make_engine, session_factory, transaction
from anchor.db.models import Dispute
from anchor.db.models import Record as RecordRow
from anchor.errors import InputError
from anchor.leaf import leaf_hash
from anchor.records import Record, Sampling
from anchor.records.eip712 import Domain
from anchor.records.ingest import Recorder, RecordPolicy, Submission
from anchor.records.registry import declare_model, limits_from_folder, register_provider
from gpu_core.runner.loading import load_model
from tests.verifier.stack import CHALLENGER, OPERATOR, PROVIDER, VALIDATORS, make_record
from toploc_audit.commands.generate import signed_entry
from verifier.model_store import ModelStore
from verifier.models import ABSTAINED, ABSTAINING, CANCELLED, CLAIMED, PENDING, VALIDATED, Validation
from verifier.validation import CouldNotCheck, PartlyChecked, Pipeline, abstain_claimed, claim
from verifier.verdicts import REPORT_FORMAT

ME = VALIDATORS[0].address
DOMAIN = Domain.of(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir: Path) -> Any:
    return load_model(tiny_llama_dir, "bfloat16")


@pytest.fixture(scope="module")
def records(tiny: Any) -> list[Record]:
    """Three honest records and one whose output token 3 was changed afterwards."""
    honest = [make_record(tiny, f"v-{i}", [7 + i, 70, 700, 17], 20, 8) for i in range(3)]
    output = list(honest[0].output_tokens)
    output[3] = (output[3] + 1) % 1024
    return [*honest, replace(honest[0], output_tokens=tuple(output), request_id="v-changed")]


def _entry(record: Record) -> dict[str, Any]:
    return signed_entry(record, PROVIDER.key, DOMAIN)


def _unchecked(record: Record) -> Submission:
    digest = record.digest()
    signature = bytes.fromhex(_entry(record)["signature"][2:])
    return Submission(record, signature, digest, "", leaf_hash(bytes.fromhex(PROVIDER.address[2:]), digest))


@dataclass
class Db:
    sessions: sessionmaker[Session]
    store: ModelStore

    def add(self, records: list[Record], validator: str = ME, unchecked: bool = False) -> list[int]:
        """Log each record, store a dispute of it and a pending validation; the validation ids.
        `unchecked`: logged as a recorder that did not check them would have (no parse, no policy)."""
        recorder = Recorder(self.sessions, DOMAIN, keys.PrivateKey(OPERATOR.key), 3600)
        subs = [_unchecked(r) if unchecked else Submission.from_json(_entry(r), DOMAIN) for r in records]
        accepted = recorder.submit(subs)
        ids = []
        with transaction(self.sessions) as s:
            next_id = len(s.scalars(select(Dispute.id)).all()) + 1
            for offset, (record, answer) in enumerate(zip(records, accepted, strict=True)):
                row = s.scalars(
                    select(RecordRow).where(RecordRow.log_index == answer.receipt.log_index)
                ).one()
                dispute_id = next_id + offset
                s.add(
                    Dispute(
                        dispute_id=dispute_id,
                        leaf_index=row.log_index,
                        record_id=row.id,
                        provider=PROVIDER.address,
                        challenger=CHALLENGER.address,
                        record_digest=row.record_digest,
                        bond=1,
                        committee=[v.address for v in VALIDATORS],
                        deadline=2**40,
                        opened_tx=secrets.token_bytes(32),
                        opened_block=1,
                    )
                )
                v = Validation(
                    dispute_id=dispute_id,
                    validator=validator,
                    status=PENDING,
                    attempts=0,
                    record_id=row.id,
                    model_fingerprint=record.model.fingerprint,
                    created_at=0,
                    updated_at=0,
                )
                s.add(v)
                s.flush()
                ids.append(v.id)
        return ids

    def rows(self, ids: list[int]) -> list[Validation]:
        with self.sessions() as s:
            return [s.get(Validation, i) for i in ids]  # type: ignore[misc]

    def pipeline(self, batch: int = 64) -> Pipeline:
        return Pipeline(self.sessions, self.store, ME, 600, batch)


@pytest.fixture
def db(database_url: str, tiny: Any, tmp_path: Path) -> Iterator[Db]:
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    with transaction(sessions) as s:
        register_provider(s, PROVIDER.address)
        declare_model(s, tiny.folder.name, tiny.fingerprint, limits_from_folder(tiny.folder))
    store = tmp_path / "models"
    store.mkdir()
    (store / tiny.folder.name).symlink_to(tiny.folder, target_is_directory=True)
    yield Db(sessions, ModelStore(store))
    engine.dispose()


def test_one_task_validates_every_pending_record_of_its_model_in_one_batch(
    db: Db, records: list[Record]
) -> None:
    ids = db.add(records)
    outcomes = db.pipeline().run(ids[1], "task-1")
    assert sorted(o.validation_id for o in outcomes) == ids
    rows = db.rows(ids)
    assert [(v.status, v.fraud, v.attempts, v.claimed_by) for v in rows] == [
        (VALIDATED, False, 1, None),
        (VALIDATED, False, 1, None),
        (VALIDATED, False, 1, None),
        (VALIDATED, True, 1, None),
    ]
    for v, record in zip(rows, records, strict=True):
        assert v.evidence_hash == hashlib.sha256(v.report).digest()  # type: ignore[arg-type]
        report = json.loads(v.report)  # type: ignore[arg-type]
        assert report["format"] == REPORT_FORMAT and report["validator"] == ME
        assert report["recordDigest"] == "0x" + record.digest().hex()
        assert report["disputeId"] == v.dispute_id and report["fraud"] == v.fraud
        assert len(report["chunks"]) == len(record.proofs)  # one entry per proved chunk
    changed = json.loads(rows[3].report)  # type: ignore[arg-type]
    assert changed["reasons"] and changed["chunks"][1]["failures"]  # the chunk holding the changed token
    assert db.pipeline().run(ids[0], "task-2") == []  # done: a duplicate task does nothing


def test_the_batch_size_bounds_a_claim(db: Db, records: list[Record]) -> None:
    ids = db.add(records[:3])
    assert len(db.pipeline(batch=2).run(ids[0], "task-1")) == 2
    assert [v.status for v in db.rows(ids)] == [VALIDATED, VALIDATED, PENDING]


def test_a_claim_is_held_by_its_task_until_its_lease_ends(db: Db, records: list[Record]) -> None:
    ids = db.add(records[:2])
    assert claim(db.sessions, ids[0], ME, "task-a", 600, 64, now=1000) == ids
    assert claim(db.sessions, ids[0], ME, "task-b", 600, 64, now=1001) == []  # held by a live task
    assert claim(db.sessions, ids[1], VALIDATORS[1].address, "task-c", 600, 64, now=1001) == []  # not ours
    assert claim(db.sessions, ids[0], ME, "task-a", 600, 64, now=1002) == ids  # redelivered: taken back
    assert claim(db.sessions, ids[1], ME, "task-b", 600, 64, now=1603) == [ids[1], ids[0]]  # lease ended
    assert [v.attempts for v in db.rows(ids)] == [3, 3]


def test_skip_locked_leaves_rows_another_transaction_holds(
    postgresql_url: str, tiny: Any, tmp_path: Path, records: list[Record]
) -> None:
    engine = make_engine(postgresql_url)
    sessions = session_factory(engine)
    with transaction(sessions) as s:
        register_provider(s, PROVIDER.address)
        declare_model(s, tiny.folder.name, tiny.fingerprint, limits_from_folder(tiny.folder))
    db = Db(sessions, ModelStore(tmp_path))
    ids = db.add(records[:3])
    with transaction(sessions) as other:  # a concurrent claimer holds row 2 locked
        other.execute(select(Validation).where(Validation.id == ids[1]).with_for_update())
        assert claim(sessions, ids[0], ME, "task-a", 600, 64) == [ids[0], ids[2]]
    engine.dispose()


def test_a_missing_model_is_could_not_check_and_then_an_abstention(
    db: Db, records: list[Record], tmp_path: Path
) -> None:
    ids = db.add(records[:2])
    empty = Pipeline(db.sessions, ModelStore(tmp_path / "nothing"), ME, 600, 64)
    with pytest.raises(CouldNotCheck, match="is not in the local model store"):
        empty.run(ids[0], "task-1")
    assert [(v.status, v.claimed_by) for v in db.rows(ids)] == [(CLAIMED, "task-1")] * 2  # kept for the retry
    with pytest.raises(CouldNotCheck):
        empty.run(ids[0], "task-1")  # the retry (same task id) takes its claim back
    abstain_claimed(db.sessions, "task-1", "could not check after 1 retries")
    # Abstaining: the vote task sends the abstention, with its reason, on chain.
    assert [(v.status, v.fraud, v.evidence_hash) for v in db.rows(ids)] == [(ABSTAINING, None, None)] * 2


def test_a_stored_record_that_does_not_hash_to_the_disputed_digest_is_not_judged(
    db: Db, records: list[Record]
) -> None:
    (vid,) = db.add(records[:1])
    with transaction(db.sessions) as s:
        record_id = s.get(Validation, vid).record_id  # type: ignore[union-attr]
        row = s.get(RecordRow, record_id)
        assert row is not None
        body = json.loads(row.canonical)
        body["output_tokens"][0] = (body["output_tokens"][0] + 1) % 1024
        s.execute(
            update(RecordRow).where(RecordRow.id == record_id).values(canonical=json.dumps(body).encode())
        )
    (outcome,) = db.pipeline().run(vid, "task-1")
    assert outcome.status == ABSTAINING
    assert outcome.reason is not None and outcome.reason.startswith(
        "recordDigest mismatch: the stored record hashes to 0x"
    )
    assert db.rows([vid])[0].fraud is None


def test_a_record_without_a_verifiable_proof_is_refused_or_fraud(db: Db, records: list[Record]) -> None:
    """A coefficient outside GF(65497): the recorder refuses a version 2 record that has one; a version 1
    record (whose rule never checked coefficients) still parses once logged, and is judged fraud."""
    bad_proof = records[1].proofs[1][:2] + b"\xff\xff" + records[1].proofs[1][4:]  # coefficient >= 65497
    broken = replace(
        records[1], proofs=(records[1].proofs[0], bad_proof, *records[1].proofs[2:]), request_id="v-bad"
    )
    with pytest.raises(InputError) as refused:
        db.add([broken])
    assert str(refused.value) == "record.proofs[1]: coefficient 0 is 65535, want 0 <= c < 65497"

    def v1(record: Record) -> Record:
        return replace(record, version=1, decode=None, stop_reason=None, sampling=Sampling(max_new_tokens=20))

    # A recorder that accepts version 1 refuses it too (its parser alone is lenient, for logged records).
    with pytest.raises(InputError) as refused:
        Submission.from_json(_entry(v1(broken)), DOMAIN, "", RecordPolicy(min_version=1))
    assert str(refused.value) == "record.proofs[1]: coefficient 0 is 65535, want 0 <= c < 65497"
    ids = db.add([v1(records[0]), v1(broken)], unchecked=True)  # logged before the check existed
    db.pipeline().run(ids[0], "task-1")
    good, bad = db.rows(ids)
    assert (good.status, good.fraud) == (VALIDATED, False)  # the rest of the batch is still judged
    assert (bad.status, bad.fraud) == (VALIDATED, True)
    report = json.loads(bad.report)  # type: ignore[arg-type]
    assert report["status"] == "malformed" and report["chunks"] == []
    assert report["reasons"] == ["malformed: record.proofs[1]: coefficient 0 is 65535, want 0 <= c < 65497"]


def test_disputes_gone_or_resolved_end_their_validations(db: Db, records: list[Record]) -> None:
    ids = db.add(records[:2])
    with transaction(db.sessions) as s:
        first, second = (s.get(Validation, i) for i in ids)
        assert first is not None and second is not None
        s.execute(update(Dispute).where(Dispute.dispute_id == second.dispute_id).values(outcome=2))
        d = s.scalars(select(Dispute).where(Dispute.dispute_id == first.dispute_id)).one()
        s.delete(d)
    outcomes = {o.validation_id: o for o in db.pipeline(batch=1).run(ids[0], "t1")}
    assert outcomes[ids[0]].status == CANCELLED
    (resolved,) = db.pipeline(batch=1).run(ids[1], "t2")
    assert resolved.status == ABSTAINED and "resolved before validation" in (resolved.reason or "")


def test_a_record_that_could_not_be_checked_is_retried_alone(
    db: Db, records: list[Record], tiny: Any
) -> None:
    """One record of a batch crashes the validator's own computation (a forward pre-hook on the real
    model raises, as an out-of-memory would): its batch-mate is stored and votes now; the retry (same
    task id) takes back only the unchecked one, and when retries run out it abstains, never fraud."""
    crashing = make_record(tiny, "v-crash", [1023, 70, 700, 17], 20, 8)
    ids = db.add([records[0], crashing])
    folder = db.store.find(tiny.fingerprint)
    assert folder is not None
    validator = db.store.load(folder, db.store.dtype_for(folder, "bfloat16"))

    def hook(_module: Any, args: tuple[Any, ...]) -> None:
        if bool((args[0] == 1023).any()):
            raise RuntimeError("CPU out of memory (injected for this test)")

    handle = validator.model.get_input_embeddings().register_forward_pre_hook(hook)
    try:
        with pytest.raises(PartlyChecked, match="1 of 2 records could not be checked") as info:
            db.pipeline().run(ids[0], "task-1")
        assert [(o.validation_id, o.status, o.fraud) for o in info.value.outcomes] == [
            (ids[0], VALIDATED, False)
        ]
        assert [(v.status, v.claimed_by) for v in db.rows(ids)] == [(VALIDATED, None), (CLAIMED, "task-1")]
        with pytest.raises(PartlyChecked):  # the retry: its own validation is done, the other is retaken
            db.pipeline().run(ids[0], "task-1")
        assert db.rows(ids)[1].attempts == 2
    finally:
        handle.remove()
    abstain_claimed(db.sessions, "task-1", "could not check after 1 retries")
    assert [(v.status, v.fraud) for v in db.rows(ids)] == [(VALIDATED, False), (ABSTAINING, None)]
