"""Anchoring: the happy path and every way to rewrite history, each refused by the contract."""

from __future__ import annotations

import hashlib

import pytest

from anchor.chain.client import Checkpoint
from anchor.chain.errors import ContractRevert
from anchor.errors import InputError
from anchor.merkle import reference as ref
from anchor.merkle import sha256_hasher
from tests.fixtures.chain import AuditChain

H = sha256_hasher
LEAVES = [H.hash_leaf(hashlib.sha256(str(i).encode()).digest()) for i in range(64)]


def _root(n: int) -> bytes:
    return ref.root(H, LEAVES[:n])


def _proof(m: int, n: int) -> list[bytes]:
    return ref.consistency_proof(H, m, LEAVES[:n])


def test_anchor_grows_the_log(audit: AuditChain) -> None:
    op = audit.client(audit.operator)
    assert op.latest_checkpoint() == (0, 0, hashlib.sha256(b"").digest(), op.latest_checkpoint()[3])
    sizes = [5, 6, 17, 32, 33]
    previous = 0
    for i, size in enumerate(sizes, start=1):
        sent = op.anchor(size, _root(size), _proof(previous, size) if previous else [])
        event = sent.event("CheckpointAnchored")
        assert (event["id"], event["previousSize"], event["size"], event["root"]) == (
            i,
            previous,
            size,
            _root(size),
        )
        block = audit.w3.eth.get_block(sent.block_number)
        assert event["timestamp"] == block["timestamp"]
        assert op.latest_checkpoint() == (i, size, _root(size), block["timestamp"])
        previous = size
    assert op.checkpoint_count() == len(sizes)
    third = op.checkpoint(3)
    assert (third.previous_size, third.size, third.root) == (6, 17, _root(17))
    assert op.checkpoint_covering(16) == third and op.checkpoint_covering(17).id == 4
    assert op.checkpoint_covering(33) is None
    assert op.is_checkpoint(third)
    assert not op.is_checkpoint(Checkpoint(3, 6, 17, _root(16), third.timestamp))
    assert not op.is_checkpoint(Checkpoint(3, 5, 17, third.root, third.timestamp))
    assert not op.is_checkpoint(Checkpoint(9, 6, 17, third.root, third.timestamp))
    # Inclusion against a stored checkpoint, the struct checked against its hash.
    assert op.verify_inclusion(third, 10, LEAVES[10], ref.inclusion_proof(H, 10, LEAVES[:17]))
    assert not op.verify_inclusion(third, 11, LEAVES[10], ref.inclusion_proof(H, 10, LEAVES[:17]))
    forged = Checkpoint(3, 6, 17, _root(20), third.timestamp)
    with pytest.raises(ContractRevert) as err:
        op.verify_inclusion(forged, 10, LEAVES[10], ref.inclusion_proof(H, 10, LEAVES[:20]))
    assert err.value.name == "CheckpointLogUnknownCheckpoint" and err.value.values == {"id": 3}


def test_anchor_by_a_non_operator(audit: AuditChain) -> None:
    intruder = audit.accounts[5]
    with pytest.raises(ContractRevert) as err:
        audit.client(intruder).anchor(4, _root(4), [])
    assert err.value.name == "CheckpointLogUnauthorizedOperator"
    assert err.value.values == {"caller": intruder.address}
    assert "CheckpointLogUnauthorizedOperator(caller=0x" in str(err.value)
    assert audit.client().checkpoint_count() == 0


@pytest.mark.parametrize("new_size", [9, 8, 0])
def test_a_shrinking_or_equal_checkpoint(audit: AuditChain, new_size: int) -> None:
    op = audit.client(audit.operator)
    op.anchor(9, _root(9), [])
    with pytest.raises(ContractRevert) as err:
        op.anchor(new_size, _root(max(new_size, 1)), [])
    assert err.value.name == "CheckpointLogSizeNotIncreasing"
    assert err.value.values == {"size": 9, "newSize": new_size}
    assert op.checkpoint_count() == 1


def test_a_checkpoint_that_does_not_extend_the_log(audit: AuditChain) -> None:
    op = audit.client(audit.operator)
    op.anchor(9, _root(9), [])
    # A different history of 20 entries: entry 4 rewritten.
    rewritten = list(LEAVES[:20])
    rewritten[4] = H.hash_leaf(b"rewritten")
    other_root = ref.root(H, rewritten)
    attempts = [
        ("its own proof", other_root, ref.consistency_proof(H, 9, rewritten)),
        ("the honest proof", other_root, _proof(9, 20)),
        ("no proof", _root(20), []),
        ("a proof from another size", _root(20), _proof(8, 20)),
        ("a truncated proof", _root(20), _proof(9, 20)[:-1]),
        ("an extended proof", _root(20), [*_proof(9, 20), LEAVES[0]]),
    ]
    for label, root, proof in attempts:
        with pytest.raises(ContractRevert) as err:
            op.anchor(20, root, proof)
        assert err.value.name == "CheckpointLogInconsistent", label
        assert err.value.values == {"size": 9, "newSize": 20}
    assert op.checkpoint_count() == 1
    op.anchor(20, _root(20), _proof(9, 20))  # the honest extension still goes through
    assert op.checkpoint_count() == 2


def test_the_first_checkpoint_takes_no_proof(audit: AuditChain) -> None:
    op = audit.client(audit.operator)
    with pytest.raises(ContractRevert) as err:
        op.anchor(4, _root(4), [LEAVES[0]])
    assert err.value.name == "CheckpointLogInconsistent" and err.value.values == {"size": 0, "newSize": 4}


def test_bad_input_is_refused_before_sending(audit: AuditChain) -> None:
    op = audit.client(audit.operator)
    nonce = audit.w3.eth.get_transaction_count(audit.operator.address)
    with pytest.raises(InputError) as err:
        op.anchor(4, _root(4)[:31], [])
    assert (err.value.field, err.value.reason) == ("newRoot", "has 31 bytes, want 32")
    with pytest.raises(InputError) as err:
        op.anchor(2**64, _root(4), [])
    assert err.value.field == "newSize"
    with pytest.raises(InputError) as err:
        op.anchor(4, _root(4), [LEAVES[0], b"\x01" * 33])
    assert (err.value.field, err.value.reason) == ("consistencyProof[1]", "has 33 bytes, want 32")
    assert audit.w3.eth.get_transaction_count(audit.operator.address) == nonce
