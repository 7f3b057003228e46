"""Signed receipts (like a Certificate Transparency SCT) and the receipt file `verify-receipt` checks.

A receipt is the log's promise, signed with the receipt key (the contract's `receiptSigner`, a key apart
from the operator's, which sends the anchor transactions) as EIP-712 typed data in the deployment's
domain:

    Receipt(uint64 logIndex, bytes32 recordDigest, uint64 timestamp, uint64 maximumMergeDelay)

The entry must be anchored on chain within `maximumMergeDelay` seconds of `timestamp`; a receipt whose
entry is not is evidence against the log. The receipt file (docs/log.md) adds what a third party needs
to check it with the chain alone: the provider (to rebuild the leaf), an inclusion proof and the
checkpoint it is against, and the chain id and contract.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_keys import keys
from eth_utils import is_hex_address, to_checksum_address

from anchor.errors import InputError, VerificationError
from anchor.leaf import leaf_hash
from anchor.merkle import root_from_inclusion_proof, sha256_hasher
from anchor.records.eip712 import Domain, recover_signer, sign_digest

if TYPE_CHECKING:  # the chain reader (web3) is imported only where the chain is fetched
    from anchor.anchoring.chain import OnChainCheckpoint

FILE_FORMAT = "toploc-audit-receipt/1"


@dataclass(frozen=True)
class Receipt:
    log_index: int
    record_digest: bytes
    timestamp: int
    max_merge_delay: int

    def digest(self, domain: Domain) -> bytes:
        return domain.receipt_digest(self.log_index, self.record_digest, self.timestamp, self.max_merge_delay)

    def sign(self, key: keys.PrivateKey, domain: Domain) -> bytes:
        return sign_digest(key, self.digest(domain))

    def signer(self, signature: bytes, domain: Domain) -> str:
        """The address that signed this receipt; VerificationError for a malformed signature."""
        return recover_signer(self.digest(domain), signature)

    def to_json(self) -> dict[str, Any]:
        return {
            "logIndex": self.log_index,
            "recordDigest": "0x" + self.record_digest.hex(),
            "timestamp": self.timestamp,
            "maximumMergeDelay": self.max_merge_delay,
        }

    @classmethod
    def from_json(cls, obj: Any, field: str = "receipt") -> Receipt:
        o = _object(obj, field)
        return cls(
            log_index=_uint64(o.get("logIndex"), f"{field}.logIndex"),
            record_digest=_hex(o.get("recordDigest"), f"{field}.recordDigest", 32),
            timestamp=_uint64(o.get("timestamp"), f"{field}.timestamp"),
            max_merge_delay=_uint64(o.get("maximumMergeDelay"), f"{field}.maximumMergeDelay"),
        )


@dataclass(frozen=True)
class Inclusion:
    """An inclusion proof of the entry in the tree of `tree_size` leaves anchored as `checkpoint_id`."""

    checkpoint_id: int
    tree_size: int
    root: bytes
    proof: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpointId": self.checkpoint_id,
            "treeSize": self.tree_size,
            "root": "0x" + self.root.hex(),
            "proof": ["0x" + p.hex() for p in self.proof],
        }


@dataclass(frozen=True)
class ReceiptFile:
    """Everything `verify-receipt` needs, with the chain as the only other input."""

    chain_id: int
    contract: str
    provider: str
    receipt: Receipt
    receipt_signature: bytes
    provider_signature: bytes
    inclusion: Inclusion | None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FILE_FORMAT,
            "chainId": self.chain_id,
            "contract": self.contract,
            "provider": self.provider,
            "receipt": self.receipt.to_json(),
            "receiptSignature": "0x" + self.receipt_signature.hex(),
            "providerSignature": "0x" + self.provider_signature.hex(),
            "inclusion": None if self.inclusion is None else self.inclusion.to_json(),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def loads(cls, text: str) -> ReceiptFile:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError("receipt file", f"not JSON: {exc}") from None
        o = _object(obj, "file")
        if o.get("format") != FILE_FORMAT:
            raise InputError("format", f"is {o.get('format')!r}, want {FILE_FORMAT!r}")
        inclusion = None
        if o.get("inclusion") is not None:
            i = _object(o["inclusion"], "inclusion")
            proof = i.get("proof")
            if not isinstance(proof, list):
                raise InputError("inclusion.proof", "must be an array of 32-byte hex strings")
            inclusion = Inclusion(
                checkpoint_id=_uint64(i.get("checkpointId"), "inclusion.checkpointId"),
                tree_size=_uint64(i.get("treeSize"), "inclusion.treeSize"),
                root=_hex(i.get("root"), "inclusion.root", 32),
                proof=tuple(_hex(p, f"inclusion.proof[{n}]", 32) for n, p in enumerate(proof)),
            )
        provider = o.get("provider")
        contract = o.get("contract")
        for name, value in (("provider", provider), ("contract", contract)):
            if not isinstance(value, str) or not is_hex_address(value):
                raise InputError(name, "not a 20-byte hex address")
        return cls(
            chain_id=_uint64(o.get("chainId"), "chainId"),
            contract=to_checksum_address(str(contract)),
            provider=to_checksum_address(str(provider)),
            receipt=Receipt.from_json(o.get("receipt")),
            receipt_signature=_hex(o.get("receiptSignature"), "receiptSignature", 65),
            provider_signature=_hex(o.get("providerSignature"), "providerSignature", 65),
            inclusion=inclusion,
        )

    def domain(self) -> Domain:
        return Domain.of(self.chain_id, self.contract)

    def leaf_hash(self) -> bytes:
        return leaf_hash(self.provider, self.receipt.record_digest)


@dataclass(frozen=True)
class ChainView:
    """What the chain says about one receipt file, fetched before anything is checked."""

    chain_id: int
    receipt_signer: str
    """The contract's receiptSigner: the only address whose receipts are the log's."""
    checkpoint_count: int
    checkpoint: OnChainCheckpoint | None
    """The checkpoint the file's inclusion proof names, None when the chain does not have it."""
    contract_verifies: bool | None
    """The contract's own verifyInclusion of the file's proof; None when it could not be asked."""
    first_covering: OnChainCheckpoint | None
    """The first checkpoint on chain whose tree covers the entry."""


