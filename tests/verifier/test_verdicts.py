"""Commit-reveal votes are sent exactly once, on a real Anvil: a repeated task sends nothing, a commit
signed before a crash is broadcast as the same bytes, a nonce taken by another transaction gets a fresh
signature, the reveal follows once every member committed, a vote too late becomes an abstention, and a
validator that could not check abstains on chain with its reason published. Also the report's
canonical bytes and evidence hash."""

from __future__ import annotations

import hashlib
import json
import math
from types import SimpleNamespace

import pytest
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from sqlalchemy import select

from anchor.chain.client import Ballot, vote_commitment
from anchor.chain.transactions import SignedTx, sign_transaction
from anchor.db import transaction
from anchor.evidence import find_report
from gpu_core.runner.verdict import RecordVerdict
from tests.verifier.chain_env import EVIDENCE, Chain
from tests.verifier.stack import PARAMETERS, VALIDATORS
from verifier.models import ABSTAINED, ABSTAINING, COMMITTED, COMMITTING, VALIDATED, VOTED, Validation
from verifier.verdicts import WrongValidator, evidence_hash, report_bytes, report_json, send_vote, vote_salt

pytestmark = pytest.mark.slow


def test_report_bytes_are_canonical_and_the_evidence_is_their_hash() -> None:
    result = SimpleNamespace(exp_mismatches=3, mant_err_mean=math.inf, mant_err_median=2.0)
    chunk = SimpleNamespace(index=0, begin=0, end=4, result=result, failures=(), expected=None)
    verdict = RecordVerdict(
        accepted=True,
        reasons=(),
        failed_chunks=(),
        pooled_mant_err_mean=1.5,
        expected_mant_err_mean=None,
        ratio=None,
    )
    report = report_json(
        7,
        VALIDATORS[0].address,
        b"\x11" * 32,
        "ab" * 32,
        SimpleNamespace(version=2, dtype="bfloat16"),
        SimpleNamespace(chunks=[chunk], verdict=verdict, tokens=None, mode="reference", status="checked"),
    )
    body = report_bytes(report)
    assert body.startswith(
        b'{"chunks":[{"begin":0,"end":4,"expMismatches":3,"failures":[],"index":0,"mantErrMean":null'
    )
    assert b" " not in body  # RFC 8785: no whitespace, keys sorted
    assert evidence_hash(body) == hashlib.sha256(body).digest()
    assert report_bytes(dict(reversed(list(report.items())))) == body  # key order does not matter


def _validated(chain: Chain, dispute_id: int) -> dict[str, int]:
    """Our validations of `dispute_id` (made by a watcher pass), marked validated honest."""
    chain.watch()
    with transaction(chain.recorder.sessions) as s:
        rows = s.scalars(select(Validation).where(Validation.dispute_id == dispute_id)).all()
        for v in rows:
            v.status, v.fraud, v.evidence_hash = VALIDATED, False, EVIDENCE
        return {v.validator: v.id for v in rows}


def _row(chain: Chain, validation_id: int) -> Validation:
    with chain.recorder.sessions() as s:
        v = s.get(Validation, validation_id)
        assert v is not None
        return v


def _signed_commit(chain: Chain, validator: LocalAccount, dispute_id: int) -> SignedTx:
    """The commit the vote task would send for an honest vote with EVIDENCE, signed, not sent."""
    client = chain.client(validator)
    commitment = vote_commitment(
        dispute_id, validator.address, False, EVIDENCE, vote_salt(validator, dispute_id)
    )
    data = client.contract.encode_abi("commitVote", args=[dispute_id, commitment])
    return sign_transaction(
        client.w3, validator, {"to": client.address, "data": data, "value": 0}, client.decoder
    )


def _store_commit(chain: Chain, validation_id: int, signed: SignedTx) -> None:
    with transaction(chain.recorder.sessions) as s:
        row = s.get(Validation, validation_id)
        assert row is not None
        row.status, row.commit_raw_tx, row.commit_tx_hash, row.commit_nonce = (
            COMMITTING,
            signed.raw,
            signed.tx_hash,
            signed.nonce,
        )


