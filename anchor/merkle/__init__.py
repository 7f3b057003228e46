"""RFC 9162 Merkle trees: hashing, proof verification (pure) and a reference in-memory tree.

Verification never touches storage: the stored, incremental log lives elsewhere and produces
proofs that these functions check.
"""

from anchor.merkle.hasher import HASH_SIZE, Hasher, sha256_hasher
from anchor.merkle.verify import (
    ProofError,
    RootMismatchError,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "HASH_SIZE",
    "Hasher",
    "ProofError",
    "RootMismatchError",
    "root_from_inclusion_proof",
    "sha256_hasher",
    "verify_consistency",
    "verify_inclusion",
]
