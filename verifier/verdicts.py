"""A validator's verdict: the report it commits to (evidenceHash = SHA-256 of the report's canonical JSON)
and the submitVerdict transaction, sent exactly once.

Sending, step by step (`send_vote`), each step persisted before the next depends on it:
1. the chain is asked first: a ballot already cast ends it (the row becomes voted); a dispute that is
   resolved or past its deadline ends it as an abstention (a late vote would only revert);
2. the transaction is signed (after simulating it: a revert raises the contract's error, nothing sent)
   and stored with its nonce, before it is broadcast;
3. the stored bytes are broadcast (again after a restart: the same transaction, so at most one vote can
   be mined); if another transaction took the nonce and the vote is still not cast, it is signed anew;
4. once its receipt shows success the row is voted. The contract refuses a second vote
   (DisputeGameAlreadyVoted) and the votes table is unique on (dispute, validator).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session, sessionmaker

from anchor.chain.client import Ballot, Outcome, ToplocAuditClient
from anchor.chain.errors import ChainError
from anchor.chain.transactions import SignedTx, broadcast, receipt_of, sign_transaction, wait_for_receipt
from anchor.db.engine import transaction
from anchor.errors import Error
from anchor.records.canonical import canonical_json
from verifier.models import ABSTAINED, CANCELLED, FINAL, VALIDATED, VOTED, VOTING, Validation

REPORT_FORMAT = "toploc-audit-validation/2"
VOTE_RECEIPT_TIMEOUT_S = 60.0
"""Shorter than a chain call's: a vote task that waits no longer is retried, and broadcasts again."""


class VoteNotMined(Error):
    """The vote was broadcast but no receipt came in time: the task retries (and broadcasts again)."""


class WrongValidator(Error):
    """A task reached the worker of another validator (a routing or configuration error)."""


def _finite(value: float) -> float | None:
    """JSON has no inf or NaN: a statistic with no defined value is stored as null."""
    return float(value) if math.isfinite(value) else None


def report_json(
    dispute_id: int,
    validator: str,
    record_digest: bytes,
    fingerprint: str,
    record: Any,
    report: Any,
) -> dict[str, Any]:
    """The evidence for one vote: `evidence_json` of the record, bound to the dispute, the validator and
    the exact record, so it cannot be replayed for another vote."""
    return {
        "format": REPORT_FORMAT,
        "disputeId": dispute_id,
        "validator": validator,
        "recordDigest": "0x" + record_digest.hex(),
        **evidence_json(fingerprint, record, report),
    }


def evidence_json(fingerprint: str, record: Any, report: Any) -> dict[str, Any]:
    """What a gpu_core RecordReport of an anchor Record says: every chunk's statistics, the token
    checks (which kind ran, each failure with its position, token, the sampler's choice and the gap)
    and the verdict (docs/validators.md). `toploc-audit validate --json` prints it too."""
    verdict = report.verdict
    chunks = []
    for chunk in report.chunks:
        entry: dict[str, Any] = {
            "index": chunk.index,
            "begin": chunk.begin,
            "end": chunk.end,
            "expMismatches": chunk.result.exp_mismatches,
            "mantErrMean": _finite(chunk.result.mant_err_mean),
            "mantErrMedian": _finite(chunk.result.mant_err_median),
            "failures": list(chunk.failures),
        }
        if chunk.expected is not None:
            entry["expected"] = {
                "expMismatches": chunk.expected.exp_mismatches,
                "mantErrMean": _finite(chunk.expected.mant_err_mean),
                "mantErrMedian": _finite(chunk.expected.mant_err_median),
            }
        chunks.append(entry)
    tokens = report.tokens
    return {
        "recordVersion": record.version,
        "model": fingerprint,
        "dtype": record.dtype,
        "mode": report.mode,
        "status": report.status,
        "fraud": bool(verdict.fraud),
        "reasons": list(verdict.reasons),
        "tokenCheck": verdict.token_check
        if record.version >= 2
        else "none: a version 1 record binds no decode spec; its tokens are checked by TOPLOC alone",
        "tokens": None
        if tokens is None
        else {
            "positions": tokens.positions,
            "maxGap": _optional(tokens.max_gap),
            "limit": _optional(tokens.limit),
            "mismatches": tokens.mismatches,
            "unconstrained": tokens.unconstrained,
            "failureCount": tokens.failure_count,
            "z": _optional(tokens.z),
            "failures": [
                {
                    "check": f.check,
                    "position": f.position,
                    "token": f.token,
                    "choice": f.choice,
                    "gap": _optional(f.gap),
                    "limit": _optional(f.limit),
                    "detail": f.detail,
                }
                for f in tokens.failures
            ],
        },
        "failedChunks": list(verdict.failed_chunks),
        "pooledMantErrMean": _finite(verdict.pooled_mant_err_mean),
        "expectedMantErrMean": _optional(verdict.expected_mant_err_mean),
        "ratio": _optional(verdict.ratio),
        "prefillRatio": _optional(verdict.prefill_ratio),
        "decodeRatio": _optional(verdict.decode_ratio),
        "prefillLimit": _optional(verdict.prefill_limit),
        "decodeLimit": _optional(verdict.decode_limit),
        "chunks": chunks,
    }


