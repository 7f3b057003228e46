"""The right frontier of a growing tree (a compact range over [0, size)) and incremental appends.

Appending leaf i completes the subtrees (level, i >> level) for level 0 up to the number of trailing one
bits of i; each is hashed from its left sibling on the frontier and the new right child. So an append is
O(1) amortised hashing and O(log n) memory, with no rebuild. Mirrors transparency-dev/merkle
compact/range.go (commit 417fb0c) for the special case begin = 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from anchor.log.plan import NodeId, range_nodes
from anchor.merkle.hasher import Hasher


def frontier_ids(size: int) -> list[NodeId]:
    """The complete subtrees covering [0, size), largest first (one per set bit of size)."""
    return range_nodes(0, size) if size else []


def fold(hasher: Hasher, hashes: Sequence[bytes]) -> bytes:
    """Hash complete subtrees (left to right, largest first) into the root of their union."""
    if not hashes:
        return hasher.empty_root()
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = hasher.hash_children(h, acc)
    return acc


class Frontier:
    """The frontier hashes of a tree of `size` leaves; `append` yields each leaf's newly complete nodes."""

    def __init__(self, hasher: Hasher, size: int, hashes: Sequence[bytes]) -> None:
        ids = frontier_ids(size)
        if len(ids) != len(hashes):
            raise ValueError(f"a tree of size {size} has {len(ids)} frontier nodes, got {len(hashes)}")
        self.hasher = hasher
        self.size = size
        self._stack = [(node.level, h) for node, h in zip(ids, hashes, strict=True)]

    def append(self, leaf_hash: bytes) -> list[bytes]:
        """Add one leaf; returns the hashes of the nodes it completes, level 0 (the leaf) first."""
        completed = [leaf_hash]
        level, acc = 0, leaf_hash
        while self._stack and self._stack[-1][0] == level:
            acc = self.hasher.hash_children(self._stack.pop()[1], acc)
            level += 1
            completed.append(acc)
        self._stack.append((level, acc))
        self.size += 1
        return completed

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[list[bytes]]:
        return [self.append(h) for h in leaf_hashes]

    def root(self) -> bytes:
        return fold(self.hasher, [h for _, h in self._stack])
