"""Votes are sent exactly once, on a real Anvil: a repeated task sends nothing, a vote signed before a
crash is broadcast as the same bytes, a nonce taken by another transaction gets a fresh signature, and a
vote after the deadline becomes an abstention. Also the report's canonical bytes and evidence hash."""

from __future__ import annotations

import hashlib
import math
from types import SimpleNamespace

import pytest
from hexbytes import HexBytes
from sqlalchemy import select

from anchor.chain.client import Ballot
from anchor.db import transaction
from gpu_core.runner.verdict import RecordVerdict
from tests.verifier.chain_env import EVIDENCE, Chain
from tests.verifier.stack import PARAMETERS, VALIDATORS
from verifier.models import ABSTAINED, VALIDATED, VOTED, VOTING, Validation
from verifier.verdicts import WrongValidator, evidence_hash, report_bytes, report_json, send_vote, sign_vote

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


def test_a_vote_is_sent_once_whatever_happens_between_the_steps(sqlite_chain: Chain) -> None:
    chain = sqlite_chain
    dispute_id, committee = chain.dispute(chain.log_and_anchor("vote-1"))
    ids = _validated(chain, dispute_id)
    sessions, w3 = chain.recorder.sessions, chain.node.web3()
    v0, v1, v2 = VALIDATORS

    # A plain vote, then the same task again: the chain already has the ballot, nothing is sent.
    assert send_vote(sessions, chain.client(v0), ids[v0.address]) == VOTED
    nonce = w3.eth.get_transaction_count(v0.address)
    assert send_vote(sessions, chain.client(v0), ids[v0.address]) == VOTED
    assert w3.eth.get_transaction_count(v0.address) == nonce

    with pytest.raises(WrongValidator, match=f"is {v1.address}'s; this worker votes as {v0.address}"):
        send_vote(sessions, chain.client(v0), ids[v1.address])  # misrouted: refused, nothing sent

    # Crashed after storing the signed vote, before broadcasting it: the same bytes are sent.
    signed = sign_vote(chain.client(v1), dispute_id, False, EVIDENCE)
    with transaction(sessions) as s:
        row = s.get(Validation, ids[v1.address])
        assert row is not None
        row.status, row.vote_raw_tx, row.vote_tx_hash, row.vote_nonce = (
            VOTING,
            signed.raw,
            signed.tx_hash,
            signed.nonce,
        )
    assert send_vote(sessions, chain.client(v1), ids[v1.address]) == VOTED
    assert w3.eth.get_transaction_receipt(HexBytes(signed.tx_hash))["status"] == 1

    # Signed, then the key's nonce was used by another transaction: signed anew, voted once.
    stale = sign_vote(chain.client(v2), dispute_id, False, EVIDENCE)
    with transaction(sessions) as s:
        row = s.get(Validation, ids[v2.address])
        assert row is not None
        row.status, row.vote_raw_tx, row.vote_tx_hash, row.vote_nonce = (
            VOTING,
            stale.raw,
            stale.tx_hash,
            stale.nonce,
        )
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
    assert _row(chain, ids[v2.address]).vote_tx_hash != stale.tx_hash

    client = chain.client()
    assert [client.ballot_of(dispute_id, m) for m in committee] == [Ballot.HONEST] * 3
    d = client.dispute(dispute_id)
    assert (d.honest_votes, d.fraud_votes) == (3, 0)


def test_a_vote_too_late_is_an_abstention(sqlite_chain: Chain) -> None:
    chain = sqlite_chain
    dispute_id, _ = chain.dispute(chain.log_and_anchor("late-1"))
    ids = _validated(chain, dispute_id)
    chain.node.increase_time(PARAMETERS.votingPeriod + 1)
    validator = VALIDATORS[0]
    assert send_vote(chain.recorder.sessions, chain.client(validator), ids[validator.address]) == ABSTAINED
    row = _row(chain, ids[validator.address])
    assert row.reason == "voting closed before the vote was sent" and row.vote_tx_hash is None
    assert chain.client().ballot_of(dispute_id, validator.address) == Ballot.PENDING
