"""Differential: random trees and proofs, honest and mutated, judged by the Python verifier
(anchor/merkle/verify.py) and by the contract; both must give the same answer every time."""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anchor.merkle import ProofError, sha256_hasher, verify_consistency, verify_inclusion
from anchor.merkle import reference as ref
from tests.fixtures.chain import AuditChain

H = sha256_hasher
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _leaves(n: int, salt: int) -> list[bytes]:
    return [H.hash_leaf(hashlib.sha256(f"{salt}:{i}".encode()).digest()) for i in range(n)]


def _python_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    try:
        verify_inclusion(H, index, size, leaf, proof, root)
        return True
    except ProofError:
        return False


def _python_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]) -> bool:
    try:
        verify_consistency(H, size1, size2, proof, root1, root2)
        return True
    except ProofError:
        return False


# A mutation: (kind, position, bit). Kinds change one thing about an honest proof or claim.
MUTATIONS = st.tuples(
    st.sampled_from(["none", "flip", "drop", "extra", "swap", "index", "size", "root"]),
    st.integers(0, 63),
    st.integers(0, 255),
)


def _mutate_proof(proof: list[bytes], kind: str, pos: int, bit: int) -> list[bytes]:
    proof = list(proof)
    if kind == "flip" and proof:
        i = pos % len(proof)
        node = bytearray(proof[i])
        node[bit // 8] ^= 1 << (bit % 8)
        proof[i] = bytes(node)
    elif kind == "drop" and proof:
        del proof[pos % len(proof)]
    elif kind == "extra":
        proof.insert(pos % (len(proof) + 1), hashlib.sha256(bytes([bit])).digest())
    elif kind == "swap" and len(proof) >= 2:
        i = pos % (len(proof) - 1)
        proof[i], proof[i + 1] = proof[i + 1], proof[i]
    return proof


@SETTINGS
@given(st.integers(1, 90), st.data(), MUTATIONS, st.integers(0, 2**16))
def test_inclusion_matches_python(
    audit: AuditChain, n: int, data: st.DataObject, mutation, salt: int
) -> None:  # type: ignore[no-untyped-def]
    leaves = _leaves(n, salt)
    index = data.draw(st.integers(0, n - 1))
    root = ref.root(H, leaves)
    kind, pos, bit = mutation
    proof = _mutate_proof(ref.inclusion_proof(H, index, leaves), kind, pos, bit)
    size = n + (pos % 5) - 2 if kind == "size" else n
    index = (index + 1 + pos) % (n + 2) if kind == "index" else index
    if kind == "root":
        root = leaves[pos % n]
    size = max(size, 0)
    want = _python_inclusion(index, size, leaves[min(index, n - 1)], proof, root)
    got = audit.client().verify_inclusion_proof(index, size, leaves[min(index, n - 1)], proof, root)
    assert got == want
    if kind == "none":
        assert got is True


@SETTINGS
@given(st.integers(1, 90), st.data(), MUTATIONS, st.integers(0, 2**16))
def test_consistency_matches_python(
    audit: AuditChain, n: int, data: st.DataObject, mutation, salt: int
) -> None:  # type: ignore[no-untyped-def]
    leaves = _leaves(n, salt)
    size1 = data.draw(st.integers(1, n))
    root1, root2 = ref.root(H, leaves[:size1]), ref.root(H, leaves)
    kind, pos, bit = mutation
    proof = _mutate_proof(ref.consistency_proof(H, size1, leaves), kind, pos, bit)
    size2 = n
    if kind == "size":
        size2 = max(0, n + (pos % 5) - 2)
    elif kind == "index":
        size1 = (size1 + 1 + pos) % (n + 2)
    elif kind == "root":
        root1, root2 = root2, root1
    want = _python_consistency(size1, size2, root1, root2, proof)
    got = audit.client().verify_consistency_proof(size1, size2, root1, root2, proof)
    assert got == want
    if kind == "none":
        assert got is True
