"""Which stored nodes make up a root or a proof: pure index arithmetic over RFC 9162 trees.

Every hash a root or a proof needs is the Merkle tree hash of a half-open leaf range [begin, end) that
the RFC's recursive split produces. Such a range is either one complete subtree (a stored node) or, on
the right border of a tree whose size is not a power of two, a few complete subtrees hashed together.
The functions here list those ranges following RFC 9162 section 2.1 (MTH, PATH, PROOF) without recursion;
`anchor.merkle.reference` is the executable spec they are tested against.
"""

from __future__ import annotations

from typing import NamedTuple


class NodeId(NamedTuple):
    """The complete subtree of 2^level leaves starting at leaf index * 2^level."""

    level: int
    index: int


def _split(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(begin: int, end: int) -> list[NodeId]:
    """The complete subtrees whose hashes, folded from the right, give MTH(D[begin:end]).

    Requires begin < end and begin aligned to the largest power of two <= end - begin (true for every
    range the RFC's split produces). Returned left to right, largest first: at most log2(n) + 1 nodes.
    """
    out = []
    pos = begin
    n = end - begin
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            out.append(NodeId(level, pos >> level))
            pos += 1 << level
    return out


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """PATH(index, D[size]) as leaf ranges, leaf end first. Requires 0 <= index < size."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of size {size}")
    out = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """PROOF(size1, D[size2]) as leaf ranges. Requires 0 < size1 <= size2 (equal sizes: empty proof)."""
    if not 0 < size1 <= size2:
        raise ValueError(f"size1 {size1} must be in [1, size2 = {size2}]")
    out = []
    lo, hi, complete = 0, size2, True
    while True:
        m, n = size1 - lo, hi - lo
        if m == n:
            if not complete:
                out.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
            complete = False
    out.reverse()
    return out
