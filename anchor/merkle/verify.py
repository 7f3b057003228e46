"""Inclusion and consistency proof verification for RFC 9162 trees (section 2.1.3 and 2.1.4).

A port of transparency-dev/merkle proof/verify.go (commit 417fb0c), which the shared vectors come
from. Pure functions: bytes and ints in, a root or a ProofError out. Conventions kept from it: every
hash is exactly 32 bytes, a consistency proof from size 0 is an error (a log's first checkpoint is its
own case), equal sizes need an empty proof and equal roots.
"""

from __future__ import annotations

from collections.abc import Sequence

from anchor.errors import VerificationError
from anchor.merkle.hasher import Hasher


class ProofError(VerificationError):
    """A proof is malformed or does not lead to the expected root."""


class RootMismatchError(ProofError):
    """The recomputed root differs from the expected one; keeps both."""

    def __init__(self, got: bytes, want: bytes) -> None:
        super().__init__(f"root mismatch: got {got.hex()}, want {want.hex()}")
        self.got = got
        self.want = want


def _check_hash(hasher: Hasher, name: str, value: bytes) -> None:
    if len(value) != hasher.size:
        raise ProofError(f"{name} has {len(value)} bytes, want {hasher.size}")


def _inner_proof_size(index: int, size: int) -> int:
    return (index ^ (size - 1)).bit_length()


def _decomp_incl_proof(index: int, size: int) -> tuple[int, int]:
    """Split an inclusion proof's length into the inner part and the right-border part."""
    inner = _inner_proof_size(index, size)
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(hasher: Hasher, seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = hasher.hash_children(seed, h) if (index >> i) & 1 == 0 else hasher.hash_children(h, seed)
    return seed


def _chain_inner_right(hasher: Hasher, seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = hasher.hash_children(h, seed)
    return seed


def _chain_border_right(hasher: Hasher, seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = hasher.hash_children(h, seed)
    return seed


def root_from_inclusion_proof(
    hasher: Hasher, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """Recompute the root of a tree of `size` leaves from the leaf at `index` and its audit path.

    Requires 0 <= index < size, a 32-byte leaf hash and 32-byte proof nodes of the exact length the
    tree shape implies; anything else raises ProofError.
    """
    if index < 0 or size < 0:
        raise ProofError(f"index {index} and size {size} must be non-negative")
    if index >= size:
        raise ProofError(f"index {index} is beyond the tree of size {size}")
    _check_hash(hasher, "leaf hash", leaf_hash)
    for i, node in enumerate(proof):
        _check_hash(hasher, f"proof[{i}]", node)
    inner, border = _decomp_incl_proof(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"wrong proof size {len(proof)}, want {inner + border}")
    res = _chain_inner(hasher, leaf_hash, proof[:inner], index)
    return _chain_border_right(hasher, res, proof[inner:])


def verify_inclusion(
    hasher: Hasher, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf_hash` is the leaf at `index` of the tree of `size` leaves with `root`."""
    _check_hash(hasher, "root", root)
    got = root_from_inclusion_proof(hasher, index, size, leaf_hash, proof)
    if got != root:
        raise RootMismatchError(got, root)


def verify_consistency(
    hasher: Hasher, size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of `size2` leaves with `root2` extends the one of `size1` with `root1`.

    Requires 0 < size1 <= size2; equal sizes need an empty proof and equal roots; otherwise 32-byte
    roots and proof nodes. Raises ProofError (RootMismatchError when a recomputed root differs).
    """
    if size1 <= 0:
        raise ProofError(f"size1 is {size1}: a consistency proof needs a non-empty first tree")
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) < size1 ({size1})")
    if size1 == size2:
        if proof:
            raise ProofError(f"size1 = size2 = {size1}, but the proof has {len(proof)} nodes, want 0")
        if root1 != root2:
            raise RootMismatchError(root2, root1)
        return
    if not proof:
        raise ProofError("empty proof")
    # Equal sizes compare the roots as given (the vectors accept any equal byte strings there);
    # from here on they are hashed against, so they must be real hashes.
    _check_hash(hasher, "root1", root1)
    _check_hash(hasher, "root2", root2)
    for i, node in enumerate(proof):
        _check_hash(hasher, f"proof[{i}]", node)

    inner, border = _decomp_incl_proof(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zeros of size1
    inner -= shift  # the proof starts at level `shift`: the subtree of 2^shift leaves is a unit

    # The proof begins with the root of that subtree, unless size1 is itself 2^shift.
    seed, start = proof[0], 1
    if size1 == 1 << shift:
        seed, start = root1, 0
    if len(proof) != start + inner + border:
        raise ProofError(f"wrong proof size {len(proof)}, want {start + inner + border}")
    rest = proof[start:]

    mask = (size1 - 1) >> shift
    hash1 = _chain_inner_right(hasher, seed, rest[:inner], mask)
    hash1 = _chain_border_right(hasher, hash1, rest[inner:])
    if hash1 != root1:
        raise RootMismatchError(hash1, root1)
    hash2 = _chain_inner(hasher, seed, rest[:inner], mask)
    hash2 = _chain_border_right(hasher, hash2, rest[inner:])
    if hash2 != root2:
        raise RootMismatchError(hash2, root2)