class ReceiptError(VerificationError):
    """One step of receipt verification failed: `step` names it, `field` the part of the file it
    comes from; `passed` holds the steps that passed before it."""

    def __init__(self, step: str, field: str, reason: str, passed: Sequence[str] = ()) -> None:
        super().__init__(f"{step} ({field}): {reason}")
        self.step, self.field, self.reason, self.passed = step, field, reason, tuple(passed)


def verify_receipt(rf: ReceiptFile, chain: ChainView) -> list[str]:
    """Checks a receipt file against what the chain says, in order; returns one line per passed step.

    1. chain: the node is on the chain the file names (else every signature would seem wrong);
    2. receipt signature: by the contract's receiptSigner, in the file's domain;
    3. provider signature: the provider signed the recordDigest in that domain;
    4. inclusion proof: it leads from leaf(provider, recordDigest) to the file's root;
    5. checkpoint: the chain holds that (size, root) under the id named, and its contract verifies;
    6. merge delay: the entry was first anchored within the receipt's maximum merge delay.
    """
    passed: list[str] = []

    def fail(step: str, field: str, reason: str) -> ReceiptError:
        return ReceiptError(step, field, reason, passed)

    def signer_of(step: str, field: str, digest: bytes, signature: bytes) -> str:
        try:
            return recover_signer(digest, signature)
        except VerificationError as exc:
            raise fail(step, field, str(exc)) from None

    r, domain = rf.receipt, rf.domain()
    if chain.chain_id != rf.chain_id:
        raise fail("chain", "chainId", f"the node is on chain {chain.chain_id}, the file names {rf.chain_id}")
    passed.append(f"chain {rf.chain_id}, contract {rf.contract}")
    signer = signer_of("receipt signature", "receiptSignature", r.digest(domain), rf.receipt_signature)
    if signer != chain.receipt_signer:
        raise fail(
            "receipt signature",
            "receiptSignature",
            f"receipt signed by {signer}, but the contract's receiptSigner is {chain.receipt_signer}",
        )
    passed.append(f"receipt for log index {r.log_index} signed by the receipt signer {signer}")
    provider_digest = domain.record_digest(r.record_digest)
    provider_signer = signer_of(
        "provider signature", "providerSignature", provider_digest, rf.provider_signature
    )
    if provider_signer != rf.provider:
        raise fail(
            "provider signature",
            "providerSignature",
            f"signed by {provider_signer}, want the provider {rf.provider}",
        )
    passed.append(f"provider {rf.provider} signed recordDigest 0x{r.record_digest.hex()}")
    inc = rf.inclusion
    if inc is None:
        raise fail("inclusion proof", "inclusion", "none: the entry was not anchored when the file was made")
    try:
        root = root_from_inclusion_proof(sha256_hasher, r.log_index, inc.tree_size, rf.leaf_hash(), inc.proof)
    except VerificationError as exc:
        raise fail("inclusion proof", "inclusion.proof", str(exc)) from None
    if root != inc.root:
        raise fail(
            "inclusion proof",
            "inclusion.proof",
            f"inclusion proof leads to root {root.hex()}, want the file's {inc.root.hex()}",
        )
    passed.append(f"inclusion proof leads to root 0x{root.hex()} (tree size {inc.tree_size})")
    cp = chain.checkpoint
    if cp is None:
        raise fail(
            "checkpoint",
            "inclusion.checkpointId",
            f"checkpoint {inc.checkpoint_id} is not on chain (it has {chain.checkpoint_count})",
        )
    if (cp.size, cp.root) != (inc.tree_size, root):
        raise fail(
            "checkpoint",
            "inclusion.root",
            f"checkpoint {cp.id} on chain is size {cp.size} root 0x{cp.root.hex()}, "
            f"the proof gives size {inc.tree_size} root 0x{root.hex()}",
        )
    if chain.contract_verifies is not True:
        raise fail("checkpoint", "inclusion.proof", f"the contract's verifyInclusion rejects it ({cp.id})")
    passed.append(f"checkpoint {cp.id} on chain holds that root; the contract verifies the inclusion")
    first = chain.first_covering
    if first is None:
        raise fail("merge delay", "receipt.logIndex", "no checkpoint on chain covers the entry")
    deadline = r.timestamp + r.max_merge_delay
    if first.timestamp > deadline:
        raise fail(
            "merge delay",
            "receipt.timestamp",
            f"entry first anchored in checkpoint {first.id} at {first.timestamp}, after the promised "
            f"{deadline} (receipt time {r.timestamp} + maximum merge delay {r.max_merge_delay}): "
            "evidence against the log",
        )
    passed.append(f"first anchored in checkpoint {first.id} at {first.timestamp}, within the merge delay")
    return passed


