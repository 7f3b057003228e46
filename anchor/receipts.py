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
from eth_utils import is_hex_address, keccak, to_checksum_address

from anchor.errors import InputError, VerificationError
from anchor.leaf import leaf_hash
from anchor.merkle import root_from_inclusion_proof, sha256_hasher
from anchor.records.eip712 import Domain, recover_signer, sign_digest

if TYPE_CHECKING:  # the chain reader (web3) is imported only where the chain is fetched
    from anchor.anchoring.chain import OnChainCheckpoint

FILE_FORMAT = "toploc-audit-receipt/2"
FORMATS = ("toploc-audit-receipt/1", FILE_FORMAT)
"""Version 2 adds the proof bundle (entry, checkpoint note and key, anchor transaction); 1 still loads."""
ANCHOR_SELECTOR = keccak(text="anchor(uint64,bytes32,bytes32[])")[:4]


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
            record_digest=hex_field(o.get("recordDigest"), f"{field}.recordDigest", 32),
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
class AnchorTx:
    """The transaction that anchored the inclusion proof's checkpoint, as the operator signed it."""

    tx_hash: bytes
    block_number: int
    block_hash: bytes
    raw: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "txHash": "0x" + self.tx_hash.hex(),
            "blockNumber": self.block_number,
            "blockHash": "0x" + self.block_hash.hex(),
            "rawTransaction": "0x" + self.raw.hex(),
        }


