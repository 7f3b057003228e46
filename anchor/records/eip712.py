"""Fast EIP-712 digests, signing and recovery for the two fixed message types of the log.

`anchor.signing` builds typed data through eth_account (about 0.25 ms per message): fine for a provider,
too slow for a recorder that checks a signature and signs a receipt for every record at 10^4 records/s.
Here the domain separator is computed once and a message digest is two keccaks; tests check both digests
against eth_account's `encode_typed_data`. Recovery and signing call libsecp256k1 (coincurve) directly
when it is installed, and eth_keys (pure Python, ~10 ms per recovery) otherwise; Keccak-256 comes from
safe-pysha3 when it is installed (the recorder computes five per record).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import to_canonical_address, to_checksum_address

from anchor.errors import VerificationError
from anchor.signing import DOMAIN_NAME, DOMAIN_VERSION, RECORD_TYPE_STRING

try:  # libsecp256k1 (coincurve), if installed: ~4x faster than eth_keys' pure Python fallback
    import coincurve
except ImportError:  # pragma: no cover - depends on the environment
    coincurve = None

try:  # safe-pysha3's C Keccak-256: ~1 us a hash, where eth_hash's pycryptodome backend takes ~8 us
    from sha3 import keccak_256

    def keccak(data: bytes) -> bytes:
        return bytes(keccak_256(data).digest())

except ImportError:  # pragma: no cover - depends on the environment
    from eth_hash.auto import keccak

DOMAIN_TYPE_STRING = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
RECEIPT_TYPE_STRING = (
    "Receipt(uint64 logIndex,bytes32 recordDigest,uint64 timestamp,uint64 maximumMergeDelay)"
)


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain of one deployment: {name "toploc-audit", version "1", chainId, contract}."""

    chain_id: int
    contract: str
    separator: bytes

    @classmethod
    def of(cls, chain_id: int, contract: str) -> Domain:
        separator = keccak(
            keccak(DOMAIN_TYPE_STRING.encode())
            + keccak(DOMAIN_NAME.encode())
            + keccak(DOMAIN_VERSION.encode())
            + chain_id.to_bytes(32, "big")
            + to_canonical_address(contract).rjust(32, b"\0")
        )
        return cls(chain_id, to_checksum_address(contract), separator)

    def digest(self, struct_hash: bytes) -> bytes:
        """keccak256(0x1901 || domainSeparator || hashStruct(message))."""
        return keccak(b"\x19\x01" + self.separator + struct_hash)

    def record_digest(self, record_digest: bytes) -> bytes:
        """The digest a provider signs for InferenceRecord(bytes32 recordDigest)."""
        return self.digest(keccak(_RECORD_TYPEHASH + record_digest))

    def receipt_digest(
        self, log_index: int, record_digest: bytes, timestamp: int, max_merge_delay: int
    ) -> bytes:
        """The digest the log signs for a Receipt."""
        return self.digest(
            keccak(
                _RECEIPT_TYPEHASH
                + log_index.to_bytes(32, "big")
                + record_digest
                + timestamp.to_bytes(32, "big")
                + max_merge_delay.to_bytes(32, "big")
            )
        )


_RECORD_TYPEHASH = keccak(RECORD_TYPE_STRING.encode())
_RECEIPT_TYPEHASH = keccak(RECEIPT_TYPE_STRING.encode())


@functools.lru_cache(maxsize=64)
def _coincurve_key(secret: bytes) -> Any:
    return coincurve.PrivateKey(secret)


def sign_digest(private_key: keys.PrivateKey, digest: bytes) -> bytes:
    """A 65-byte r || s || v signature (v = 27 or 28, as ecrecover and eth_account expect)."""
    if coincurve is not None:  # RFC 6979 like eth_keys: the same bytes, 3x faster without its wrappers
        sig = _coincurve_key(private_key.to_bytes()).sign_recoverable(digest, hasher=None)
        return sig[:64] + bytes([sig[64] + 27])
    s = private_key.sign_msg_hash(digest)
    return s.r.to_bytes(32, "big") + s.s.to_bytes(32, "big") + bytes([s.v + 27])


SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The order of secp256k1; `s` above half of it is refused, as by the contracts' ECDSA (EIP-2)."""


def recover_address(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address that signed `digest`; VerificationError for a malformed signature.

    Only the low-s form is accepted, as on chain: its malleable twin (s -> n - s) recovers the same
    address, and a record logged with it could never be disputed."""
    if len(signature) != 65:
        raise VerificationError(f"signature has {len(signature)} bytes, want 65")
    v = signature[64]
    if v not in (27, 28):
        raise VerificationError(f"signature v is {v}, want 27 or 28")
    if int.from_bytes(signature[32:64], "big") > SECP256K1_N // 2:
        raise VerificationError(
            "signature s is above secp256k1n / 2 (high-s, malleable), want the low-s form"
        )
    try:
        if coincurve is not None:
            public = coincurve.PublicKey.from_signature_and_message(
                signature[:64] + bytes([v - 27]), digest, hasher=None
            ).format(compressed=False)
            return bytes(keccak(public[1:])[12:])
        sig = keys.Signature(signature_bytes=signature[:64] + bytes([v - 27]))
        return bytes(sig.recover_public_key_from_msg_hash(digest).to_canonical_address())
    except (BadSignature, ValidationError, ValueError, Exception) as exc:
        raise VerificationError(f"signature does not recover: {exc}") from exc


def recover_signer(digest: bytes, signature: bytes) -> str:
    """The checksummed address that signed `digest`; VerificationError for a malformed signature."""
    return str(to_checksum_address(recover_address(digest, signature)))
