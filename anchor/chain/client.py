"""A typed client for one deployed ToplocAudit: views return dataclasses, transactions return `Sent`.

Arguments are checked at the ABI boundary (InputError naming the field: a hash that is not 32 bytes,
an integer out of range, a malformed address) before anything is sent, and reverts come back as
ContractRevert with the contract's error name and arguments. Transactions are signed with the
client's local account; views need none. Contract names are documented in docs/contracts.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import is_address, keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError, Web3RPCError

from anchor.chain.artifacts import load_artifact
from anchor.chain.deployment import CONTRACT_NAME, Deployment
from anchor.chain.errors import ChainError
from anchor.chain.parameters import Parameters
from anchor.chain.revert import RevertDecoder
from anchor.chain.transactions import Sent, send_transaction
from anchor.errors import InputError


class Role(IntEnum):
    NONE = 0
    PROVIDER = 1
    VALIDATOR = 2


class Outcome(IntEnum):
    OPEN = 0
    FRAUD = 1
    HONEST = 2
    NO_QUORUM = 3


class Ballot(IntEnum):
    NOT_MEMBER = 0
    PENDING = 1
    COMMITTED = 2
    FRAUD = 3
    HONEST = 4
    ABSTAINED = 5


class Phase(IntEnum):
    """Where a dispute stands now (DisputeGame.phaseOf)."""

    RESOLVED = 0
    DRAW = 1
    COMMIT = 2
    REVEAL = 3
    APPEAL = 4
    RESOLVABLE = 5


@dataclass(frozen=True)
class Checkpoint:
    """Checkpoint `id`: the log had `size` entries with `root` at `timestamp`; it is the first to
    cover entries [previous_size, size)."""

    id: int
    previous_size: int
    size: int
    root: bytes
    timestamp: int

    def to_abi(self) -> tuple[int, int, bytes, int]:
        """The contract's Checkpoint struct (previousSize, size, root, timestamp)."""
        return (self.previous_size, self.size, self.root, self.timestamp)

    def covers(self, leaf_index: int) -> bool:
        """Whether this is the first checkpoint covering entry `leaf_index`."""
        return self.previous_size <= leaf_index < self.size


@dataclass(frozen=True)
class StakeInfo:
    role: Role
    active: int
    unbonding: int
    unbonding_ends: int
    open_disputes: int


@dataclass(frozen=True)
class Dispute:
    id: int
    provider: str
    leaf_index: int
    outcome: Outcome
    rounds: int
    challenger: str
    checkpoint_id: int
    record_digest: bytes


@dataclass(frozen=True)
class Round:
    """One round of a dispute: its bond (the challenger's for round 0, else the appellant's), its
    committee once drawn, and the phase deadlines (chain time)."""

    appellant: str
    draw_block: int
    size: int
    quorum: int
    commits: int
    reveals: int
    fraud_votes: int
    honest_votes: int
    abstentions: int
    drawn: bool
    bond: int
    commit_deadline: int
    reveal_deadline: int
    seed: int
    committee: tuple[str, ...]


@dataclass(frozen=True)
class BallotInfo:
    round: int
    state: Ballot


@dataclass(frozen=True)
class Totals:
    """The terms of the solvency invariant: balance == staked + unbonding + bonds + credits + reserve."""

    balance: int
    staked: int
    unbonding: int
    bonds: int
    credits: int
    reserve: int

    @property
    def solvent(self) -> bool:
        return self.balance == self.staked + self.unbonding + self.bonds + self.credits + self.reserve


def check_bytes32(field: str, value: bytes) -> bytes:
    """`value` if it is exactly 32 bytes; InputError otherwise (a bytes32 cannot carry anything else)."""
    if not isinstance(value, bytes | bytearray):
        raise InputError(field, f"must be bytes, got {type(value).__name__}")
    if len(value) != 32:
        raise InputError(field, f"has {len(value)} bytes, want 32")
    return bytes(value)


def check_hashes(field: str, values: Sequence[bytes]) -> list[bytes]:
    return [check_bytes32(f"{field}[{i}]", v) for i, v in enumerate(values)]


def check_uint(field: str, value: int, bits: int = 256) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(field, f"must be an integer, got {value!r}")
    if not 0 <= value < 1 << bits:
        raise InputError(field, f"must be in [0, 2^{bits}), got {value}")
    return value


