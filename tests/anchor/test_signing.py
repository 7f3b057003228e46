"""EIP-712 record signatures: round trip, binding to chain and contract, malformed input."""

from __future__ import annotations

import hashlib

import pytest
from eth_account import Account

from anchor.errors import VerificationError
from anchor.leaf import leaf_hash
from anchor.signing import recover_record_signer, sign_record_digest, verify_record_signature

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DIGEST = hashlib.sha256(b"record").digest()


def test_round_trip_and_binding() -> None:
    acct = Account.create()
    sig = sign_record_digest(acct.key, DIGEST, 31337, CONTRACT)
    verify_record_signature(sig, DIGEST, 31337, CONTRACT, acct.address)
    with pytest.raises(VerificationError, match="want the provider"):
        verify_record_signature(sig, DIGEST, 1, CONTRACT, acct.address)  # another chain
    with pytest.raises(VerificationError, match="want the provider"):
        verify_record_signature(sig, hashlib.sha256(b"other").digest(), 31337, CONTRACT, acct.address)


def test_malformed_signature_is_a_verification_error() -> None:
    with pytest.raises(VerificationError, match="65"):
        recover_record_signer(b"\x00" * 64, DIGEST, 31337, CONTRACT)
    with pytest.raises(VerificationError, match="does not recover"):
        recover_record_signer(b"\x00" * 65, DIGEST, 31337, CONTRACT)


def test_leaf_hash_known_answer() -> None:
    provider = "0x" + "ab" * 20
    want = hashlib.sha256(b"\x00" + bytes.fromhex("ab" * 20) + DIGEST).digest()
    assert leaf_hash(provider, DIGEST) == want
    with pytest.raises(VerificationError, match="recordDigest has 31 bytes"):
        leaf_hash(provider, DIGEST[:31])
