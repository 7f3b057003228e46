"""The stored log against the reference tree, the transparency-dev vectors, and fsck."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from anchor.db import transaction
from anchor.db.models import Checkpoint, LogEntry
from anchor.errors import InputError
from anchor.log import Frontier, LogStore, consistency_ranges, fold, fsck, inclusion_ranges, range_nodes
from anchor.log import checkpoints as cps
from anchor.merkle import reference as ref
from anchor.merkle import sha256_hasher as H
from anchor.merkle import verify_consistency, verify_inclusion
from tests.anchor.rfc9162_vectors import consistency_vectors, inclusion_vectors

# The RFC 6962 test leaves the transparency-dev vectors were generated from.
RFC6962_LEAVES = [
    bytes.fromhex(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]


def _leaves(n: int, seed: int = 0) -> list[bytes]:
    return [H.hash_leaf(seed.to_bytes(4, "big") + i.to_bytes(8, "big")) for i in range(n)]


def _append_in_random_batches(sessions, leaves: list[bytes], rng: random.Random) -> None:
    i = 0
    while i < len(leaves):
        k = rng.randint(1, 9)
        with transaction(sessions) as s:
            assert LogStore(s).append(leaves[i : i + k]) == i
        i += k


def test_store_matches_reference_for_every_size_index_and_pair(db_sessions) -> None:
    n = 37
    leaves = _leaves(n)
    _append_in_random_batches(db_sessions, leaves, random.Random(1))
    with transaction(db_sessions) as s:
        log = LogStore(s)
        assert log.size() == n
        assert log.root(0) == H.empty_root()
        for size in range(1, n + 1):
            root = ref.root(H, leaves[:size])
            assert log.root(size) == root
            for index in range(size):
                proof = log.inclusion_proof(index, size)
                assert proof == ref.inclusion_proof(H, index, leaves[:size])
                verify_inclusion(H, index, size, leaves[index], proof, root)
            for size1 in range(1, size + 1):
                proof = log.consistency_proof(size1, size)
                assert proof == ref.consistency_proof(H, size1, leaves[:size])


def test_store_reproduces_the_transparency_dev_vectors(db_sessions) -> None:
    leaves = [H.hash_leaf(x) for x in RFC6962_LEAVES]
    with transaction(db_sessions) as s:
        LogStore(s).append(leaves)
    checked = 0
    with transaction(db_sessions) as s:
        log = LogStore(s)
        for v in inclusion_vectors():
            if v.name.endswith("happy-path.json") and v.size <= len(leaves):
                assert log.leaf_hash(v.index) == v.leaf_hash
                assert log.root(v.size) == v.root
                assert log.inclusion_proof(v.index, v.size) == v.proof, v.name
                checked += 1
        for v in consistency_vectors():
            if v.name.endswith("happy-path.json") and 0 < v.size1 <= v.size2 <= len(leaves):
                assert log.root(v.size1) == v.root1 and log.root(v.size2) == v.root2
                assert log.consistency_proof(v.size1, v.size2) == v.proof, v.name
                checked += 1
    assert checked >= 8


def test_out_of_range_requests_name_the_field(db_sessions) -> None:
    with transaction(db_sessions) as s:
        LogStore(s).append(_leaves(5))
    with transaction(db_sessions) as s:
        log = LogStore(s)
        with pytest.raises(InputError, match=r"^index: 5 is outside \[0, 5\)"):
            log.inclusion_proof(5, 5)
        with pytest.raises(InputError, match=r"^size: 6 is outside \[0, 5\]"):
            log.inclusion_proof(0, 6)
        # Leaf 5's own row is not on its path: the one-query size check must still refuse it.
        with pytest.raises(InputError, match=r"^size: 6 is outside \[0, 5\]"):
            log.inclusion_proof(5, 6)
        with pytest.raises(InputError, match=r"^size: 8 is outside \[0, 5\]"):
            log.inclusion_proof(4, 8)
        with pytest.raises(InputError, match=r"^size2: 6 is outside \[0, 5\]"):
            log.consistency_proof(5, 6)
        with pytest.raises(InputError, match=r"^size: 6 is outside \[0, 5\]"):
            log.root(6)
        with pytest.raises(InputError, match=r"^size: -1 is outside \[0, 5\]"):
            log.inclusion_proof(0, -1)
        assert log.consistency_proof(5, 5) == [] and len(log.inclusion_proof(4, 5)) == 1
        with pytest.raises(InputError, match=r"^size1: 0 must be in \[1, size2 = 3\]"):
            log.consistency_proof(0, 3)
        with pytest.raises(InputError, match=r"^leaf_hash: has 31 bytes"):
            log.append([b"\0" * 31])


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 3000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(1, n)))
)
def test_plans_read_log_nodes_and_match_the_reference(args: tuple[int, int, int]) -> None:
    """Pure check of the planning arithmetic with an in-memory node table, up to 3000 leaves."""
    n, index, size1 = args
    leaves = _leaves(n, seed=n)
    table: dict[tuple[int, int], bytes] = {}
    f = Frontier(H, 0, [])
    for i, leaf in enumerate(leaves):
        for level, h in enumerate(f.append(leaf)):
            table[(level, i >> level)] = h

    def hashes(ranges: list[tuple[int, int]]) -> list[bytes]:
        out = []
        for b, e in ranges:
            plan = range_nodes(b, e)
            assert len(plan) <= n.bit_length()
            out.append(fold(H, [table[tuple(node)] for node in plan]))
        return out

    root = fold(H, [table[tuple(node)] for node in range_nodes(0, n)])
    assert root == f.root()
    proof = hashes(inclusion_ranges(index, n))
    assert len(proof) <= 2 * n.bit_length()
    verify_inclusion(H, index, n, leaves[index], proof, root)
    root1 = fold(H, [table[tuple(node)] for node in range_nodes(0, size1)])
    verify_consistency(H, size1, n, hashes(consistency_ranges(size1, n)), root1, root)
    if n <= 300:
        assert root == ref.root(H, leaves)


def test_concurrent_appends_never_share_an_index(database_url: str) -> None:
    """Writers in threads, each its own connection: the log_state lock serialises them."""
    from concurrent.futures import ThreadPoolExecutor

    from anchor.db import make_engine, session_factory

    engine = (
        make_engine(database_url, pool_size=8) if "postgresql" in database_url else make_engine(database_url)
    )
    sessions = session_factory(engine)
    batches = [_leaves(5, seed=t) for t in range(16)]

    def write(batch: list[bytes]) -> int:
        with transaction(sessions) as s:
            return LogStore(s).append(batch)

    with ThreadPoolExecutor(4) as pool:
        starts = sorted(pool.map(write, batches))
    assert starts == list(range(0, 80, 5))
    assert fsck_ok_without_records(sessions) == 80
    engine.dispose()


def fsck_ok_without_records(sessions) -> int:
    report = fsck(sessions)
    assert all(p.endswith("has no record") for p in report.problems)
    return report.leaves


def test_fsck_finds_a_rewritten_node_and_a_wrong_checkpoint(db_sessions) -> None:
    _append_in_random_batches(db_sessions, _leaves(20), random.Random(2))
    with transaction(db_sessions) as s:
        cp = cps.create(s, now=0)
        assert cp is not None and cp.size == 20
    assert fsck_ok_without_records(db_sessions) == 20
    with transaction(db_sessions) as s:
        s.execute(update(Checkpoint).values(root=b"\x42" * 32))
    report = fsck(db_sessions)
    assert any("checkpoint" in p and "!= recomputed" in p for p in report.problems)
    with transaction(db_sessions) as s:
        s.execute(update(LogEntry).where(LogEntry.idx == 7).values(nodes=b"\x00" * 128))
    report = fsck(db_sessions)
    assert any(p.startswith("row 7: stored nodes differ") for p in report.problems)
