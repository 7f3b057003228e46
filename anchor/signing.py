"""EIP-712 signatures over a record's digest: what a provider signs and the dispute contract checks.

Typed data (https://eips.ethereum.org/EIPS/eip-712):
    domain  = {name: "toploc-audit", version: "1", chainId, verifyingContract: the audit contract}
    message = InferenceRecord(bytes32 recordDigest)
The contract recomputes the same digest and uses ecrecover, so a signature is bound to one chain and
one deployment and cannot be replayed elsewhere.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, _hash_eip191_message, encode_typed_data
from eth_utils import to_checksum_address

from anchor.errors import VerificationError

DOMAIN_NAME = "toploc-audit"
DOMAIN_VERSION = "1"
RECORD_TYPE = "InferenceRecord"
RECORD_TYPE_STRING = "InferenceRecord(bytes32 recordDigest)"


def record_typed_data(record_digest: bytes, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """The EIP-712 typed data a provider signs for one record. Requires a 32-byte digest."""
    if len(record_digest) != 32:
        raise VerificationError(f"recordDigest has {len(record_digest)} bytes, want 32")
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            RECORD_TYPE: [{"name": "recordDigest", "type": "bytes32"}],
        },
        "primaryType": RECORD_TYPE,
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(verifying_contract),
        },
        "message": {"recordDigest": record_digest},
    }


def _signable(record_digest: bytes, chain_id: int, verifying_contract: str) -> SignableMessage:
    return encode_typed_data(full_message=record_typed_data(record_digest, chain_id, verifying_contract))


def eip712_digest(record_digest: bytes, chain_id: int, verifying_contract: str) -> bytes:
    """keccak256(0x1901 || domainSeparator || hashStruct(message)): what ecrecover sees on chain."""
    return bytes(_hash_eip191_message(_signable(record_digest, chain_id, verifying_contract)))


def sign_record_digest(
    private_key: bytes | str, record_digest: bytes, chain_id: int, verifying_contract: str
) -> bytes:
    """A 65-byte (r, s, v) signature by `private_key` over the record's typed data."""
    signed = Account.sign_message(_signable(record_digest, chain_id, verifying_contract), private_key)
    return bytes(signed.signature)


def recover_record_signer(
    signature: bytes, record_digest: bytes, chain_id: int, verifying_contract: str
) -> str:
    """The checksummed address that signed; raises VerificationError for a malformed signature."""
    if len(signature) != 65:
        raise VerificationError(f"signature has {len(signature)} bytes, want 65")
    try:
        return str(
            Account.recover_message(
                _signable(record_digest, chain_id, verifying_contract), signature=signature
            )
        )
    except Exception as exc:  # eth_keys raises several types for a bad (r, s, v)
        raise VerificationError(f"signature does not recover: {exc}") from exc


def verify_record_signature(
    signature: bytes, record_digest: bytes, chain_id: int, verifying_contract: str, provider: str
) -> None:
    """Raise VerificationError unless `provider` signed `record_digest` for this chain and contract."""
    got = recover_record_signer(signature, record_digest, chain_id, verifying_contract)
    want = to_checksum_address(provider)
    if got != want:
        raise VerificationError(f"signature is by {got}, want the provider {want}")
