"""A straightforward in-memory RFC 9162 tree (section 2.1), straight from the recursive definitions.

O(n) per call: the executable specification that tests and benchmarks compare the stored,
incremental log against, and a source of proofs for differential tests. Not for serving.
"""

from __future__ import annotations

from collections.abc import Sequence

from anchor.merkle.hasher import Hasher


def _split(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(hasher: Hasher, leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes (already hashed with the 0x00 prefix)."""
    n = len(leaves)
    if n == 0:
        return hasher.empty_root()
    if n == 1:
        return leaves[0]
    k = _split(n)
    return hasher.hash_children(root(hasher, leaves[:k]), root(hasher, leaves[k:]))


def inclusion_proof(hasher: Hasher, index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf `index`. Requires 0 <= index < len(leaves)."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"index {index} outside a tree of size {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(hasher, index, leaves[:k]), root(hasher, leaves[k:])]
    return [*inclusion_proof(hasher, index - k, leaves[k:]), root(hasher, leaves[:k])]


def consistency_proof(hasher: Hasher, size1: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]). Requires 0 < size1 <= len(leaves)."""
    n = len(leaves)
    if not 0 < size1 <= n:
        raise ValueError(f"size1 {size1} must be in [1, {n}]")
    return _subproof(hasher, size1, leaves, True)


def _subproof(hasher: Hasher, m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(hasher, leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(hasher, m, leaves[:k], complete), root(hasher, leaves[k:])]
    return [*_subproof(hasher, m - k, leaves[k:], False), root(hasher, leaves[:k])]
