"""The log's leaf for a record: leaf input = provider (20 bytes) || recordDigest (32 bytes).

The leaf hash is the RFC 9162 leaf hash of that input, SHA-256(0x00 || provider || recordDigest), so the
contract can rebuild it from the two values a dispute names.
"""

from __future__ import annotations

from eth_utils import to_canonical_address

from anchor.errors import VerificationError
from anchor.merkle.hasher import sha256_hasher


def leaf_input(provider: str | bytes, record_digest: bytes) -> bytes:
    """Requires a 20-byte (or hex) provider address and a 32-byte digest."""
    addr = provider if isinstance(provider, bytes) else to_canonical_address(provider)
    if len(addr) != 20:
        raise VerificationError(f"provider has {len(addr)} bytes, want 20")
    if len(record_digest) != 32:
        raise VerificationError(f"recordDigest has {len(record_digest)} bytes, want 32")
    return addr + record_digest


def leaf_hash(provider: str | bytes, record_digest: bytes) -> bytes:
    return sha256_hasher.hash_leaf(leaf_input(provider, record_digest))
