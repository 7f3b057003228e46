"""A validator's verdict: the report it commits to (evidenceHash = SHA-256 of the report's canonical JSON),
then the commit-reveal transactions, each sent exactly once.

The vote task (`send_vote`) does whatever the chain allows next, asking the chain first every time:
- a member with nothing sent, in the commit phase: commitVote(keccak256(disputeId, voter, fraud,
  evidenceHash, salt)), or abstain(reasonHash) when it could not check the record (a reason costs less
  than silence); too late for either, the row ends abstained (the chain counts it absent);
- a member that committed: waits for the reveal phase, then revealVote(fraud, evidenceHash, salt);
- a ballot the chain already shows (revealed, abstained) ends the row.
The salt is keccak256 of the validator's key, a label and the dispute id: secret, and the same after a
restart, so nothing secret is stored. Each transaction is signed (after simulating it: a revert raises
the contract's error, nothing sent) and stored with its nonce before it is broadcast; the stored bytes
are broadcast again after a restart (one nonce: at most one can be mined); if another transaction took
the nonce and the chain still shows no effect, it is signed anew.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from sqlalchemy.orm import Session, sessionmaker

from anchor.chain.client import Ballot, Outcome, Phase, ToplocAuditClient, vote_commitment
from anchor.chain.errors import ChainError
from anchor.chain.transactions import broadcast, receipt_of, sign_transaction, wait_for_receipt
from anchor.db.engine import transaction
from anchor.errors import Error
from anchor.evidence import publish
from anchor.records.canonical import canonical_json
from verifier.models import (
    ABSTAINED,
    ABSTAINING,
    CANCELLED,
    COMMITTED,
    COMMITTING,
    REVEALING,
    SENDING,
    VOTED,
    Validation,
)

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


def vote_salt(account: LocalAccount, dispute_id: int) -> bytes:
    """The commitment's salt: only the validator can compute it, and it computes it again after a crash."""
    return bytes(keccak(bytes(account.key) + b"toploc-audit vote salt" + dispute_id.to_bytes(32, "big")))


def abstention_report(dispute_id: int, validator: str, record_digest: bytes | None, reason: str) -> bytes:
    """The canonical report an abstention binds (its SHA-256 is the reasonHash)."""
    return report_bytes(
        {
            "format": REPORT_FORMAT,
            "disputeId": dispute_id,
            "validator": validator,
            "recordDigest": None if record_digest is None else "0x" + record_digest.hex(),
            "abstained": reason,
        }
    )


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


@dataclass(frozen=True)
class _Step:
    """One transaction of a vote: which stored columns hold it and the status while it is pending."""

    slot: str  # "commit" or "vote"
    sending: str
    function: str
    args: tuple[Any, ...]


def _send_once(
    sessions: sessionmaker[Session],
    client: ToplocAuditClient,
    v: Validation,
    step: _Step,
) -> int:
    """Broadcasts the stored transaction of `step` (signing and storing it first if there is none, or
    if its nonce went to another transaction) and waits for its receipt; returns its block. Raises
    VoteNotMined to be retried."""
    raw: bytes | None = getattr(v, f"{step.slot}_raw_tx")
    tx_hash: bytes | None = getattr(v, f"{step.slot}_tx_hash")
    if (
        raw is not None
        and tx_hash is not None
        and broadcast(client.w3, raw) == "nonce-used"
        and receipt_of(client.w3, tx_hash) is None
    ):
        raw = None  # another transaction of this key took the nonce: this one was never mined
    if raw is None or tx_hash is None:
        data = client.contract.encode_abi(step.function, args=list(step.args))
        tx = {"to": client.address, "data": data, "value": 0}
        signed = sign_transaction(client.w3, _account(client), tx, client.decoder)
        _update(
            sessions,
            v.id,
            status=step.sending,
            **{f"{step.slot}_raw_tx": signed.raw, f"{step.slot}_tx_hash": signed.tx_hash},
            **{f"{step.slot}_nonce": signed.nonce},
        )
        raw, tx_hash = signed.raw, signed.tx_hash
        broadcast(client.w3, raw)
    try:
        receipt = wait_for_receipt(client.w3, tx_hash, VOTE_RECEIPT_TIMEOUT_S)
    except ChainError as exc:
        raise VoteNotMined(f"{step.function} tx 0x{tx_hash.hex()} has no receipt yet: {exc}") from exc
    if receipt["status"] != 1:
        # Reverted on chain (a phase ended between simulation and mining): ask the chain again.
        _update(sessions, v.id, **{f"{step.slot}_raw_tx": None, f"{step.slot}_tx_hash": None})
        raise VoteNotMined(f"{step.function} tx 0x{tx_hash.hex()} reverted in block {receipt['blockNumber']}")
    return int(receipt["blockNumber"])


