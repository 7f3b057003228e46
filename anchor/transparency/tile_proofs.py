"""A tree's root and proofs computed from its C2SP tiles alone, as a client that holds only a checkpoint
does it (the way Go's tlog.TileHashReader works): no proof routes, no database.

`TileTree(size, fetch)` asks `fetch(TileRef) -> bytes` for the tiles of the tree of `size` leaves
(full tiles, and partial ones of exactly the width that tree has), each at most once. Nothing here is
trusted: tiles come from whoever serves them, so a root computed here is compared with a signed or
on-chain one, and a proof built here is checked with anchor.merkle against a trusted root. A tile of
the wrong length is refused at once (TileError naming it).
"""

from __future__ import annotations

from collections.abc import Callable

from anchor.errors import InputError, VerificationError
from anchor.merkle import HASH_SIZE, Hasher, sha256_hasher
from anchor.transparency.tiles import TILE_HEIGHT, TILE_WIDTH, TileRef, decode_bundle, tile_extent

Fetch = Callable[[TileRef], bytes]


class TileError(VerificationError):
    """A fetched tile is not what the tree of the given size must have (wrong length, bad bundle)."""


def _split(n: int) -> int:
    """The largest power of two below n (n > 1): where RFC 9162 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


class TileTree:
    """Hashes of the tree of `size` leaves, read from tiles through `fetch` (cached per tile)."""

    def __init__(self, size: int, fetch: Fetch, hasher: Hasher = sha256_hasher) -> None:
        if size < 0:
            raise InputError("size", f"not negative, got {size}")
        self.size, self.fetch, self.hasher = size, fetch, hasher
        self._tiles: dict[TileRef, list[bytes]] = {}

    @property
    def tiles_fetched(self) -> int:
        return len(self._tiles)

    def tile(self, level: int, index: int) -> list[bytes]:
        """The hashes of hash tile (level, index) as this tree has them."""
        ref = TileRef(level, index, tile_extent(self.size, TileRef(level, index)))
        if ref.width == 0:
            raise InputError("tile", f"level {level} tile {index} is not in the tree of size {self.size}")
        if ref not in self._tiles:
            data = self.fetch(ref)
            if len(data) != HASH_SIZE * ref.width:
                raise TileError(f"{ref.path()} has {len(data)} bytes, want {HASH_SIZE * ref.width}")
            self._tiles[ref] = [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
        return self._tiles[ref]

    def entries(self, index: int) -> list[bytes]:
        """Entry bundle `index` as this tree has it (the leaves' data, not yet trusted)."""
        ref = TileRef(None, index, tile_extent(self.size, TileRef(None, index)))
        if ref.width == 0:
            raise InputError("tile", f"entry bundle {index} is not in the tree of size {self.size}")
        entries = decode_bundle(self.fetch(ref))
        if len(entries) != ref.width:
            raise TileError(f"{ref.path()} holds {len(entries)} entries, want {ref.width}")
        return entries

    def node(self, height: int, index: int) -> bytes:
        """The root of the complete subtree of 2^height leaves starting at leaf index << height."""
        if (index + 1) << height > self.size:
            raise InputError(
                "node", f"subtree {index} of height {height} is not complete at size {self.size}"
            )
        base = height - height % TILE_HEIGHT  # the stored level under it: hashes of that level are in tiles
        level, span = base // TILE_HEIGHT, 1 << (height - base)
        first = index * span
        tile = self.tile(level, first // TILE_WIDTH)
        layer = tile[first % TILE_WIDTH : first % TILE_WIDTH + span]
        while len(layer) > 1:
            layer = [self.hasher.hash_children(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
        return layer[0]

    def range_hash(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi), where lo is a multiple of the largest power of two below hi - lo (as
        every range RFC 9162's recursion visits is)."""
        n = hi - lo
        if n & (n - 1) == 0:
            return self.node(n.bit_length() - 1, lo // n)
        k = _split(n)
        return self.hasher.hash_children(self.range_hash(lo, lo + k), self.range_hash(lo + k, hi))

    def root(self) -> bytes:
        return self.hasher.empty_root() if self.size == 0 else self.range_hash(0, self.size)

    def inclusion_proof(self, index: int) -> list[bytes]:
        """RFC 9162 section 2.1.3.1 PATH(index, D[size]), leaf side first."""
        if not 0 <= index < self.size:
            raise InputError("index", f"{index} is not a leaf of the tree of size {self.size}")
        proof: list[bytes] = []
        lo, hi = 0, self.size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                proof.append(self.range_hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.range_hash(lo, lo + k))
                lo += k
        proof.reverse()  # collected root side first
        return proof

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """RFC 9162 section 2.1.4.1 PROOF(old_size, D[size])."""
        if not 0 < old_size <= self.size:
            raise InputError("size1", f"{old_size} is not in [1, {self.size}]")
        proof: list[bytes] = []
        lo, hi, m, complete = 0, self.size, old_size, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self.range_hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.range_hash(lo, lo + k))
                lo, m, complete = lo + k, m - k, False
        if not complete:
            proof.append(self.range_hash(lo, hi))
        proof.reverse()
        return proof