def check_address(field: str, value: str) -> ChecksumAddress:
    if not isinstance(value, str) or not is_address(value):
        raise InputError(field, f"{value!r} is not an address")
    return to_checksum_address(value)


def vote_commitment(dispute_id: int, voter: str, fraud: bool, evidence_hash: bytes, salt: bytes) -> bytes:
    """keccak256(abi.encode(disputeId, voter, fraud, evidenceHash, salt)): what commitVote takes."""
    return bytes(
        keccak(
            encode(
                ["uint256", "address", "bool", "bytes32", "bytes32"],
                [
                    check_uint("disputeId", dispute_id),
                    check_address("voter", voter),
                    bool(fraud),
                    check_bytes32("evidenceHash", evidence_hash),
                    check_bytes32("salt", salt),
                ],
            )
        )
    )


def _checkpoint_abi(checkpoint: Checkpoint) -> tuple[int, int, bytes, int]:
    return (
        check_uint("checkpoint.previousSize", checkpoint.previous_size, 64),
        check_uint("checkpoint.size", checkpoint.size, 64),
        check_bytes32("checkpoint.root", checkpoint.root),
        check_uint("checkpoint.timestamp", checkpoint.timestamp, 64),
    )


class ToplocAuditClient:
    """One ToplocAudit at `address`, acting as `account` (None: views only)."""

    def __init__(self, w3: Web3, address: str, account: LocalAccount | None = None) -> None:
        self.w3 = w3
        self.address = check_address("address", address)
        self.account = account
        abi = load_artifact(CONTRACT_NAME).abi
        self.contract = w3.eth.contract(address=self.address, abi=abi)
        self.decoder = RevertDecoder(abi)
        self._parameters: Parameters | None = None

    @classmethod
    def from_deployment(
        cls, w3: Web3, deployment: Deployment, account: LocalAccount | None = None
    ) -> ToplocAuditClient:
        return cls(w3, deployment.address, account)

    def as_account(self, account: LocalAccount) -> ToplocAuditClient:
        """The same contract, acting as `account`."""
        return ToplocAuditClient(self.w3, self.address, account)

    # -- plumbing ---------------------------------------------------------------------------------

    def call(self, function: str, *args: Any) -> Any:
        """A view call; reverts become ContractRevert."""
        try:
            return getattr(self.contract.functions, function)(*args).call()
        except (ContractCustomError, ContractLogicError, ContractPanicError, Web3RPCError) as exc:
            raise self.decoder.from_exception(exc) from None

    def transact(self, function: str, *args: Any, value: int = 0) -> Sent:
        """Sends `function(*args)` with `value` wei from the client's account."""
        if self.account is None:
            raise ChainError(f"{function} sends a transaction: this client has no account")
        data = self.contract.encode_abi(function, args=list(args))
        return send_transaction(
            self.w3,
            self.account,
            {"to": self.address, "data": data, "value": value},
            self.decoder,
            self.contract,
        )

    # -- the log ----------------------------------------------------------------------------------

    def operator(self) -> str:
        return str(self.call("operator"))

    def receipt_signer(self) -> str:
        """The address the log's receipts must be signed by (CheckpointLog.receiptSigner)."""
        return str(self.call("receiptSigner"))

    def deployment_block(self) -> int:
        return int(self.call("deploymentBlock"))

    def checkpoint_count(self) -> int:
        return int(self.call("checkpointCount"))

    def latest_checkpoint(self) -> tuple[int, int, bytes, int]:
        """(id, size, root, timestamp) of the latest checkpoint; id 0 and the empty root before any."""
        checkpoint_id, size, root, timestamp = self.call("latestCheckpoint")
        return int(checkpoint_id), int(size), bytes(root), int(timestamp)

    def checkpoints(self, from_block: int | None = None) -> list[Checkpoint]:
        """Every checkpoint, from the CheckpointAnchored events (the contract stores only their hashes).

        Reads logs from the deployment block (or `from_block`); a reorged-out event is dropped by
        keeping, per id, the one whose fields match the stored hash.
        """
        start = self.deployment_block() if from_block is None else from_block
        logs = self.contract.events.CheckpointAnchored().get_logs(from_block=start, to_block="latest")
        found: dict[int, list[Checkpoint]] = {}
        for log in logs:
            a = log["args"]
            cp = Checkpoint(
                int(a["id"]), int(a["previousSize"]), int(a["size"]), bytes(a["root"]), int(a["timestamp"])
            )
            found.setdefault(cp.id, []).append(cp)
        result = []
        for checkpoint_id in sorted(found):
            candidates = found[checkpoint_id]
            if len(candidates) > 1:
                candidates = [c for c in candidates if self.is_checkpoint(c)]
            if candidates:
                result.append(candidates[-1])
        return result

    def checkpoint(self, checkpoint_id: int) -> Checkpoint:
        """Checkpoint `checkpoint_id`, read from its event and checked against the stored hash."""
        check_uint("checkpointId", checkpoint_id)
        logs = self.contract.events.CheckpointAnchored().get_logs(
            from_block=self.deployment_block(), to_block="latest", argument_filters={"id": checkpoint_id}
        )
        for log in reversed(logs):
            a = log["args"]
            cp = Checkpoint(
                checkpoint_id, int(a["previousSize"]), int(a["size"]), bytes(a["root"]), int(a["timestamp"])
            )
            if self.is_checkpoint(cp):
                return cp
        raise InputError("checkpointId", f"no anchored checkpoint {checkpoint_id}")

    def checkpoint_covering(self, leaf_index: int) -> Checkpoint | None:
        """The first checkpoint that covers entry `leaf_index`, None if none does yet."""
        check_uint("leafIndex", leaf_index, 64)
        for cp in self.checkpoints():
            if cp.covers(leaf_index):
                return cp
        return None

    def is_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Whether `checkpoint` holds the fields of the anchored checkpoint with its id."""
        return bool(
            self.call("isCheckpoint", check_uint("checkpointId", checkpoint.id), _checkpoint_abi(checkpoint))
        )

    def checkpoint_hash(self, checkpoint_id: int) -> bytes:
        return bytes(self.call("checkpointHash", check_uint("checkpointId", checkpoint_id)))

    def anchor(self, new_size: int, new_root: bytes, consistency_proof: Sequence[bytes]) -> Sent:
        """Anchors checkpoint (new_size, new_root); operator only. Emits CheckpointAnchored."""
        return self.transact(
            "anchor",
            check_uint("newSize", new_size, 64),
            check_bytes32("newRoot", new_root),
            check_hashes("consistencyProof", consistency_proof),
        )

    def verify_inclusion(
        self, checkpoint: Checkpoint, leaf_index: int, leaf_hash: bytes, proof: Sequence[bytes]
    ) -> bool:
        """Whether `leaf_hash` is entry `leaf_index` at `checkpoint` (checked on chain against its hash)."""
        return bool(
            self.call(
                "verifyInclusion",
                check_uint("checkpointId", checkpoint.id),
                _checkpoint_abi(checkpoint),
                check_uint("leafIndex", leaf_index, 64),
                check_bytes32("leafHash", leaf_hash),
                check_hashes("proof", proof),
            )
        )

    def verify_inclusion_proof(
        self, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
    ) -> bool:
        """The contract's RFC 9162 inclusion check against any root."""
        return bool(
            self.call(
                "verifyInclusionProof",
                check_uint("index", index),
                check_uint("size", size),
                check_bytes32("leafHash", leaf_hash),
                check_hashes("proof", proof),
                check_bytes32("root", root),
            )
        )

    def verify_consistency_proof(
        self, size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
    ) -> bool:
        """The contract's RFC 9162 consistency check, as `anchor` runs it."""
        return bool(
            self.call(
                "verifyConsistencyProof",
                check_uint("size1", size1),
                check_uint("size2", size2),
                check_bytes32("root1", root1),
                check_bytes32("root2", root2),
                check_hashes("proof", proof),
            )
        )

    # -- stakes and models ------------------------------------------------------------------------

    def stake(self, role: Role, amount: int) -> Sent:
        """Stakes `amount` wei as `role`. Emits Staked."""
        if role not in (Role.PROVIDER, Role.VALIDATOR):
            raise InputError("role", f"must be provider (1) or validator (2), got {role}")
        return self.transact("stake", int(role), value=check_uint("amount", amount))

    def request_unstake(self, amount: int) -> Sent:
        return self.transact("requestUnstake", check_uint("amount", amount))

    def withdraw_stake(self) -> Sent:
        return self.transact("withdrawStake")

    def chain_time(self) -> int:
        """The latest block's timestamp: the clock every deadline of the contract is measured on."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def stake_of(self, account: str) -> StakeInfo:
        role, active, unbonding, ends, open_disputes = self.call("stakes", check_address("account", account))
        return StakeInfo(Role(role), int(active), int(unbonding), int(ends), int(open_disputes))

    def validators(self) -> list[str]:
        """The validators in the pool now, in the order committees are drawn from."""
        return [v for v, _ in self.pool(pending=False) if self.call("isEligibleValidator", v)]

    def pool(self, pending: bool = True) -> list[tuple[str, int]]:
        """Every pool slot in draw order with its draw weight: for a draw in the next block (`pending`),
        else in the latest one."""
        block = "pending" if pending else "latest"
        count = int(self.contract.functions.validatorCount().call(block_identifier=block))
        slots = [
            str(self.contract.functions.validatorAt(i).call(block_identifier=block)) for i in range(count)
        ]
        return [(v, int(self.contract.functions.drawWeightOf(v).call(block_identifier=block))) for v in slots]

    def declare_model(self, name: str, fingerprint: bytes) -> Sent:
        if not isinstance(name, str) or not 0 < len(name.encode()) <= 128:
            raise InputError("name", "must be 1 to 128 bytes of UTF-8")
        return self.transact("declareModel", name, check_bytes32("fingerprint", fingerprint))

    def model(self, provider: str, fingerprint: bytes) -> tuple[str, int]:
        """(name, declaredAt) of a declared model; declaredAt 0 if never declared."""
        name, declared_at = self.call(
            "models", check_address("provider", provider), check_bytes32("fingerprint", fingerprint)
        )
        return str(name), int(declared_at)

    # -- disputes ---------------------------------------------------------------------------------

    def open_dispute(
        self,
        leaf_index: int,
        checkpoint: Checkpoint,
        provider: str,
        record_digest: bytes,
        record: bytes,
        provider_sig: bytes,
        proof: Sequence[bytes],
        bond: int | None = None,
    ) -> Sent:
        """Disputes entry `leaf_index`, covered first by `checkpoint`, sending `bond` wei (default: the
        deployment's bond); `record` is the record's canonical bytes (SHA-256 = `record_digest`), carried
        in the calldata for validators. Emits DisputeOpened."""
        for name, value in (("record", record), ("providerSig", provider_sig)):
            if not isinstance(value, bytes | bytearray):
                raise InputError(name, "must be bytes")
        return self.transact(
            "openDispute",
            check_uint("leafIndex", leaf_index, 64),
            check_uint("checkpointId", checkpoint.id),
            _checkpoint_abi(checkpoint),
            check_address("provider", provider),
            check_bytes32("recordDigest", record_digest),
            bytes(record),
            bytes(provider_sig),
            check_hashes("proof", proof),
            value=self.parameters().bond if bond is None else check_uint("bond", bond),
        )

    def draw(self, dispute_id: int) -> Sent:
        """Draws the current round's committee (anyone may, from its draw block). Emits CommitteeDrawn."""
        return self.transact("draw", check_uint("disputeId", dispute_id))

    def commit_vote(self, dispute_id: int, commitment: bytes) -> Sent:
        """Commits a hidden vote (see vote_commitment). Emits VoteCommitted."""
        return self.transact(
            "commitVote", check_uint("disputeId", dispute_id), check_bytes32("commitment", commitment)
        )

    def reveal_vote(self, dispute_id: int, fraud: bool, evidence_hash: bytes, salt: bytes) -> Sent:
        """Opens the committed vote. Emits VoteRevealed."""
        if not isinstance(fraud, bool):
            raise InputError("fraud", f"must be a bool, got {fraud!r}")
        return self.transact(
            "revealVote",
            check_uint("disputeId", dispute_id),
            fraud,
            check_bytes32("evidenceHash", evidence_hash),
            check_bytes32("salt", salt),
        )

    def abstain(self, dispute_id: int, reason_hash: bytes) -> Sent:
        """Abstains with the SHA-256 of a report giving the reason. Emits VoteAbstained."""
        return self.transact(
            "abstain", check_uint("disputeId", dispute_id), check_bytes32("reasonHash", reason_hash)
        )

    def appeal(self, dispute_id: int) -> Sent:
        """Appeals the current round (the losing side only), sending the next round's bond. Emits
        DisputeAppealed."""
        dispute = self.dispute(dispute_id)
        return self.transact("appeal", dispute_id, value=self.parameters().appeal_bond(dispute.rounds))

    def resolve(self, dispute_id: int) -> Sent:
        """Settles a dispute; anyone may, once it is resolvable. Emits DisputeResolved."""
        return self.transact("resolve", check_uint("disputeId", dispute_id))

    def dispute(self, dispute_id: int) -> Dispute:
        d = self.call("disputes", check_uint("disputeId", dispute_id))
        return Dispute(
            id=dispute_id,
            provider=str(d[0]),
            leaf_index=int(d[1]),
            outcome=Outcome(d[2]),
            rounds=int(d[3]),
            challenger=str(d[4]),
            checkpoint_id=int(d[5]),
            record_digest=bytes(d[6]),
        )

    def round(self, dispute_id: int, round_: int) -> Round:
        r = self.call("rounds", check_uint("disputeId", dispute_id), check_uint("round", round_, 8))
        return Round(
            appellant=str(r[0]),
            draw_block=int(r[1]),
            size=int(r[2]),
            quorum=int(r[3]),
            commits=int(r[4]),
            reveals=int(r[5]),
            fraud_votes=int(r[6]),
            honest_votes=int(r[7]),
            abstentions=int(r[8]),
            drawn=bool(r[9]),
            bond=int(r[10]),
            commit_deadline=int(r[11]),
            reveal_deadline=int(r[12]),
            seed=int(r[13]),
            committee=tuple(str(a) for a in r[14]),
        )

    def current_round(self, dispute_id: int) -> Round:
        return self.round(dispute_id, self.dispute(dispute_id).rounds - 1)

    def phase(self, dispute_id: int) -> Phase:
        return Phase(self.call("phaseOf", check_uint("disputeId", dispute_id)))

    def vote_commitment(
        self, dispute_id: int, voter: str, fraud: bool, evidence_hash: bytes, salt: bytes
    ) -> bytes:
        """keccak256(abi.encode(disputeId, voter, fraud, evidenceHash, salt)), as the contract checks it."""
        return vote_commitment(dispute_id, voter, fraud, evidence_hash, salt)

    def preview_committee(self, seed: int, provider: str, challenger: str, size: int) -> list[str]:
        """The committee `seed` would draw in the next block (previewCommittee, with pending weights)."""
        function = self.contract.functions.previewCommittee(
            check_uint("seed", seed),
            check_address("provider", provider),
            check_address("challenger", challenger),
            check_uint("size", size, 8),
        )
        return [str(a) for a in function.call(block_identifier="pending")]

    def dispute_count(self) -> int:
        return int(self.call("disputeCount"))

    def dispute_of_leaf(self, leaf_index: int) -> int:
        return int(self.call("disputeOfLeaf", check_uint("leafIndex", leaf_index, 64)))

    def ballot_of(self, dispute_id: int, validator: str) -> BallotInfo:
        round_, state = self.call(
            "ballotOf", check_uint("disputeId", dispute_id), check_address("validator", validator)
        )
        return BallotInfo(int(round_), Ballot(state))

    def record_leaf_hash(self, provider: str, record_digest: bytes) -> bytes:
        return bytes(
            self.call(
                "recordLeafHash",
                check_address("provider", provider),
                check_bytes32("recordDigest", record_digest),
            )
        )

    def record_typed_data_hash(self, record_digest: bytes) -> bytes:
        return bytes(self.call("recordTypedDataHash", check_bytes32("recordDigest", record_digest)))

    # -- payments and parameters ------------------------------------------------------------------

    def withdraw(self) -> Sent:
        """Sends the account all its credit. Emits Withdrawn."""
        return self.transact("withdraw")

    def credits(self, account: str) -> int:
        return int(self.call("credits", check_address("account", account)))

    def totals(self) -> Totals:
        return Totals(
            balance=int(self.w3.eth.get_balance(self.address)),
            staked=int(self.call("totalStaked")),
            unbonding=int(self.call("totalUnbonding")),
            bonds=int(self.call("totalBonds")),
            credits=int(self.call("totalCredits")),
            reserve=int(self.call("totalReserve")),
        )

    def parameters(self) -> Parameters:
        """The deployment's parameters (fixed at construction, so read once)."""
        if self._parameters is None:
            self._parameters = Parameters.from_abi(self.call("parameters"))
        return self._parameters