def _optional(value: float | None) -> float | None:
    return None if value is None else _finite(value)


def report_bytes(report: dict[str, Any]) -> bytes:
    """The report's canonical bytes (RFC 8785 JSON, as records use)."""
    return canonical_json(report)


def evidence_hash(report: bytes) -> bytes:
    """The evidenceHash a vote carries: SHA-256 of the report's canonical bytes."""
    return hashlib.sha256(report).digest()


def sign_vote(client: ToplocAuditClient, dispute_id: int, fraud: bool, evidence: bytes) -> SignedTx:
    """submitVerdict(disputeId, fraud, evidence) signed at the account's next nonce, not sent.

    Simulated first: a revert raises ContractRevert naming the contract's error, and nothing is signed.
    """
    data = client.contract.encode_abi("submitVerdict", args=[dispute_id, fraud, evidence])
    tx = {"to": client.address, "data": data, "value": 0}
    return sign_transaction(client.w3, _account(client), tx, client.decoder)


def _account(client: ToplocAuditClient) -> LocalAccount:
    if client.account is None:
        raise ChainError("voting needs the validator's key: this client has none")
    return client.account


def _update(sessions: sessionmaker[Session], validation_id: int, **values: Any) -> None:
    with transaction(sessions) as s:
        v = s.get(Validation, validation_id)
        assert v is not None
        for key, value in values.items():
            setattr(v, key, value)
        v.updated_at = int(time.time())


def send_vote(sessions: sessionmaker[Session], client: ToplocAuditClient, validation_id: int) -> str:
    """Cast validation `validation_id`'s vote (see the module docstring); returns its final status, or
    its current one when it is not ready (no report yet). Raises VoteNotMined to be retried."""
    with sessions() as s:
        v = s.get(Validation, validation_id)
        if v is None:
            raise ChainError(f"validation {validation_id} does not exist")
        if v.status in FINAL or v.status not in (VALIDATED, VOTING):
            return v.status
        dispute_id, validator, fraud, evidence = v.dispute_id, v.validator, v.fraud, v.evidence_hash
        raw, tx_hash = v.vote_raw_tx, v.vote_tx_hash
    me = _account(client).address
    if me.lower() != validator.lower():
        raise WrongValidator(f"validation {validation_id} is {validator}'s; this worker votes as {me}")
    assert fraud is not None and evidence is not None

    # 1. what the chain already says
    ballot = client.ballot_of(dispute_id, me)
    if ballot in (Ballot.FRAUD, Ballot.HONEST):
        receipt = None if tx_hash is None else receipt_of(client.w3, tx_hash)
        block = None if receipt is None else int(receipt["blockNumber"])
        _update(sessions, validation_id, status=VOTED, vote_block=block, reason=None)
        return VOTED
    if ballot == Ballot.NOT_MEMBER:
        _update(sessions, validation_id, status=CANCELLED, reason="not on the dispute's committee on chain")
        return CANCELLED
    dispute = client.dispute(dispute_id)
    now = client.chain_time()
    if dispute.outcome != Outcome.OPEN or now > dispute.deadline:
        why = "the dispute was resolved" if dispute.outcome != Outcome.OPEN else "voting closed"
        _update(sessions, validation_id, status=ABSTAINED, reason=f"{why} before the vote was sent")
        return ABSTAINED

    # 2. signed and stored before it is broadcast
    if raw is not None and tx_hash is not None:
        outcome = broadcast(client.w3, raw)
        if outcome == "nonce-used" and receipt_of(client.w3, tx_hash) is None:
            raw = None  # another transaction of this key took the nonce: the vote was never mined
    if raw is None or tx_hash is None:
        signed = sign_vote(client, dispute_id, fraud, evidence)
        _update(
            sessions,
            validation_id,
            status=VOTING,
            vote_raw_tx=signed.raw,
            vote_tx_hash=signed.tx_hash,
            vote_nonce=signed.nonce,
        )
        raw, tx_hash = signed.raw, signed.tx_hash
        broadcast(client.w3, raw)

    # 3. mined?
    try:
        receipt = wait_for_receipt(client.w3, tx_hash, VOTE_RECEIPT_TIMEOUT_S)
    except ChainError as exc:
        raise VoteNotMined(f"vote tx 0x{tx_hash.hex()} has no receipt yet: {exc}") from exc
    if receipt["status"] != 1:
        # Reverted on chain (e.g. the deadline passed between simulation and mining): ask the chain again.
        _update(sessions, validation_id, status=VALIDATED, vote_raw_tx=None, vote_tx_hash=None)
        raise VoteNotMined(f"vote tx 0x{tx_hash.hex()} reverted in block {receipt['blockNumber']}")
    _update(sessions, validation_id, status=VOTED, vote_block=int(receipt["blockNumber"]), reason=None)
    return VOTED
