"""What a recorder says about an entry, checked: pure functions over its answers and the chain's.

A reader with `--recorder URL` trusts neither the recorder nor its database: the record it is served
must hash to the recordDigest the receipt names and be signed by its provider in the pinned domain,
the receipt must be the operator's, the inclusion proof must lead to a root the chain holds
(anchor.receipts.verify_receipt), and the disputes it lists must be the chain's, none left out.
Each failure is a RemoteCheckError naming the field of the recorder's answer it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from anchor.errors import InputError, VerificationError
from anchor.receipts import Inclusion, Receipt, ReceiptFile, hex_field
from anchor.records.eip712 import Domain, recover_signer
from anchor.records.record import Record

OUTCOMES = {0: "open", 1: "fraud", 2: "honest", 3: "no quorum"}


class RemoteCheckError(VerificationError):
    """The recorder's answer does not hold up: `field` names the part of it that fails."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"the recorder's {field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Entry:
    """One log entry with what a receipt and openDispute need (from the database, or checked from a
    recorder's answer)."""

    log_index: int
    provider: str
    record_digest: bytes
    record: bytes
    """The record's canonical (RFC 8785) bytes: SHA-256 of them is record_digest."""
    provider_signature: bytes
    checkpoint_id: int | None
    """The on-chain id of the first checkpoint covering the entry, as its source says (the chain
    confirms it before anything relies on it)."""


@dataclass(frozen=True)
class ChainDispute:
    """A dispute as the chain has it (anchor.chain.client.Dispute, reduced to what is compared)."""

    id: int
    leaf_index: int
    challenger: str
    outcome: str
    ballots: dict[str, str]
    """validator -> "fraud", "honest", "abstained", "committed", ... as the chain has its ballot, for
    the validators the recorder lists votes of."""


def _bytes(d: dict[str, Any], field: str, size: int) -> bytes:
    try:
        return hex_field(d.get(field), field, size)
    except InputError as exc:
        raise RemoteCheckError(exc.field, exc.reason) from None


def entry_from_trail(d: dict[str, Any], domain: Domain, asked: str) -> Entry:
    """The entry in a GET /v1/records/{ref} answer, checked on its own: it is the record `asked` for
    (log index or recordDigest), the record is valid, its bytes hash to the recordDigest the answer and
    its receipt name, and its provider signed that digest in `domain`."""
    try:
        record = Record.from_json(d.get("record"), "record")
        receipt = Receipt.from_json(d.get("receipt"))
    except InputError as exc:
        raise RemoteCheckError(exc.field, exc.reason) from None
    digest, canonical = record.digest(), record.canonical_bytes()
    claimed = _bytes(d, "recordDigest", 32)
    if digest != claimed or receipt.record_digest != claimed:
        raise RemoteCheckError(
            "record",
            f"hashes to 0x{digest.hex()}; the answer names 0x{claimed.hex()}, its receipt "
            f"0x{receipt.record_digest.hex()}",
        )
    index = d.get("logIndex")
    if type(index) is not int or index != receipt.log_index:
        raise RemoteCheckError("logIndex", f"{index!r} is not the receipt's log index {receipt.log_index}")
    same = asked.lower() == f"0x{digest.hex()}" if asked.startswith("0x") else asked == str(index)
    if not same:
        raise RemoteCheckError("logIndex", f"asked for record {asked}, got entry {index} (0x{digest.hex()})")
    provider = to_checksum_address(record.provider)
    if d.get("provider") != provider:
        raise RemoteCheckError("provider", f"{d.get('provider')!r} is not the record's provider {provider}")
    signature = _bytes(d, "signature", 65)
    signer = recover_signer(domain.record_digest(digest), signature)
    if signer != provider:
        raise RemoteCheckError(
            "signature",
            f"signed by {signer}, not the provider {provider} (domain chainId {domain.chain_id}, "
            f"contract {domain.contract})",
        )
    first = d.get("firstCheckpoint")
    checkpoint_id = first.get("checkpointId") if isinstance(first, dict) else None
    if checkpoint_id is not None and type(checkpoint_id) is not int:
        raise RemoteCheckError("firstCheckpoint.checkpointId", f"{checkpoint_id!r} is not an integer")
    return Entry(index, provider, digest, canonical, signature, checkpoint_id)


def receipt_file_of_trail(d: dict[str, Any], domain: Domain, entry: Entry) -> ReceiptFile:
    """The receipt file the answer amounts to (checked by anchor.receipts.verify_receipt)."""
    inc = d.get("inclusion")
    inclusion = None
    if inc is not None:
        if not isinstance(inc, dict) or not isinstance(inc.get("proof"), list):
            raise RemoteCheckError("inclusion", "must be an object with a proof array")
        proof = tuple(_bytes({"p": p}, "p", 32) for p in inc["proof"])
        for name in ("checkpointId", "treeSize"):
            if type(inc.get(name)) is not int or not 0 <= inc[name] < 2**64:
                raise RemoteCheckError(f"inclusion.{name}", "is not an integer in [0, 2^64)")
        inclusion = Inclusion(inc["checkpointId"], inc["treeSize"], _bytes(inc, "root", 32), proof)
    return ReceiptFile(
        chain_id=domain.chain_id,
        contract=domain.contract,
        provider=entry.provider,
        receipt=Receipt.from_json(d["receipt"]),
        receipt_signature=_bytes(d, "receiptSignature", 65),
        provider_signature=entry.provider_signature,
        inclusion=inclusion,
    )


def check_first_checkpoint(d: dict[str, Any], first: Any) -> list[str]:
    """The answer's firstCheckpoint (printed as when and where the entry was anchored) against the
    first checkpoint on chain covering the entry (`first`: an OnChainCheckpoint, or None)."""
    claimed = d.get("firstCheckpoint")
    if first is None:
        if claimed is not None:
            raise RemoteCheckError("firstCheckpoint", "no checkpoint on chain covers the entry")
        return []
    if not isinstance(claimed, dict):
        raise RemoteCheckError(
            "firstCheckpoint", f"missing, but checkpoint {first.id} on chain covers the entry"
        )
    said = (claimed.get("checkpointId"), claimed.get("treeSize"), claimed.get("anchoredAt"))
    if said != (first.id, first.size, first.timestamp):
        raise RemoteCheckError(
            "firstCheckpoint",
            f"says checkpoint {said[0]} of size {said[1]} at {said[2]}; the chain's first covering the entry "
            f"is {first.id} of size {first.size} at {first.timestamp}",
        )
    return [f"first anchored in checkpoint {first.id} (size {first.size}) as the chain has it"]


def check_disputes(d: dict[str, Any], latest_on_chain: int, chain: dict[int, ChainDispute]) -> list[str]:
    """The answer's disputes against the chain's: each is on chain against this entry with the same
    challenger and outcome, and the chain's latest dispute of the entry (`latest_on_chain`, 0: none) is
    listed. `chain` holds the chain's view of every dispute the answer lists, and of the latest."""
    listed = d.get("disputes")
    if not isinstance(listed, list):
        raise RemoteCheckError("disputes", "must be an array")
    ids = []
    for n, disp in enumerate(listed):
        field = f"disputes[{n}]"
        if not isinstance(disp, dict) or type(disp.get("disputeId")) is not int:
            raise RemoteCheckError(f"{field}.disputeId", "is not an integer")
        on_chain = chain.get(disp["disputeId"])
        if on_chain is None or on_chain.leaf_index != d["logIndex"]:
            raise RemoteCheckError(
                f"{field}.disputeId", f"dispute {disp['disputeId']} is not against this entry on chain"
            )
        if disp.get("challenger") != on_chain.challenger:
            raise RemoteCheckError(f"{field}.challenger", f"the chain says {on_chain.challenger}")
        if disp.get("outcome") != on_chain.outcome:
            raise RemoteCheckError(
                f"{field}.outcome", f"{disp.get('outcome')!r}; the chain says {on_chain.outcome!r}"
            )
        ids.append(disp["disputeId"])
    if latest_on_chain and latest_on_chain not in ids:
        raise RemoteCheckError(
            "disputes",
            f"leaves out dispute {latest_on_chain}, which the chain has against entry {d['logIndex']}",
        )
    return [f"dispute {i}: on chain against this entry, outcome {chain[i].outcome}" for i in ids]
