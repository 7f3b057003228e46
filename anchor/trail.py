"""Audit trail queries: one record with everything known about it, and filtered, paginated lists.

Read-only; used by `GET /v1/records...`, `toploc-audit trail` and `toploc-audit receipt`. The inclusion
proof is against the latest anchored checkpoint (the one a reader can check on chain today).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from anchor.db.models import Anchor, Checkpoint, Dispute, Model, Payout, Provider, Vote
from anchor.db.models import Record as RecordRow
from anchor.errors import InputError
from anchor.leaf import leaf_hash
from anchor.log import checkpoints
from anchor.log.store import LogStore
from anchor.receipts import AnchorTx, Inclusion, ReceiptFile
from anchor.records.eip712 import Domain
from anchor.records.ingest import receipt_of
from anchor.records.record import Record
from anchor.transparency.checkpoint import Checkpoint as NoteCheckpoint
from anchor.transparency.note import NoteSigner

STATUSES = ("pending", "anchored", "disputed", "fraud", "honest")
OUTCOMES = {0: "open", 1: "fraud", 2: "honest", 3: "no quorum"}
MAX_PAGE = 1000
_DIGEST = re.compile(r"0x[0-9a-fA-F]{64}")


class NotFoundError(InputError):
    """No such record (HTTP 404)."""


def find(session: Session, ref: str) -> RecordRow:
    """A record by log index (decimal) or recordDigest (0x + 64 hex)."""
    if ref.isascii() and ref.isdigit():  # "²" is a digit to str.isdigit, not to int
        if len(ref) > 19 or int(ref) >= 2**63:  # (len first: no int() of thousands of digits)
            raise NotFoundError("record", f"no record {ref[:40]} in this log (log indexes are below 2^63)")
        stmt = select(RecordRow).where(RecordRow.log_index == int(ref))
    elif _DIGEST.fullmatch(ref):
        stmt = select(RecordRow).where(RecordRow.record_digest == bytes.fromhex(ref[2:]))
    else:
        raise InputError("record", f"{ref!r} is neither a log index nor a 0x-prefixed 32-byte recordDigest")
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFoundError("record", f"no record {ref} in this log")
    return row


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


def status_of(row: RecordRow, disputes: list[Dispute]) -> str:
    outcomes = {d.outcome for d in disputes}
    if 1 in outcomes:
        return "fraud"
    if 2 in outcomes:
        return "honest"
    if disputes:
        return "disputed"
    return "anchored" if row.checkpoint_id is not None else "pending"


def summary(row: RecordRow) -> dict[str, Any]:
    return {
        "logIndex": row.log_index,
        "recordDigest": _hex(row.record_digest),
        "provider": row.provider.address,
        "model": {"name": row.model.name, "fingerprint": row.model.fingerprint},
        "requestId": row.request_id,
        "dtype": row.dtype,
        "time": row.record_time,
        "loggedAt": row.logged_at,
        "anchored": row.checkpoint_id is not None,
    }


def _confirmed_anchor(session: Session, cp: Checkpoint) -> Anchor | None:
    return session.scalars(
        select(Anchor).where(Anchor.checkpoint_id == cp.id, Anchor.status == "confirmed").limit(1)
    ).first()


def anchor_of(session: Session, cp: Checkpoint) -> dict[str, Any]:
    """Where a checkpoint landed: chain, contract, transaction, block."""
    a = _confirmed_anchor(session, cp)
    return {
        "checkpointId": cp.chain_checkpoint_id,
        "treeSize": cp.size,
        "root": _hex(cp.root),
        "anchoredAt": cp.anchored_at,
        "chainId": None if a is None else a.chain_id,
        "contract": None if a is None else a.contract,
        "txHash": None if a is None else _hex(a.tx_hash),
        "blockNumber": None if a is None else a.block_number,
        "blockHash": None if a is None else _hex(a.block_hash),
    }


def inclusion(session: Session, row: RecordRow) -> tuple[Inclusion, Checkpoint] | None:
    """An inclusion proof of the record against the latest anchored checkpoint, if one covers it."""
    cp = checkpoints.latest_anchored(session)
    if cp is None or cp.size <= row.log_index or cp.chain_checkpoint_id is None:
        return None
    proof = LogStore(session).inclusion_proof(row.log_index, cp.size)
    return Inclusion(cp.chain_checkpoint_id, cp.size, cp.root, tuple(proof)), cp


def disputes_of(session: Session, row: RecordRow) -> list[Dispute]:
    return list(
        session.scalars(select(Dispute).where(Dispute.leaf_index == row.log_index).order_by(Dispute.id))
    )


def detail(session: Session, row: RecordRow) -> dict[str, Any]:
    """Everything about one record: the record, receipt, inclusion proof, anchor, disputes, votes, outcome."""
    disputes = disputes_of(session, row)
    inc = inclusion(session, row)
    first = None if row.checkpoint_id is None else session.get(Checkpoint, row.checkpoint_id)
    out = summary(row)
    out.update(
        {
            "status": status_of(row, disputes),
            "leafHash": _hex(leaf_hash(row.provider.address, row.record_digest)),
            "record": Record.from_canonical(row.canonical).to_json(),
            "signature": _hex(row.signature),
            "receipt": receipt_of(row).to_json(),
            "receiptSignature": _hex(row.receipt_signature),
            "firstCheckpoint": None if first is None else anchor_of(session, first),
            "inclusion": None if inc is None else inc[0].to_json(),
            "anchor": None if inc is None else anchor_of(session, inc[1]),
            "disputes": [_dispute(session, d) for d in disputes],
            "outcome": None
            if not disputes
            else OUTCOMES.get(disputes[-1].outcome, str(disputes[-1].outcome)),
        }
    )
    return out


def _dispute(session: Session, d: Dispute) -> dict[str, Any]:
    votes = session.scalars(select(Vote).where(Vote.dispute_id == d.id).order_by(Vote.block_number, Vote.id))
    payouts = session.scalars(select(Payout).where(Payout.dispute_id == d.dispute_id).order_by(Payout.id))
    return {
        "disputeId": d.dispute_id,
        "challenger": d.challenger,
        "bond": str(d.bond),
        "committee": d.committee,
        "deadline": d.deadline,
        "outcome": OUTCOMES.get(d.outcome, str(d.outcome)),
        "openedTx": _hex(d.opened_tx),
        "openedBlock": d.opened_block,
        "resolvedTx": _hex(d.resolved_tx),
        "resolvedBlock": d.resolved_block,
        "votes": [
            {
                "validator": v.validator,
                "fraud": v.fraud,
                "evidenceHash": _hex(v.evidence_hash),
                "txHash": _hex(v.tx_hash),
                "blockNumber": v.block_number,
            }
            for v in votes
        ],
        "payouts": [
            {
                "account": p.account,
                "amount": str(p.amount),
                "txHash": _hex(p.tx_hash),
                "blockNumber": p.block_number,
            }
            for p in payouts
        ],
    }


def receipt_file(session: Session, row: RecordRow, domain: Domain, note_signer: NoteSigner) -> ReceiptFile:
    """The proof bundle `verify-receipt` checks: the receipt and the entry, and once a checkpoint covering
    it is anchored, the inclusion proof, that checkpoint as the log's signed note and its anchor
    transaction (checkable with no service at all; the chain confirms the rest)."""
    inc = inclusion(session, row)
    note = tx = None
    if inc is not None:
        cp = inc[1]
        note = NoteCheckpoint(note_signer.name, cp.size, cp.root).sign(note_signer)
        a = _confirmed_anchor(session, cp)
        if a is not None and a.block_number is not None and a.block_hash is not None:
            tx = AnchorTx(bytes(a.tx_hash), a.block_number, bytes(a.block_hash), bytes(a.raw_tx))
    return ReceiptFile(
        chain_id=domain.chain_id,
        contract=domain.contract,
        provider=row.provider.address,
        receipt=receipt_of(row),
        receipt_signature=row.receipt_signature,
        provider_signature=row.signature,
        inclusion=None if inc is None else inc[0],
        record=Record.from_canonical(row.canonical).to_json(),
        checkpoint_note=note,
        checkpoint_key=note_signer.verifier.encode(),
        anchor=tx,
    )


def list_records(
    session: Session,
    provider: str | None = None,
    model: str | None = None,
    since: int | None = None,
    until: int | None = None,
    status: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Records in log order, filtered; `after` is the last log index of the previous page."""
    if not 0 < limit <= MAX_PAGE:
        raise InputError("limit", f"{limit} is outside [1, {MAX_PAGE}]")
    stmt: Select[tuple[RecordRow]] = select(RecordRow)
    if provider is not None:
        stmt = stmt.join(Provider, Provider.id == RecordRow.provider_id).where(
            Provider.address.ilike(provider)
        )
    if model is not None:
        stmt = stmt.join(Model, Model.id == RecordRow.model_id).where(
            (Model.name == model) | (Model.fingerprint == model.lower())
        )
    if since is not None:
        stmt = stmt.where(RecordRow.logged_at >= since)
    if until is not None:
        stmt = stmt.where(RecordRow.logged_at < until)
    if status is not None:
        stmt = stmt.where(_status_clause(status))
    if after is not None:
        stmt = stmt.where(RecordRow.log_index > after)
    rows = session.scalars(stmt.order_by(RecordRow.log_index).limit(limit + 1)).all()
    items = [summary(r) for r in rows[:limit]]
    return {"items": items, "next": items[-1]["logIndex"] if len(rows) > limit else None}


def _status_clause(status: str) -> Any:
    disputed = select(Dispute.id).where(Dispute.leaf_index == RecordRow.log_index)
    match status:
        case "pending":
            return RecordRow.checkpoint_id.is_(None)
        case "anchored":
            return RecordRow.checkpoint_id.is_not(None)
        case "disputed":
            return exists(disputed)
        case "fraud":
            return exists(disputed.where(Dispute.outcome == 1))
        case "honest":
            return exists(disputed.where(Dispute.outcome == 2))
    raise InputError("status", f"{status!r} is not one of {', '.join(STATUSES)}")
