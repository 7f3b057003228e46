"""Signed receipts (like a Certificate Transparency SCT) and the receipt file `verify-receipt` checks.

A receipt is the log's promise, signed with the log key (the contract's operator key) as EIP-712 typed
data in the deployment's domain:

    Receipt(uint64 logIndex, bytes32 recordDigest, uint64 timestamp, uint64 maximumMergeDelay)

The entry must be anchored on chain within `maximumMergeDelay` seconds of `timestamp`; a receipt whose
entry is not is evidence against the log. The receipt file (docs/log.md) adds what a third party needs
to check it with the chain alone: the provider (to rebuild the leaf), an inclusion proof and the
checkpoint it is against, and the chain id and contract.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_keys import keys
from eth_utils import is_hex_address, to_checksum_address

from anchor.errors import InputError, VerificationError
from anchor.leaf import leaf_hash
from anchor.merkle import root_from_inclusion_proof, sha256_hasher
from anchor.records.eip712 import Domain, recover_signer, sign_digest

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

    def check_offline(self) -> tuple[str, bytes]:
        """Checks that need no chain; returns (receipt signer, root the inclusion proof leads to).

        1. the receipt signature recovers (the caller compares the signer with the contract's operator);
        2. the provider signed the recordDigest in this domain;
        3. the inclusion proof leads from leaf(provider, recordDigest) to a root equal to the one in the
           file (the caller compares it with the contract's checkpoint).
        """
        domain = self.domain()
        signer = self.receipt.signer(self.receipt_signature, domain)
        provider_signer = recover_signer(
            domain.record_digest(self.receipt.record_digest), self.provider_signature
        )
        if provider_signer != self.provider:
            raise VerificationError(
                f"provider signature is by {provider_signer}, want the provider {self.provider}"
            )
        if self.inclusion is None:
            raise VerificationError(
                "the file has no inclusion proof: the entry was not anchored when it was written"
            )
        inc = self.inclusion
        root = root_from_inclusion_proof(
            sha256_hasher, self.receipt.log_index, inc.tree_size, self.leaf_hash(), inc.proof
        )
        if root != inc.root:
            raise VerificationError(
                f"inclusion proof leads to root {root.hex()}, want the file's {inc.root.hex()}"
            )
        return signer, root


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
