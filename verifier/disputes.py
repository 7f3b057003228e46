"""Opening a dispute against a log entry: everything openDispute needs, built from the database and
checked before anything is sent.

`plan_dispute`, step by step (each failure is an InputError naming what is wrong; nothing is sent):
1. find the record (log index or 0x recordDigest) in the database (or, `plan_entry_dispute`, take an
   entry checked from a recorder's answer: anchor.remote_checks);
2. it must be anchored: the checkpoint that first covers it, read from its CheckpointAnchored event and
   checked against the hash the contract stores;
3. the inclusion proof from the stored log, checked here against that checkpoint's root;
4. the dispute window (the contract's disputeWindow after the checkpoint's timestamp, chain time) must
   be open, and the entry must not be under (or decided by) another dispute;
5. the bond must be exactly the contract's bond.
`file_dispute` then sends openDispute (simulated first: a revert raises the contract's error by name).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from anchor.chain.client import Checkpoint, Outcome, ToplocAuditClient
from anchor.db.models import Checkpoint as CheckpointRow
from anchor.errors import InputError
from anchor.leaf import leaf_hash
from anchor.log.store import LogStore
from anchor.merkle import ProofError, sha256_hasher, verify_inclusion
from anchor.remote_checks import Entry
from anchor.trail import find


@dataclass(frozen=True)
class DisputePlan:
    """The arguments of openDispute for one entry, checked."""

    leaf_index: int
    checkpoint: Checkpoint
    provider: str
    record_digest: bytes
    record: bytes
    """The record's canonical bytes: openDispute carries them, so validators need not trust the log's copy."""
    provider_signature: bytes
    proof: tuple[bytes, ...]
    bond: int
    window_ends: int


@dataclass(frozen=True)
class Filed:
    dispute_id: int
    tx_hash: str
    block_number: int
    draw_block: int
    """The first block whose prevrandao may draw the committee (anyone may send draw from then)."""


def plan_dispute(
    session: Session, client: ToplocAuditClient, record: str, bond: int | None = None
) -> DisputePlan:
    """Build and check openDispute's arguments for `record`, from the database (see the module
    docstring)."""
    row = find(session, record)
    if row.checkpoint_id is None:
        raise InputError(
            "record", f"entry {row.log_index} is not anchored yet: no checkpoint covers it on chain"
        )
    cp_row = session.get(CheckpointRow, row.checkpoint_id)
    if cp_row is None or cp_row.chain_checkpoint_id is None:
        raise InputError("record", f"entry {row.log_index}'s checkpoint is not anchored on chain")
    entry = Entry(
        row.log_index,
        row.provider.address,
        bytes(row.record_digest),
        bytes(row.canonical),
        bytes(row.signature),
        cp_row.chain_checkpoint_id,
    )
    store = LogStore(session)
    return plan_entry_dispute(entry, client, lambda size: store.inclusion_proof(row.log_index, size), bond)


def plan_entry_dispute(
    entry: Entry,
    client: ToplocAuditClient,
    proof_at: Callable[[int], Sequence[bytes]],
    bond: int | None = None,
) -> DisputePlan:
    """Steps 2-5 for an entry from any source (the database, or a recorder's checked answer);
    `proof_at(size)` gives its inclusion proof in the tree of `size` leaves, checked here."""
    # 2. the first checkpoint covering it: the source's word, or the chain's when it has none
    if entry.checkpoint_id is not None:
        checkpoint = client.checkpoint(entry.checkpoint_id)
    else:
        covering = client.checkpoint_covering(entry.log_index)
        if covering is None:
            raise InputError(
                "record", f"entry {entry.log_index} is not anchored yet: no checkpoint covers it on chain"
            )
        checkpoint = covering
    if not checkpoint.covers(entry.log_index):
        raise InputError(
            "record",
            f"checkpoint {checkpoint.id} covers entries [{checkpoint.previous_size}, {checkpoint.size}), "
            f"not {entry.log_index}: the log and the chain disagree",
        )

    # 3. the inclusion proof, checked before the contract sees it
    proof = list(proof_at(checkpoint.size))
    try:
        verify_inclusion(
            sha256_hasher,
            entry.log_index,
            checkpoint.size,
            leaf_hash(entry.provider, entry.record_digest),
            proof,
            checkpoint.root,
        )
    except ProofError as exc:
        raise InputError(
            "record", f"the log's inclusion proof does not match checkpoint {checkpoint.id}: {exc}"
        ) from None

    # 4. the window and earlier disputes
    parameters = client.parameters()
    window_ends = checkpoint.timestamp + parameters.disputeWindow
    now = client.chain_time()
    if now > window_ends:
        raise InputError(
            "record",
            f"the dispute window of entry {entry.log_index} closed at chain time {window_ends} "
            f"(checkpoint {checkpoint.id} at {checkpoint.timestamp} + {parameters.disputeWindow} s); "
            f"it is {now}",
        )
    previous = client.dispute_of_leaf(entry.log_index)
    if previous:
        outcome = client.dispute(previous).outcome
        if outcome == Outcome.OPEN:
            raise InputError("record", f"entry {entry.log_index} is already disputed (dispute {previous})")
        if outcome != Outcome.NO_QUORUM:
            raise InputError(
                "record", f"entry {entry.log_index} was decided by dispute {previous}: {outcome.name.lower()}"
            )

    # 5. the bond
    if bond is None:
        bond = parameters.bond
    elif bond != parameters.bond:
        raise InputError("bond", f"must be exactly the contract's bond, {parameters.bond} wei; got {bond}")
    return DisputePlan(
        leaf_index=entry.log_index,
        checkpoint=checkpoint,
        provider=entry.provider,
        record_digest=entry.record_digest,
        record=entry.record,
        provider_signature=entry.provider_signature,
        proof=tuple(proof),
        bond=bond,
        window_ends=window_ends,
    )


def file_dispute(client: ToplocAuditClient, plan: DisputePlan) -> Filed:
    """Send openDispute from the client's account. Requires a client with an account (the challenger)."""
    if client.account is not None and client.account.address.lower() == plan.provider.lower():
        raise InputError("challenger", f"{plan.provider} is the record's provider: it cannot dispute itself")
    sent = client.open_dispute(
        plan.leaf_index,
        plan.checkpoint,
        plan.provider,
        plan.record_digest,
        plan.record,
        plan.provider_signature,
        plan.proof,
        bond=plan.bond,
    )
    opened = sent.event("DisputeOpened")
    return Filed(
        dispute_id=int(opened["disputeId"]),
        tx_hash=sent.tx_hash,
        block_number=sent.block_number,
        draw_block=int(opened["drawBlock"]),
    )
