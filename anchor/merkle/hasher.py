"""The RFC 9162 section 2.1.1 hasher: SHA-256 with a 0x00 leaf prefix and a 0x01 node prefix.

Mirrors transparency-dev/merkle rfc6962/rfc6962.go (commit 417fb0c). The prefixes keep a leaf from
being passed off as an interior node (second-preimage resistance).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


@dataclass(frozen=True)
class Hasher:
    """Hashes leaves and interior nodes of an RFC 9162 tree."""

    def empty_root(self) -> bytes:
        """The root of the empty tree: SHA-256 of the empty string."""
        return hashlib.sha256(b"").digest()

    def hash_leaf(self, data: bytes) -> bytes:
        return hashlib.sha256(LEAF_PREFIX + data).digest()

    def hash_children(self, left: bytes, right: bytes) -> bytes:
        return hashlib.sha256(NODE_PREFIX + left + right).digest()

    @property
    def size(self) -> int:
        return HASH_SIZE


sha256_hasher = Hasher()