@dataclass(frozen=True)
class ReceiptFile:
    """Everything `verify-receipt` needs: with the chain as the only other input, or (a proof bundle:
    the entry, the checkpoint note and the anchor transaction) with none at all."""

    chain_id: int
    contract: str
    provider: str
    receipt: Receipt
    receipt_signature: bytes
    provider_signature: bytes
    inclusion: Inclusion | None
    record: dict[str, Any] | None = None
    """The entry: the record's JSON (its RFC 8785 bytes hash to the receipt's recordDigest)."""
    checkpoint_note: str | None = None
    """The inclusion proof's checkpoint as the log's C2SP signed note."""
    checkpoint_key: str | None = None
    """The note's verifier key (vkey format), as the log publishes it."""
    anchor: AnchorTx | None = None

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
            "record": self.record,
            "checkpointNote": self.checkpoint_note,
            "checkpointKey": self.checkpoint_key,
            "anchor": None if self.anchor is None else self.anchor.to_json(),
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
        if o.get("format") not in FORMATS:
            raise InputError("format", f"is {o.get('format')!r}, want one of {', '.join(FORMATS)}")
        inclusion = None
        if o.get("inclusion") is not None:
            i = _object(o["inclusion"], "inclusion")
            proof = i.get("proof")
            if not isinstance(proof, list):
                raise InputError("inclusion.proof", "must be an array of 32-byte hex strings")
            inclusion = Inclusion(
                checkpoint_id=_uint64(i.get("checkpointId"), "inclusion.checkpointId"),
                tree_size=_uint64(i.get("treeSize"), "inclusion.treeSize"),
                root=hex_field(i.get("root"), "inclusion.root", 32),
                proof=tuple(hex_field(p, f"inclusion.proof[{n}]", 32) for n, p in enumerate(proof)),
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
            receipt_signature=hex_field(o.get("receiptSignature"), "receiptSignature", 65),
            provider_signature=hex_field(o.get("providerSignature"), "providerSignature", 65),
            inclusion=inclusion,
            record=None if o.get("record") is None else _object(o["record"], "record"),
            checkpoint_note=_optional_str(o.get("checkpointNote"), "checkpointNote"),
            checkpoint_key=_optional_str(o.get("checkpointKey"), "checkpointKey"),
            anchor=None if o.get("anchor") is None else _anchor_tx(o["anchor"]),
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
    anchor_block: tuple[int, bytes] | None = None
    """(block number, block hash) of the file's anchor transaction's successful receipt, if mined."""


class ReceiptError(VerificationError):
    """One step of receipt verification failed: `step` names it, `field` the part of the file it
    comes from; `passed` holds the steps that passed before it."""

    def __init__(self, step: str, field: str, reason: str, passed: Sequence[str] = ()) -> None:
        super().__init__(f"{step} ({field}): {reason}")
        self.step, self.field, self.reason, self.passed = step, field, reason, tuple(passed)


@dataclass(frozen=True)
class Pins:
    """What an offline check trusts from outside the file (the deployment file the log publishes);
    None: the file's own word, which proves only that its parts agree with each other."""

    operator: str | None = None
    receipt_signer: str | None = None
    checkpoint_key: str | None = None


@dataclass(frozen=True)
class AnchorCall:
    """What a signed anchor transaction says, decoded without a node."""

    chain_id: int
    to: str
    sender: str
    size: int
    root: bytes


def decode_anchor_tx(raw: bytes) -> AnchorCall:
    """Decode an EIP-1559 anchor(uint64,bytes32,bytes32[]) transaction and recover its sender;
    VerificationError if it is anything else."""
    import rlp
    from eth_abi import decode
    from eth_account import Account

    if raw[:1] != b"\x02":
        raise VerificationError("not an EIP-1559 (type 2) transaction")
    try:
        fields = rlp.decode(raw[1:])
        chain_id, to, data = int.from_bytes(fields[0], "big"), bytes(fields[5]), bytes(fields[7])
        if len(to) != 20 or data[:4] != ANCHOR_SELECTOR:
            raise VerificationError("not a call of anchor(uint64,bytes32,bytes32[])")
        size, root, _ = decode(["uint64", "bytes32", "bytes32[]"], data[4:])
        sender = Account.recover_transaction(raw)
    except VerificationError:
        raise
    except Exception as exc:  # rlp, eth_abi and eth_account each raise their own kinds
        raise VerificationError(f"undecodable transaction: {type(exc).__name__}: {exc}") from None
    return AnchorCall(chain_id, to_checksum_address(to), to_checksum_address(sender), int(size), bytes(root))


class _Steps:
    """The steps passed so far, and the error of the one that failed (it carries them)."""

    def __init__(self) -> None:
        self.passed: list[str] = []

    def ok(self, line: str) -> None:
        self.passed.append(line)

    def fail(self, step: str, field: str, reason: str) -> ReceiptError:
        return ReceiptError(step, field, reason, self.passed)

    def signer(self, step: str, field: str, digest: bytes, signature: bytes) -> str:
        try:
            return recover_signer(digest, signature)
        except VerificationError as exc:
            raise self.fail(step, field, str(exc)) from None


def _signatures(rf: ReceiptFile, receipt_signer: str | None, steps: _Steps) -> str:
    """The receipt's signer (checked against `receipt_signer` when known) and the provider's signature."""
    r, domain = rf.receipt, rf.domain()
    signer = steps.signer("receipt signature", "receiptSignature", r.digest(domain), rf.receipt_signature)
    if receipt_signer is not None and signer != receipt_signer:
        raise steps.fail(
            "receipt signature",
            "receiptSignature",
            f"receipt signed by {signer}, but the contract's receiptSigner is {receipt_signer}",
        )
    whose = "the receipt signer" if receipt_signer is not None else "(the file's word: unpinned)"
    steps.ok(f"receipt for log index {r.log_index} signed by {whose} {signer}")
    provider_digest = domain.record_digest(r.record_digest)
    provider_signer = steps.signer(
        "provider signature", "providerSignature", provider_digest, rf.provider_signature
    )
    if provider_signer != rf.provider:
        raise steps.fail(
            "provider signature",
            "providerSignature",
            f"signed by {provider_signer}, want the provider {rf.provider}",
        )
    steps.ok(f"provider {rf.provider} signed recordDigest 0x{r.record_digest.hex()}")
    return signer


def _inclusion_root(rf: ReceiptFile, steps: _Steps) -> tuple[Inclusion, bytes]:
    inc = rf.inclusion
    if inc is None:
        raise steps.fail(
            "inclusion proof", "inclusion", "none: the entry was not anchored when the file was made"
        )
    try:
        root = root_from_inclusion_proof(
            sha256_hasher, rf.receipt.log_index, inc.tree_size, rf.leaf_hash(), inc.proof
        )
    except VerificationError as exc:
        raise steps.fail("inclusion proof", "inclusion.proof", str(exc)) from None
    if root != inc.root:
        raise steps.fail(
            "inclusion proof",
            "inclusion.proof",
            f"inclusion proof leads to root {root.hex()}, want the file's {inc.root.hex()}",
        )
    steps.ok(f"inclusion proof leads to root 0x{root.hex()} (tree size {inc.tree_size})")
    return inc, root


def verify_receipt(rf: ReceiptFile, chain: ChainView) -> list[str]:
    """Checks a receipt file against what the chain says, in order; returns one line per passed step.

    1. chain: the node is on the chain the file names (else every signature would seem wrong);
    2. receipt signature: by the contract's receiptSigner, in the file's domain;
    3. provider signature: the provider signed the recordDigest in that domain;
    4. inclusion proof: it leads from leaf(provider, recordDigest) to the file's root;
    5. checkpoint: the chain holds that (size, root) under the id named, and its contract verifies;
    6. anchor transaction (a proof bundle): mined, successful, in the block the file names;
    7. merge delay: the entry was first anchored within the receipt's maximum merge delay.
    """
    steps = _Steps()
    r = rf.receipt
    if chain.chain_id != rf.chain_id:
        raise steps.fail(
            "chain", "chainId", f"the node is on chain {chain.chain_id}, the file names {rf.chain_id}"
        )
    steps.ok(f"chain {rf.chain_id}, contract {rf.contract}")
    _signatures(rf, chain.receipt_signer, steps)
    inc, root = _inclusion_root(rf, steps)
    cp = chain.checkpoint
    if cp is None:
        raise steps.fail(
            "checkpoint",
            "inclusion.checkpointId",
            f"checkpoint {inc.checkpoint_id} is not on chain (it has {chain.checkpoint_count})",
        )
    if (cp.size, cp.root) != (inc.tree_size, root):
        raise steps.fail(
            "checkpoint",
            "inclusion.root",
            f"checkpoint {cp.id} on chain is size {cp.size} root 0x{cp.root.hex()}, "
            f"the proof gives size {inc.tree_size} root 0x{root.hex()}",
        )
    if chain.contract_verifies is not True:
        raise steps.fail(
            "checkpoint", "inclusion.proof", f"the contract's verifyInclusion rejects it ({cp.id})"
        )
    steps.ok(f"checkpoint {cp.id} on chain holds that root; the contract verifies the inclusion")
    if rf.anchor is not None:
        mined = chain.anchor_block
        if mined is None:
            raise steps.fail(
                "anchor transaction",
                "anchor.txHash",
                f"0x{rf.anchor.tx_hash.hex()} is not mined on this chain",
            )
        if mined != (rf.anchor.block_number, rf.anchor.block_hash):
            raise steps.fail(
                "anchor transaction",
                "anchor.blockHash",
                f"mined in block {mined[0]} (0x{mined[1].hex()}), the file names block "
                f"{rf.anchor.block_number} (0x{rf.anchor.block_hash.hex()})",
            )
        steps.ok(f"anchor transaction 0x{rf.anchor.tx_hash.hex()} mined in block {mined[0]}")
    first = chain.first_covering
    if first is None:
        raise steps.fail("merge delay", "receipt.logIndex", "no checkpoint on chain covers the entry")
    deadline = r.timestamp + r.max_merge_delay
    if first.timestamp > deadline:
        raise steps.fail(
            "merge delay",
            "receipt.timestamp",
            f"entry first anchored in checkpoint {first.id} at {first.timestamp}, after the promised "
            f"{deadline} (receipt time {r.timestamp} + maximum merge delay {r.max_merge_delay}): "
            "evidence against the log",
        )
    steps.ok(f"first anchored in checkpoint {first.id} at {first.timestamp}, within the merge delay")
    return steps.passed


def check_entry(rf: ReceiptFile, steps: _Steps | None = None) -> list[str]:
    """The bundle's entry: a valid record whose RFC 8785 bytes hash to the receipt's recordDigest, of the
    file's provider (ReceiptError at step "entry" otherwise)."""
    from anchor.records.record import Record

    steps = steps or _Steps()
    r = rf.receipt
    if rf.record is None:
        raise steps.fail("entry", "record", "none: not a proof bundle (`toploc-audit receipt -o` writes one)")
    try:
        record = Record.from_json(rf.record, "record")
    except InputError as exc:
        raise steps.fail("entry", exc.field, exc.reason) from None
    if record.digest() != r.record_digest:
        raise steps.fail(
            "entry",
            "record",
            f"hashes to 0x{record.digest().hex()}, the receipt's recordDigest is 0x{r.record_digest.hex()}",
        )
    if to_checksum_address(record.provider) != rf.provider:
        raise steps.fail(
            "entry", "record.provider", f"is {record.provider}, the file's provider {rf.provider}"
        )
    steps.ok(f"entry: the record hashes to recordDigest 0x{r.record_digest.hex()}")
    return steps.passed


def verify_offline(rf: ReceiptFile, pins: Pins = Pins()) -> list[str]:
    """Checks a proof bundle with no service at all, in order; returns one line per passed step.

    1. entry: the record is valid and its RFC 8785 bytes hash to the receipt's recordDigest;
    2. receipt and provider signatures (the receipt's against the pinned receipt signer, when pinned);
    3. inclusion proof: from leaf(provider, recordDigest) to the file's root;
    4. checkpoint note: signed by the log's note key (pinned, or the file's), for this log's origin,
       with the proof's (size, root);
    5. anchor transaction: its hash, chain, contract and anchor(size, root) call, signed by the
       operator (when pinned; unpinned, whoever signed it is reported).
    What needs the chain (the transaction mined, the merge delay) is `verify_receipt`'s.
    """
    from anchor.transparency.checkpoint import log_origin, open_checkpoint
    from anchor.transparency.note import VerifierKey

    steps = _Steps()
    check_entry(rf, steps)
    _signatures(rf, pins.receipt_signer, steps)
    inc, root = _inclusion_root(rf, steps)
    if rf.checkpoint_note is None:
        raise steps.fail("checkpoint note", "checkpointNote", "none in the file")
    key_text = pins.checkpoint_key or rf.checkpoint_key
    if key_text is None:
        raise steps.fail("checkpoint note", "checkpointKey", "no verifier key, pinned or in the file")
    origin = log_origin(rf.chain_id, rf.contract)
    try:
        note = open_checkpoint(rf.checkpoint_note, VerifierKey.parse(key_text), origin)
    except (InputError, VerificationError) as exc:
        raise steps.fail("checkpoint note", "checkpointNote", str(exc)) from None
    if (note.size, note.root) != (inc.tree_size, root):
        raise steps.fail(
            "checkpoint note",
            "checkpointNote",
            f"the note is size {note.size} root 0x{note.root.hex()}, the proof gives size {inc.tree_size}",
        )
    whose = "the pinned" if pins.checkpoint_key else "the file's (unpinned)"
    steps.ok(f"checkpoint note for {origin}, size {note.size}, signed by {whose} key")
    a = rf.anchor
    if a is None:
        raise steps.fail("anchor transaction", "anchor", "none in the file")
    if keccak(a.raw) != a.tx_hash:
        raise steps.fail("anchor transaction", "anchor.txHash", "is not the hash of anchor.rawTransaction")
    try:
        call = decode_anchor_tx(a.raw)
    except VerificationError as exc:
        raise steps.fail("anchor transaction", "anchor.rawTransaction", str(exc)) from None
    operator = pins.operator or call.sender
    for field, got, want in (
        ("anchor.rawTransaction", call.chain_id, rf.chain_id),
        ("anchor.rawTransaction", call.to, rf.contract),
        ("anchor.rawTransaction", (call.size, call.root), (inc.tree_size, root)),
        ("anchor.rawTransaction", call.sender, operator),
    ):
        if got != want:
            raise steps.fail("anchor transaction", field, f"says {got!r}, want {want!r}")
    by = f"the operator {operator}" if pins.operator else f"{operator} (the file's word: unpinned)"
    steps.ok(f"anchor transaction 0x{a.tx_hash.hex()} by {by} anchors (size {call.size}, that root)")
    return steps.passed


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
    anchor_block = None
    if rf.anchor is not None:
        mined = chain.receipt(rf.anchor.tx_hash)
        if mined is not None and mined["status"] == 1:
            anchor_block = (int(mined["blockNumber"]), bytes(mined["blockHash"]))
    return ChainView(
        chain_id=chain.chain_id,
        receipt_signer=chain.receipt_signer_address(),
        checkpoint_count=count,
        checkpoint=checkpoint,
        contract_verifies=verifies,
        first_covering=first,
        anchor_block=anchor_block,
    )


def _object(obj: Any, field: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise InputError(field, "must be an object")
    return obj


def _optional_str(value: Any, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InputError(field, "must be a string")
    return value


def _anchor_tx(obj: Any) -> AnchorTx:
    o = _object(obj, "anchor")
    raw = o.get("rawTransaction")
    if not isinstance(raw, str) or not raw.startswith("0x") or len(raw) > 2 + 2 * 65536:
        raise InputError("anchor.rawTransaction", "must be a 0x-prefixed hex string of at most 64 KiB")
    try:
        raw_bytes = bytes.fromhex(raw[2:])
    except ValueError:
        raise InputError("anchor.rawTransaction", "is not hex") from None
    return AnchorTx(
        tx_hash=hex_field(o.get("txHash"), "anchor.txHash", 32),
        block_number=_uint64(o.get("blockNumber"), "anchor.blockNumber"),
        block_hash=hex_field(o.get("blockHash"), "anchor.blockHash", 32),
        raw=raw_bytes,
    )


def _uint64(value: Any, field: str) -> int:
    if type(value) is not int or not 0 <= value < 2**64:
        raise InputError(field, "must be an integer in [0, 2^64)")
    return value


def hex_field(value: Any, field: str, size: int) -> bytes:
    """`value` as exactly `size` bytes from a 0x-prefixed hex string, or an InputError naming `field`."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise InputError(field, f"must be a 0x-prefixed hex string of {size} bytes")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise InputError(field, "is not hex") from None
    if len(raw) != size:
        raise InputError(field, f"has {len(raw)} bytes, want {size}")
    return raw