def _mined_block(client: ToplocAuditClient, tx_hash: bytes | None) -> int | None:
    receipt = None if tx_hash is None else receipt_of(client.w3, tx_hash)
    return None if receipt is None else int(receipt["blockNumber"])


def send_vote(sessions: sessionmaker[Session], client: ToplocAuditClient, validation_id: int) -> str:
    """Move validation `validation_id`'s vote one step on (see the module docstring); returns its status
    afterwards. Raises VoteNotMined to be retried."""
    with sessions() as s:
        v = s.get(Validation, validation_id)
        if v is None:
            raise ChainError(f"validation {validation_id} does not exist")
        s.expunge(v)
    if v.status not in SENDING:
        return v.status
    account = _account(client)
    if account.address.lower() != v.validator.lower():
        raise WrongValidator(
            f"validation {validation_id} is {v.validator}'s; this worker votes as {account.address}"
        )
    dispute_id = v.dispute_id

    ballot = client.ballot_of(dispute_id, account.address)
    if ballot.state == Ballot.NOT_MEMBER:
        _update(sessions, validation_id, status=CANCELLED, reason="not on the dispute's committee on chain")
        return CANCELLED
    if ballot.state in (Ballot.FRAUD, Ballot.HONEST):
        _update(
            sessions,
            validation_id,
            status=VOTED,
            vote_block=_mined_block(client, v.vote_tx_hash),
            reason=None,
        )
        return VOTED
    if ballot.state == Ballot.ABSTAINED:
        _update(
            sessions, validation_id, status=ABSTAINED, commit_block=_mined_block(client, v.commit_tx_hash)
        )
        return ABSTAINED
    dispute = client.dispute(dispute_id)
    phase = client.phase(dispute_id)
    ours = ballot.round == dispute.rounds - 1 and phase in (Phase.COMMIT, Phase.REVEAL)
    if ballot.state == Ballot.PENDING:
        if not ours or phase != Phase.COMMIT:
            why = "the dispute was resolved" if dispute.outcome != Outcome.OPEN else "the commit phase closed"
            _update(sessions, validation_id, status=ABSTAINED, reason=f"{why} before this validator acted")
            return ABSTAINED
        if v.status == ABSTAINING or v.fraud is None or v.evidence_hash is None:
            reason = v.reason or "could not check"
            body = abstention_report(dispute_id, account.address, dispute.record_digest, reason)
            with transaction(sessions) as s:
                v.evidence_hash = publish(s, body)  # the reason, served by the recorder's API
            _update(sessions, validation_id, status=ABSTAINING, report=body, evidence_hash=v.evidence_hash)
            block = _send_once(
                sessions, client, v, _Step("commit", ABSTAINING, "abstain", (dispute_id, v.evidence_hash))
            )
            _update(sessions, validation_id, status=ABSTAINED, commit_block=block)
            return ABSTAINED
        commitment = vote_commitment(
            dispute_id, account.address, v.fraud, v.evidence_hash, vote_salt(account, dispute_id)
        )
        block = _send_once(
            sessions, client, v, _Step("commit", COMMITTING, "commitVote", (dispute_id, commitment))
        )
        _update(sessions, validation_id, status=COMMITTED, commit_block=block)
        v.status = COMMITTED
        phase = client.phase(dispute_id)
        if phase != Phase.REVEAL:
            return COMMITTED  # the reveal waits for the others' commits or the commit deadline
    # Committed: reveal in the reveal phase.
    if phase == Phase.COMMIT:
        if v.status != COMMITTED:
            _update(
                sessions, validation_id, status=COMMITTED, commit_block=_mined_block(client, v.commit_tx_hash)
            )
        return COMMITTED
    if not ours or phase != Phase.REVEAL:
        _update(
            sessions,
            validation_id,
            status=ABSTAINED,
            reason="the reveal phase closed before the vote was revealed",
        )
        return ABSTAINED
    assert v.fraud is not None and v.evidence_hash is not None
    step = _Step(
        "vote",
        REVEALING,
        "revealVote",
        (dispute_id, v.fraud, v.evidence_hash, vote_salt(account, dispute_id)),
    )
    block = _send_once(sessions, client, v, step)
    _update(sessions, validation_id, status=VOTED, vote_block=block, reason=None)
    return VOTED