def fetch_chain_view(rf: ReceiptFile, rpc_url: str) -> ChainView:
    """Asks the chain the file names everything `verify_receipt` compares (network only, no checks)."""
    from anchor.anchoring.chain import AuditContract

    chain = AuditContract.connect(rpc_url, rf.contract)
    count = chain.checkpoint_count()
    inc = rf.inclusion
    checkpoint = verifies = None
    if inc is not None and 1 <= inc.checkpoint_id <= count:
        checkpoint = chain.checkpoint(inc.checkpoint_id)
        if rf.receipt.log_index < checkpoint.size and len(inc.proof) <= 64:
            verifies = chain.verify_inclusion(
                checkpoint.id, rf.receipt.log_index, rf.leaf_hash(), list(inc.proof)
            )
    first = chain.first_covering(rf.receipt.log_index) if count else None
    return ChainView(
        chain_id=chain.chain_id,
        receipt_signer=chain.receipt_signer_address(),
        checkpoint_count=count,
        checkpoint=checkpoint,
        contract_verifies=verifies,
        first_covering=first,
    )


def _object(obj: Any, field: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise InputError(field, "must be an object")
    return obj


def _uint64(value: Any, field: str) -> int:
    if type(value) is not int or not 0 <= value < 2**64:
        raise InputError(field, "must be an integer in [0, 2^64)")
    return value


def _hex(value: Any, field: str, size: int) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise InputError(field, f"must be a 0x-prefixed hex string of {size} bytes")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise InputError(field, "is not hex") from None
    if len(raw) != size:
        raise InputError(field, f"has {len(raw)} bytes, want {size}")
    return raw