def test_a_vote_is_sent_once_whatever_happens_between_the_steps(sqlite_chain: Chain) -> None:
    chain = sqlite_chain
    dispute_id, committee = chain.dispute(chain.log_and_anchor("vote-1"))
    ids = _validated(chain, dispute_id)
    sessions, w3 = chain.recorder.sessions, chain.node.web3()
    v0, v1, v2 = VALIDATORS
    client = chain.client()

    # A commit, then the same task again: the chain has the commitment and the reveal must wait for
    # the others (or the commit deadline): nothing is sent.
    assert send_vote(sessions, chain.client(v0), ids[v0.address]) == COMMITTED
    nonce = w3.eth.get_transaction_count(v0.address)
    assert send_vote(sessions, chain.client(v0), ids[v0.address]) == COMMITTED
    assert w3.eth.get_transaction_count(v0.address) == nonce
    assert client.ballot_of(dispute_id, v0.address).state == Ballot.COMMITTED

    with pytest.raises(WrongValidator, match=f"is {v1.address}'s; this worker votes as {v0.address}"):
        send_vote(sessions, chain.client(v0), ids[v1.address])  # misrouted: refused, nothing sent

    # Crashed after storing the signed commit, before broadcasting it: the same bytes are sent.
    signed = _signed_commit(chain, v1, dispute_id)
    _store_commit(chain, ids[v1.address], signed)
    assert send_vote(sessions, chain.client(v1), ids[v1.address]) == COMMITTED
    assert w3.eth.get_transaction_receipt(HexBytes(signed.tx_hash))["status"] == 1

    # Signed, then the key's nonce was used by another transaction: signed anew, committed once; the
    # last commit opens the reveal phase, so the same task reveals.
    stale = _signed_commit(chain, v2, dispute_id)
    _store_commit(chain, ids[v2.address], stale)
    transfer = v2.sign_transaction(
        {
            "to": v0.address,
            "value": 1,
            "gas": 21_000,
            "gasPrice": w3.eth.gas_price * 2,
            "nonce": stale.nonce,
            "chainId": w3.eth.chain_id,
        }
    )
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(transfer.raw_transaction))
    assert send_vote(sessions, chain.client(v2), ids[v2.address]) == VOTED
    assert _row(chain, ids[v2.address]).commit_tx_hash != stale.tx_hash
    for v in (v0, v1):
        assert send_vote(sessions, chain.client(v), ids[v.address]) == VOTED
        assert send_vote(sessions, chain.client(v), ids[v.address]) == VOTED  # again: nothing sent

    assert [client.ballot_of(dispute_id, m).state for m in committee] == [Ballot.HONEST] * 3
    r = client.current_round(dispute_id)
    assert (r.commits, r.reveals, r.honest_votes, r.fraud_votes) == (3, 3, 3, 0)


def test_a_vote_too_late_is_an_abstention(sqlite_chain: Chain) -> None:
    chain = sqlite_chain
    dispute_id, _ = chain.dispute(chain.log_and_anchor("late-1"))
    ids = _validated(chain, dispute_id)
    chain.node.increase_time(PARAMETERS.commitPeriod + 1)
    validator = VALIDATORS[0]
    assert send_vote(chain.recorder.sessions, chain.client(validator), ids[validator.address]) == ABSTAINED
    row = _row(chain, ids[validator.address])
    assert row.reason == "the commit phase closed before this validator acted" and row.commit_tx_hash is None
    assert chain.client().ballot_of(dispute_id, validator.address).state == Ballot.PENDING


def test_could_not_check_abstains_on_chain_with_its_reason_published(sqlite_chain: Chain) -> None:
    chain = sqlite_chain
    dispute_id, _ = chain.dispute(chain.log_and_anchor("abstain-1"))
    ids = _validated(chain, dispute_id)
    validator = VALIDATORS[0]
    with transaction(chain.recorder.sessions) as s:
        row = s.get(Validation, ids[validator.address])
        assert row is not None
        row.status, row.fraud, row.evidence_hash, row.reason = ABSTAINING, None, None, "model not held"
    assert send_vote(chain.recorder.sessions, chain.client(validator), ids[validator.address]) == ABSTAINED
    assert chain.client().ballot_of(dispute_id, validator.address).state == Ballot.ABSTAINED
    row = _row(chain, ids[validator.address])
    assert row.evidence_hash is not None and row.report is not None
    assert hashlib.sha256(row.report).digest() == row.evidence_hash
    assert json.loads(row.report)["abstained"] == "model not held"
    with chain.recorder.sessions() as s:
        assert find_report(s, row.evidence_hash) == row.report  # what GET /v1/evidence/{hash} serves
    logs = chain.client().contract.events.VoteAbstained().get_logs(from_block=0)
    assert [bytes(log["args"]["reasonHash"]) for log in logs] == [row.evidence_hash]
