"""Building blocks for contract tests: a signed in-memory log anchored on chain, stakes, disputes.

The log is the reference RFC 9162 tree (anchor/merkle/reference.py); leaves are the real leaf of a
record (anchor/leaf.py) signed with EIP-712 (anchor/signing.py), so the contract sees exactly what
the recorder would produce.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from anchor.chain.client import Checkpoint, Phase, Role
from anchor.chain.committee import committee_seed, draw_committee
from anchor.chain.transactions import Sent
from anchor.leaf import leaf_hash
from anchor.merkle import reference as ref
from anchor.merkle import sha256_hasher
from anchor.signing import sign_record_digest
from tests.fixtures.chain import AuditChain

H = sha256_hasher


@dataclass(frozen=True)
class Record:
    index: int
    provider: LocalAccount
    digest: bytes
    signature: bytes
    leaf: bytes
    canonical: bytes
    """The record's bytes: SHA-256 of them is `digest` (openDispute carries them)."""


@dataclass
class SignedLog:
    """An append-only log whose checkpoints the operator anchors on `audit`'s contract."""

    audit: AuditChain
    leaves: list[bytes] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    _counter: int = 0

    @property
    def size(self) -> int:
        return len(self.leaves)

    def canonical(self) -> bytes:
        self._counter += 1
        return f"record {self._counter} of {self.audit.deployment.address}".encode()

    def digest(self) -> bytes:
        return hashlib.sha256(self.canonical()).digest()

    def append(self, provider: LocalAccount, canonical: bytes | None = None) -> Record:
        """Appends a record of `provider` (its bytes `canonical`, made up by default), signed for this
        deployment."""
        canonical = canonical if canonical is not None else self.canonical()
        digest = hashlib.sha256(canonical).digest()
        d = self.audit.deployment
        signature = sign_record_digest(provider.key, digest, d.chain_id, d.address)
        record = Record(
            self.size, provider, digest, signature, leaf_hash(provider.address, digest), canonical
        )
        self.leaves.append(record.leaf)
        return record

    def append_filler(self, count: int) -> None:
        """Appends `count` leaves nobody will dispute."""
        for _ in range(count):
            self.leaves.append(H.hash_leaf(self.digest()))

    def anchor(self) -> Checkpoint:
        """Anchors the whole log as a new checkpoint; returns it (read back from its event)."""
        previous = self.checkpoints[-1].size if self.checkpoints else 0
        proof = ref.consistency_proof(H, previous, self.leaves) if previous else []
        sent = self.audit.client(self.audit.operator).anchor(self.size, ref.root(H, self.leaves), proof)
        a = sent.event("CheckpointAnchored")
        checkpoint = Checkpoint(a["id"], a["previousSize"], a["size"], bytes(a["root"]), a["timestamp"])
        self.checkpoints.append(checkpoint)
        return checkpoint

    def covering(self, index: int) -> Checkpoint:
        """The first checkpoint that covers entry `index`."""
        return next(c for c in self.checkpoints if c.covers(index))

    def proof(self, index: int, checkpoint: Checkpoint) -> list[bytes]:
        return ref.inclusion_proof(H, index, self.leaves[: checkpoint.size])


def stake(audit: AuditChain, account: LocalAccount, role: Role, amount: int) -> Sent:
    return audit.client(account).stake(role, amount)


def open_dispute(
    audit: AuditChain, log: SignedLog, record: Record, challenger: LocalAccount
) -> tuple[int, Sent]:
    """Opens a dispute on `record` against its first covering checkpoint; returns (id, transaction)."""
    checkpoint = log.covering(record.index)
    sent = audit.client(challenger).open_dispute(
        record.index,
        checkpoint,
        record.provider.address,
        record.digest,
        record.canonical,
        record.signature,
        log.proof(record.index, checkpoint),
    )
    return int(sent.event("DisputeOpened")["disputeId"]), sent


def salt(member: LocalAccount, dispute_id: int) -> bytes:
    """A test salt, secret enough for a test: derived from the member's key."""
    return hashlib.sha256(member.key + dispute_id.to_bytes(32, "big")).digest()


def evidence(member: LocalAccount, dispute_id: int, fraud: bool) -> bytes:
    """A stand-in for the SHA-256 of a member's evidence report."""
    return hashlib.sha256(f"{member.address} {dispute_id} {fraud}".encode()).digest()


def draw(audit: AuditChain, dispute_id: int, caller: LocalAccount) -> tuple[list[str], Sent]:
    """Draws the current round's committee; returns it and the transaction (checked against the
    Python draw over the pool as it stood before the draw block)."""
    client = audit.client(caller)
    dispute = client.dispute(dispute_id)
    current = client.round(dispute_id, dispute.rounds - 1)
    while audit.w3.eth.block_number + 1 < current.draw_block:  # mined in the next block
        audit.node.mine()
    pool = client.pool()
    seated = {m for r in range(dispute.rounds - 1) for m in client.round(dispute_id, r).committee}
    sent = client.draw(dispute_id)
    drawn = sent.event("CommitteeDrawn")
    block = audit.w3.eth.get_block(sent.block_number)
    seed = committee_seed(bytes(block["mixHash"]), dispute_id, dispute.rounds - 1)
    assert drawn["seed"] == seed
    excluded = {dispute.provider, dispute.challenger, *seated}
    want = draw_committee(seed, pool, current.size, excluded)
    assert list(drawn["committee"]) == want
    return want, sent


ACTIONS = ("fraud", "honest", "abstain", "absent", "commit-only")


def play_round(
    audit: AuditChain, dispute_id: int, members: dict[str, LocalAccount], actions: dict[str, str]
) -> dict[str, list[Sent]]:
    """Plays the current round: each member (by address) does its action (ACTIONS; "absent" when not
    listed), waiting out a phase only when someone leaves it unfinished. Returns each member's
    transactions (for their gas)."""
    client = audit.client()
    sent: dict[str, list[Sent]] = {a: [] for a in members}
    for address, member in members.items():
        action = actions.get(address, "absent")
        assert action in ACTIONS, action
        mine = audit.client(member)
        if action in ("fraud", "honest", "commit-only"):
            fraud = action != "honest"
            commitment = mine.vote_commitment(
                dispute_id, address, fraud, evidence(member, dispute_id, fraud), salt(member, dispute_id)
            )
            sent[address].append(mine.commit_vote(dispute_id, commitment))
        elif action == "abstain":
            sent[address].append(mine.abstain(dispute_id, evidence(member, dispute_id, False)))
    current = client.current_round(dispute_id)
    if current.commits + current.abstentions < current.size:
        audit.advance(current.commit_deadline - audit.now() + 1)
    for address, member in members.items():
        action = actions.get(address, "absent")
        if action in ("fraud", "honest"):
            fraud = action == "fraud"
            sent[address].append(
                audit.client(member).reveal_vote(
                    dispute_id, fraud, evidence(member, dispute_id, fraud), salt(member, dispute_id)
                )
            )
    current = client.current_round(dispute_id)
    if current.reveals < current.commits:
        audit.advance(current.reveal_deadline - audit.now() + 1)
    return sent


def finish(audit: AuditChain, dispute_id: int, caller: LocalAccount) -> Sent:
    """Waits out the appeal window (if any) and resolves."""
    client = audit.client(caller)
    if client.phase(dispute_id) == Phase.APPEAL:
        current = client.current_round(dispute_id)
        audit.advance(current.reveal_deadline + audit.parameters.appealPeriod - audit.now() + 1)
    return client.resolve(dispute_id)
