"""Every transparency-dev RFC 9162 vector through the Solidity verifiers of the deployed contract.

Most vectors are plain 32-byte hashes: they go to `verifyInclusionProof` / `verifyConsistencyProof`
as they are, and the contract must accept each happy path and reject each wantErr case.

Some carry hashes that are not 32 bytes (an empty, 9- or 12-byte root or leaf, an empty proof
node). A bytes32 cannot hold them, so the typed client refuses them at the ABI boundary with an
InputError naming the field, and nothing reaches the chain: that is the rejection. We also send each
of them right-padded to 32 bytes (what a careless caller would do) and check what the contract says:
the wantErr cases are rejected by the contract as well, except inclusion/single-entry/
empty-root-and-leaf, where padding turns the empty leaf and the empty root into the same zero hash,
and a one-leaf tree whose root is its leaf is a correct proof for those 32-byte values (there the
ABI-boundary refusal is the only possible rejection). The one wantErr=false vector with short hashes
(consistency/additional/sizes-are-equal-one-and-proof-is-empty: size1 == size2 == 1, empty proof,
equal 12-byte roots) is accepted padded, because equal sizes compare the roots as opaque values, as
anchor/merkle/verify.py does, and padding keeps them equal.
"""

from __future__ import annotations

import pytest

from anchor.errors import InputError
from tests.anchor.rfc9162_vectors import (
    ConsistencyVector,
    InclusionVector,
    consistency_vectors,
    inclusion_vectors,
)
from tests.fixtures.chain import AuditChain

INCLUSION = inclusion_vectors()
# Empty leaf and empty root padded to the same zero hash: a valid one-leaf tree (see above).
PADDED_BECOMES_VALID = "inclusion/single-entry/empty-root-and-leaf.json"
CONSISTENCY = consistency_vectors()


def _pad(value: bytes) -> bytes:
    return value.ljust(32, b"\x00")


def _all_32(*values: bytes) -> bool:
    return all(len(v) == 32 for v in values)


def test_vector_counts() -> None:
    # The copied folders hold 98 inclusion and 98 consistency vectors; a loader bug must not shrink them.
    assert len(INCLUSION) == 98
    assert len(CONSISTENCY) == 98
    assert sum(not v.want_err for v in INCLUSION) == 6
    assert sum(not v.want_err for v in CONSISTENCY) == 6


def test_inclusion_vectors(audit: AuditChain) -> None:
    client = audit.client()
    for v in INCLUSION:
        _check_inclusion(client, v)


def test_consistency_vectors(audit: AuditChain) -> None:
    client = audit.client()
    for v in CONSISTENCY:
        _check_consistency(client, v)


def _check_inclusion(client, v: InclusionVector) -> None:  # type: ignore[no-untyped-def]
    if _all_32(v.root, v.leaf_hash, *v.proof):
        got = client.verify_inclusion_proof(v.index, v.size, v.leaf_hash, v.proof, v.root)
        assert got is (not v.want_err), v.name
        return
    assert v.want_err, f"{v.name}: a happy path with a short hash"
    with pytest.raises(InputError) as err:
        client.verify_inclusion_proof(v.index, v.size, v.leaf_hash, v.proof, v.root)
    assert err.value.field in {"root", "leafHash"} or err.value.field.startswith("proof[")
    assert "want 32" in err.value.reason
    padded = client.verify_inclusion_proof(
        v.index, v.size, _pad(v.leaf_hash), [_pad(p) for p in v.proof], _pad(v.root)
    )
    assert padded is (v.name == PADDED_BECOMES_VALID), v.name


def _check_consistency(client, v: ConsistencyVector) -> None:  # type: ignore[no-untyped-def]
    if _all_32(v.root1, v.root2, *v.proof):
        got = client.verify_consistency_proof(v.size1, v.size2, v.root1, v.root2, v.proof)
        assert got is (not v.want_err), v.name
        return
    with pytest.raises(InputError) as err:
        client.verify_consistency_proof(v.size1, v.size2, v.root1, v.root2, v.proof)
    assert err.value.field in {"root1", "root2"} or err.value.field.startswith("proof[")
    padded = client.verify_consistency_proof(
        v.size1, v.size2, _pad(v.root1), _pad(v.root2), [_pad(p) for p in v.proof]
    )
    assert padded is (not v.want_err), v.name


def test_the_short_root_happy_path_is_the_equal_size_case() -> None:
    short_ok = [v for v in CONSISTENCY if not v.want_err and not _all_32(v.root1, v.root2, *v.proof)]
    assert [v.name for v in short_ok] == [
        "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"
    ]
    (v,) = short_ok
    assert v.size1 == v.size2 == 1 and v.proof == [] and v.root1 == v.root2 and len(v.root1) == 12
