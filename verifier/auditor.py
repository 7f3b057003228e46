"""The auditor: checks a random share of anchored entries with local models and disputes those that fail.

Which entries: entry i of a checkpoint is checked when keccak256(seed || i) < rate * 2^256, where the
seed is the hash of the block `delay` blocks after the one that anchored the checkpoint. The provider
signed its records before they were anchored and the operator cannot know that later block's hash when
it anchors, so neither knows which records will be checked; a block proposer can withhold a block to
re-roll the seed once per block it gives up (docs/validators.md, Auditing).

Why it deters: a provider that cheats on a fraction f of its records saves, per record, the cost c of
honest inference; each cheat is checked with probability `rate` and then costs the slash S (and the
challenger earns part of it). Cheating pays only when c < rate * S, so rate >= c / S makes every cheat
a loss on average while the auditor re-runs only `rate` of the traffic.

`audit_checkpoint` is one pass over one checkpoint; the command (`toploc-audit audit`) keeps a cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from eth_utils import keccak
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from anchor.chain.client import ToplocAuditClient
from anchor.chain.errors import ChainError
from anchor.db.models import Anchor, Checkpoint
from anchor.db.models import Record as RecordRow
from anchor.errors import InputError
from anchor.records import Record
from verifier.disputes import file_dispute, plan_dispute
from verifier.model_store import ModelStore
from verifier.validation import CouldNotCheck, Job, validate_jobs

log = logging.getLogger(__name__)


def selected(seed: bytes, leaf_index: int, rate: float) -> bool:
    """Whether entry `leaf_index` is checked under `seed` at `rate` (0..1): a pure function anyone can
    recompute from the chain."""
    draw = int.from_bytes(keccak(seed + leaf_index.to_bytes(8, "big")), "big")
    return draw < int(rate * 2**256)


@dataclass(frozen=True)
class AuditedEntry:
    leaf_index: int
    fraud: bool | None
    """None: could not be checked (model not held, record unreadable)."""
    reason: str
    dispute_id: int | None = None


@dataclass(frozen=True)
class AuditedCheckpoint:
    checkpoint_id: int
    first: int
    size: int
    seed_block: int
    entries: tuple[AuditedEntry, ...]


def _dispute(
    sessions: sessionmaker[Session],
    client: ToplocAuditClient,
    leaf_index: int,
    reason: str,
    may_dispute: Callable[[], bool],
) -> AuditedEntry:
    """A failed entry, disputed if the bond policy allows and the contract takes it. A refusal (already
    disputed, window closed, too few validators) is reported, never fatal: the audit goes on."""
    if not may_dispute():
        return AuditedEntry(leaf_index, True, f"not disputed (bond budget): {reason}")
    try:
        with sessions() as s:
            plan = plan_dispute(s, client, str(leaf_index))
        dispute_id = file_dispute(client, plan).dispute_id
    except (InputError, ChainError) as exc:
        return AuditedEntry(leaf_index, True, f"not disputed ({exc}): {reason}")
    log.info("entry %d failed (%s): dispute %d filed", leaf_index, reason, dispute_id)
    return AuditedEntry(leaf_index, True, f"dispute {dispute_id} filed: {reason}", dispute_id)


def seed_of(client: ToplocAuditClient, anchored_block: int, delay: int) -> tuple[int, bytes] | None:
    """(block, hash) of the block `delay` after `anchored_block`, None while it is not mined."""
    number = anchored_block + delay
    if number > int(client.w3.eth.block_number):
        return None
    return number, bytes(client.w3.eth.get_block(number)["hash"])


def audit_checkpoint(
    sessions: sessionmaker[Session],
    client: ToplocAuditClient,
    store: ModelStore,
    checkpoint: Checkpoint,
    previous_size: int,
    rate: float,
    delay: int,
    may_dispute: Callable[[], bool],
) -> AuditedCheckpoint | None:
    """Check the selected entries of `checkpoint` ([previous_size, size)); dispute each fraud while
    `may_dispute()` allows (the bond policy). None while its seed block is not mined yet."""
    with sessions() as s:
        anchored = s.scalars(
            select(Anchor.block_number).where(
                Anchor.checkpoint_id == checkpoint.id, Anchor.status == "confirmed"
            )
        ).first()
    if anchored is None:
        return None
    seed = seed_of(client, int(anchored), delay)
    if seed is None:
        return None
    seed_block, seed_hash = seed
    chosen = [i for i in range(previous_size, checkpoint.size) if selected(seed_hash, i, rate)]
    with sessions() as s:
        rows = {
            r.log_index: (bytes(r.canonical), bytes(r.record_digest))
            for r in s.scalars(select(RecordRow).where(RecordRow.log_index.in_(chosen)))
        }
    entries: list[AuditedEntry] = []
    by_model: dict[str, list[Job]] = {}
    for index in chosen:
        if index not in rows:
            entries.append(AuditedEntry(index, None, "the log has no such entry"))
            continue
        canonical, digest = rows[index]
        try:
            record = Record.from_canonical(canonical)
        except (InputError, ValueError) as exc:
            entries.append(AuditedEntry(index, None, f"the stored record does not parse: {exc}"))
            continue
        by_model.setdefault(record.model.fingerprint, []).append(Job(index, 0, "auditor", record, digest))
    for fingerprint, jobs in by_model.items():
        try:
            reports, errors = validate_jobs(store, fingerprint, jobs)
        except CouldNotCheck as exc:
            entries.extend(AuditedEntry(j.validation_id, None, str(exc)) for j in jobs)
            continue
        for job in jobs:
            if job.validation_id in errors:
                entries.append(AuditedEntry(job.validation_id, None, errors[job.validation_id]))
                continue
            report = reports[job.validation_id]
            reason = "; ".join(report["reasons"]) or "accepted"
            if not report["fraud"]:
                entries.append(AuditedEntry(job.validation_id, False, reason))
                continue
            entries.append(_dispute(sessions, client, job.validation_id, reason, may_dispute))
    entries.sort(key=lambda e: e.leaf_index)
    return AuditedCheckpoint(
        int(checkpoint.chain_checkpoint_id or 0), previous_size, checkpoint.size, seed_block, tuple(entries)
    )
