"""verify_receipt, the pure half of `verify-receipt`: each tampering fails at its own step, naming the
file's field, with the steps before it passed (the chain's answers given as a ChainView; the command
and the real chain are tested in tests/anchor/test_e2e_trail.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from anchor.anchoring import OnChainCheckpoint
from anchor.leaf import leaf_hash
from anchor.merkle import reference, sha256_hasher
from anchor.receipts import (
    ChainView,
    Inclusion,
    Receipt,
    ReceiptError,
    ReceiptFile,
    verify_receipt,
)
from anchor.records.eip712 import sign_digest
from tests.anchor.factory import (
    CHAIN_ID,
    CONTRACT,
    DOMAIN,
    PROVIDER,
    PROVIDER_KEY,
    RECEIPT_KEY,
    make_record,
    other_key,
)

RECEIPT_SIGNER = RECEIPT_KEY.public_key.to_checksum_address()
TIME, DELAY = 1_000_000, 300


def _file_and_view() -> tuple[ReceiptFile, ChainView]:
    records = [make_record(f"rc-{i}") for i in range(5)]
    leaves = [leaf_hash(PROVIDER, r.digest()) for r in records]
    digest = records[2].digest()
    receipt = Receipt(2, digest, TIME, DELAY)
    root = reference.root(sha256_hasher, leaves)
    rf = ReceiptFile(
        chain_id=CHAIN_ID,
        contract=CONTRACT,
        provider=PROVIDER,
        receipt=receipt,
        receipt_signature=receipt.sign(RECEIPT_KEY, DOMAIN),
        provider_signature=sign_digest(PROVIDER_KEY, DOMAIN.record_digest(digest)),
        inclusion=Inclusion(1, 5, root, tuple(reference.inclusion_proof(sha256_hasher, 2, leaves))),
    )
    cp = OnChainCheckpoint(1, 5, root, TIME + 10)
    return rf, ChainView(CHAIN_ID, RECEIPT_SIGNER, 1, cp, True, cp)


def test_an_honest_file_passes_every_step() -> None:
    rf, view = _file_and_view()
    assert len(verify_receipt(rf, view)) == 6


def _fails(rf: ReceiptFile, view: ChainView) -> ReceiptError:
    with pytest.raises(ReceiptError) as e:
        verify_receipt(rf, view)
    return e.value


def test_each_tampering_fails_at_its_own_step_naming_the_field() -> None:
    rf, view = _file_and_view()
    inc = rf.inclusion
    assert inc is not None
    forged = rf.receipt.sign(other_key("rogue log"), DOMAIN)
    cases = [
        # A changed chain id is the chain step, not a provider-signature mismatch.
        (replace(rf, chain_id=1), view, "chain", "chainId", 0),
        (rf, replace(view, chain_id=5), "chain", "chainId", 0),
        # A forged receipt signature fails at the signature step, not three steps later.
        (replace(rf, receipt_signature=forged), view, "receipt signature", "receiptSignature", 1),
        (replace(rf, receipt_signature=b"\x00" * 65), view, "receipt signature", "receiptSignature", 1),
        (replace(rf, receipt=replace(rf.receipt, timestamp=TIME - 1)), view, "receipt signature",
         "receiptSignature", 1),
        (replace(rf, provider_signature=forged), view, "provider signature", "providerSignature", 2),
        (replace(rf, inclusion=None), view, "inclusion proof", "inclusion", 3),
        (replace(rf, inclusion=replace(inc, proof=(b"\x00" * 32, *inc.proof[1:]))), view,
         "inclusion proof", "inclusion.proof", 3),
        (replace(rf, inclusion=replace(inc, proof=inc.proof[:-1])), view, "inclusion proof",
         "inclusion.proof", 3),
        (rf, replace(view, checkpoint=None, checkpoint_count=0), "checkpoint", "inclusion.checkpointId", 4),
        (rf, replace(view, checkpoint=replace(view.checkpoint, root=b"\x01" * 32)), "checkpoint",
         "inclusion.root", 4),
        (rf, replace(view, contract_verifies=False), "checkpoint", "inclusion.proof", 4),
        (rf, replace(view, first_covering=replace(view.checkpoint, timestamp=TIME + DELAY + 1)),
         "merge delay", "receipt.timestamp", 5),
    ]  # fmt: skip
    for i, (file, chain, step, field, passed) in enumerate(cases):
        e = _fails(file, chain)
        assert (e.step, e.field, len(e.passed)) == (step, field, passed), (i, str(e))


def test_a_receipt_signed_with_the_operator_key_is_not_the_logs() -> None:
    """Only the contract's receiptSigner speaks for the log: the operator's transaction key does not."""
    rf, view = _file_and_view()
    operator_key = other_key("operator")
    operator = operator_key.public_key.to_checksum_address()
    e = _fails(replace(rf, receipt_signature=rf.receipt.sign(operator_key, DOMAIN)), view)
    assert (e.step, e.field, len(e.passed)) == ("receipt signature", "receiptSignature", 1)
    assert e.reason == f"receipt signed by {operator}, but the contract's receiptSigner is {RECEIPT_SIGNER}"
