"""The stored, incremental RFC 9162 log: appends, roots, inclusion and consistency proofs from the database.

Storage (table log_entries, docs/log.md): row `idx` holds every node completed by appending leaf idx,
i.e. node (level, idx >> level) for level = 0 .. trailing-ones(idx), 32 bytes each. Node (level, k) is
therefore found in row ((k + 1) << level) - 1 at offset 32 * level, and a root or proof reads at most
~2 log2(n) nodes from as many rows, in one query (which also checks the size: see `_range_hashes`).
Rows are inserted once and never updated.

Appends are serialised by locking the single log_state row first (SELECT ... FOR UPDATE on PostgreSQL,
a write to it on SQLite, which takes the database's write lock): two writers can never take one index.
Every method works inside the caller's transaction, so records and their leaves commit together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from anchor.db.bulk import insert_rows, values_by_key
from anchor.db.engine import is_postgresql
from anchor.db.models import LogEntry, LogState
from anchor.errors import InputError, VerificationError
from anchor.log.compact import Frontier, fold, frontier_ids
from anchor.log.plan import NodeId, consistency_ranges, inclusion_ranges, range_nodes
from anchor.merkle.hasher import HASH_SIZE, Hasher, sha256_hasher

LOG_STATE_ID = 1


def node_row(node: NodeId) -> int:
    """The log_entries row that stores `node`: the leaf whose append completed it."""
    return ((node.index + 1) << node.level) - 1


class LogStore:
    """The log inside one session/transaction."""

    def __init__(self, session: Session, hasher: Hasher = sha256_hasher) -> None:
        self.session = session
        self.hasher = hasher
        self._locked_size: int | None = None

    def size(self) -> int:
        """The committed tree size (as this transaction sees it)."""
        if self._locked_size is not None:
            return self._locked_size
        return int(
            self.session.execute(select(LogState.size).where(LogState.id == LOG_STATE_ID)).scalar_one()
        )

    def lock(self) -> int:
        """Take the append lock for the rest of the transaction; returns the size. Call it first."""
        if self._locked_size is None:
            if is_postgresql(self.session):
                stmt = select(LogState.size).where(LogState.id == LOG_STATE_ID).with_for_update()
                self._locked_size = int(self.session.execute(stmt).scalar_one())
            else:
                # SQLite has no row locks: a first write takes the database lock (busy timeout waits).
                self.session.execute(
                    update(LogState).where(LogState.id == LOG_STATE_ID).values(size=LogState.size)
                )
                self._locked_size = int(
                    self.session.execute(
                        select(LogState.size).where(LogState.id == LOG_STATE_ID)
                    ).scalar_one()
                )
        return self._locked_size

    def append(self, leaf_hashes: Sequence[bytes]) -> int:
        """Append leaves in order; returns the index of the first. O(log n) reads, one row per leaf."""
        size = self.lock()
        if not leaf_hashes:
            return size
        for h in leaf_hashes:
            if len(h) != HASH_SIZE:
                raise InputError("leaf_hash", f"has {len(h)} bytes, want {HASH_SIZE}")
        ids = frontier_ids(size)
        nodes = self.nodes(ids)
        frontier = Frontier(self.hasher, size, [nodes[i] for i in ids])
        rows = [(size + i, b"".join(c)) for i, c in enumerate(frontier.extend(leaf_hashes))]
        insert_rows(self.session, LogEntry.__table__, ("idx", "nodes"), rows)
        self.session.execute(
            update(LogState).where(LogState.id == LOG_STATE_ID).values(size=size + len(leaf_hashes))
        )
        self._locked_size = size + len(leaf_hashes)
        return size

    def nodes(self, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
        """Fetch stored node hashes in one query; VerificationError if one is missing or short."""
        wanted = set(ids)
        found = self._fetch(wanted)
        for n in wanted - found.keys():
            raise VerificationError(f"the log is missing node {n} (row {node_row(n)})")
        return found

    def present(self, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
        """The stored hashes of those of `ids` the tree has (one query): nodes not complete yet, or
        beyond the log, are absent."""
        return self._fetch(set(ids))

    def _fetch(self, wanted: set[NodeId]) -> dict[NodeId, bytes]:
        """The stored hashes of the `wanted` nodes that exist: one primary-key lookup of their rows."""
        if not wanted:
            return {}
        rows = {node_row(n) for n in wanted}
        found = values_by_key(self.session, LogEntry.__table__, "idx", "nodes", rows)
        out = {}
        for n in wanted:
            blob = found.get(node_row(n))
            h = None if blob is None else blob[HASH_SIZE * n.level : HASH_SIZE * (n.level + 1)]
            if h is not None and len(h) == HASH_SIZE:
                out[n] = h
        return out

    def _check_size(self, size: int, what: str = "size") -> None:
        current = self.size()
        if not 0 <= size <= current:
            raise InputError(what, f"{size} is outside [0, {current}] (the log's size)")

    def _range_hashes(self, ranges: Sequence[tuple[int, int]], size: int, what: str = "size") -> list[bytes]:
        """The hash of each leaf range of the tree of `size` leaves; requires size >= 1.

        The one query also reads row size - 1, which exists exactly when the log holds `size` entries
        (rows are contiguous from 0 and commit together with log_state.size), so it checks `size` against
        the log as well: proofs cost one round trip, and log_state is read only to word an error.
        """
        plans = [range_nodes(b, e) for b, e in ranges]
        last = NodeId(0, size - 1)
        nodes = self._fetch({last, *(n for plan in plans for n in plan)})
        if last not in nodes:
            self._check_size(size, what)  # raises InputError when size is beyond the log
        missing = {n for plan in plans for n in plan} - nodes.keys()
        if missing or last not in nodes:
            n = min(missing | {last} - nodes.keys())
            raise VerificationError(f"the log is missing node {n} (row {node_row(n)})")
        return [fold(self.hasher, [nodes[n] for n in plan]) for plan in plans]

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (default: the whole log)."""
        if size is None:
            size = self.size()
        elif size <= 0:
            self._check_size(size)  # raises for a negative size
        return fold(self.hasher, self._range_hashes([(0, size)], size)) if size else self.hasher.empty_root()

    def leaf_hash(self, index: int) -> bytes:
        self._check_index(index, self.size())
        return self.nodes([NodeId(0, index)])[NodeId(0, index)]

    def _check_index(self, index: int, size: int) -> None:
        if not 0 <= index < size:
            raise InputError("index", f"{index} is outside [0, {size}) (the tree's size)")

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size]) from stored nodes, in one query.

        Requires 0 <= index < size <= the log's size."""
        if size <= 0:
            self._check_size(size)  # raises for a negative size
        self._check_index(index, size)
        return self._range_hashes(inclusion_ranges(index, size), size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """PROOF(size1, D[size2]) from stored nodes, in one query.

        Requires 0 < size1 <= size2 <= the log's size."""
        if size2 <= 0:
            self._check_size(size2, "size2")  # raises for a negative size
        if not 0 < size1 <= size2:
            raise InputError("size1", f"{size1} must be in [1, size2 = {size2}]")
        return self._range_hashes(consistency_ranges(size1, size2), size2, "size2")
