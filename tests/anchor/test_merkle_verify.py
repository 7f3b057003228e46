"""RFC 9162 proof verification against the shared transparency-dev vectors and the reference tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anchor.merkle import ProofError, RootMismatchError, sha256_hasher, verify_consistency, verify_inclusion
from anchor.merkle import reference as ref
from tests.anchor.rfc9162_vectors import consistency_vectors, inclusion_vectors

H = sha256_hasher


@pytest.mark.parametrize("v", inclusion_vectors(), ids=lambda v: v.name)
def test_inclusion_vectors(v) -> None:
    if v.want_err:
        with pytest.raises(ProofError):
            verify_inclusion(H, v.index, v.size, v.leaf_hash, v.proof, v.root)
    else:
        verify_inclusion(H, v.index, v.size, v.leaf_hash, v.proof, v.root)


@pytest.mark.parametrize("v", consistency_vectors(), ids=lambda v: v.name)
def test_consistency_vectors(v) -> None:
    if v.want_err:
        with pytest.raises(ProofError):
            verify_consistency(H, v.size1, v.size2, v.proof, v.root1, v.root2)
    else:
        verify_consistency(H, v.size1, v.size2, v.proof, v.root1, v.root2)


def test_known_answers() -> None:
    # RFC 9162 empty tree and one-leaf tree of the empty string.
    assert H.empty_root().hex() == hashlib.sha256(b"").hexdigest()
    assert H.hash_leaf(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    left, right = b"\x00" * 32, b"\x01" * 32
    assert H.hash_children(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


def test_mismatch_error_names_both_roots() -> None:
    leaves = [H.hash_leaf(bytes([i])) for i in range(5)]
    proof = ref.inclusion_proof(H, 2, leaves)
    wrong = b"\x42" * 32
    with pytest.raises(RootMismatchError) as err:
        verify_inclusion(H, 2, 5, leaves[2], proof, wrong)
    assert err.value.want == wrong
    assert err.value.got == ref.root(H, leaves)
    assert "got " in str(err.value) and "want 4242" in str(err.value)


@given(st.integers(1, 70).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(1, n))))
def test_reference_proofs_verify(args: tuple[int, int, int]) -> None:
    n, index, size1 = args
    leaves = [H.hash_leaf(i.to_bytes(4, "big")) for i in range(n)]
    root_n = ref.root(H, leaves)
    verify_inclusion(H, index, n, leaves[index], ref.inclusion_proof(H, index, leaves), root_n)
    proof = ref.consistency_proof(H, size1, leaves)
    verify_consistency(H, size1, n, proof, ref.root(H, leaves[:size1]), root_n)
    if proof:
        bad = [bytes(32), *proof[1:]]
        with pytest.raises(ProofError):
            verify_consistency(H, size1, n, bad, ref.root(H, leaves[:size1]), root_n)
