"""The root and proofs computed from tiles alone (anchor.transparency.tile_proofs) equal the reference
tree's, for every shape of tree up to a few tiles and for trees past level 2; through the API, the root
recomputed from tiles only is the signed checkpoint's, and a forged tile is caught."""

from __future__ import annotations

import hashlib

import pytest

from anchor.db import session_factory, transaction
from anchor.errors import InputError
from anchor.leaf import leaf_hash
from anchor.log import checkpoints
from anchor.merkle import ProofError, sha256_hasher, verify_consistency, verify_inclusion
from anchor.merkle import reference as ref
from anchor.transparency.checkpoint import open_checkpoint
from anchor.transparency.note import VerifierKey
from anchor.transparency.tile_proofs import TileError, TileTree
from anchor.transparency.tiles import TILE_WIDTH, TileRef, tile_extent
from tests.anchor.factory import PROVIDER, entry, make_record

H = sha256_hasher


def _leaves(n: int) -> list[bytes]:
    return [H.hash_leaf(i.to_bytes(8, "big")) for i in range(n)]


class MemoryTiles:
    """Tiles of a tree of `leaves`, built the slow way (reference roots of every complete subtree)."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.levels = [leaves]
        while len(self.levels[-1]) >= TILE_WIDTH:
            below = self.levels[-1]
            self.levels.append(
                [
                    ref.root(H, below[i : i + TILE_WIDTH])
                    for i in range(0, len(below) - TILE_WIDTH + 1, TILE_WIDTH)
                ]
            )
        self.fetched: list[TileRef] = []

    def __call__(self, tile: TileRef) -> bytes:
        self.fetched.append(tile)
        assert tile.level is not None
        hashes = self.levels[tile.level][tile.index * TILE_WIDTH :][: tile.width]
        assert len(hashes) == tile.width, tile
        return b"".join(hashes)


SIZES = [1, 2, 3, 5, 7, 8, 9, 31, 255, 256, 257, 300, 511, 512, 513, 767, 1000]


@pytest.mark.parametrize("size", SIZES)
def test_root_and_proofs_from_tiles_equal_the_reference(size: int) -> None:
    leaves = _leaves(size)
    tree = TileTree(size, MemoryTiles(leaves))
    root = ref.root(H, leaves)
    assert tree.root() == root
    for index in {0, 1, size // 2, size - 2, size - 1} & set(range(size)):
        proof = tree.inclusion_proof(index)
        assert proof == ref.inclusion_proof(H, index, leaves)
        verify_inclusion(H, index, size, leaves[index], proof, root)
    for old in {1, 2, size // 3, size - 1, size} & set(range(1, size + 1)):
        proof = tree.consistency_proof(old)
        assert proof == ref.consistency_proof(H, old, leaves)
        verify_consistency(H, old, size, proof, ref.root(H, leaves[:old]), root)


def test_a_tree_past_level_two_needs_few_tiles() -> None:
    size = (1 << 16) + 3 * TILE_WIDTH + 5  # level-2 hash, two full level-1 ... partial tiles on each level
    leaves = _leaves(size)
    tiles = MemoryTiles(leaves)
    tree = TileTree(size, tiles)
    assert tree.root() == ref.root(H, leaves)
    proof = TileTree(size, tiles).inclusion_proof(size - 600)
    assert proof == ref.inclusion_proof(H, size - 600, leaves)
    assert all(t.width == tile_extent(size, TileRef(t.level, t.index)) for t in tiles.fetched)
    assert tree.tiles_fetched <= 6  # one level-2 hash, the level-1 and level-0 tiles of the right edge


def test_a_tile_of_the_wrong_length_or_outside_the_tree_is_refused() -> None:
    leaves = _leaves(300)

    def short(tile: TileRef) -> bytes:
        return MemoryTiles(leaves)(tile)[:-1]

    with pytest.raises(TileError, match=r"tile/1/000\.p/1 has 31 bytes, want 32"):
        TileTree(300, short).root()
    with pytest.raises(InputError) as e:
        TileTree(300, MemoryTiles(leaves)).inclusion_proof(300)
    assert e.value.field == "index"
    assert TileTree(0, MemoryTiles([])).root() == hashlib.sha256(b"").digest()


def test_the_root_from_served_tiles_alone_is_the_signed_checkpoints(client) -> None:
    """A reader with only /checkpoint (its signature checked from the published key) and /tile/...:
    the root it recomputes is the note's, the entry bundles rehash to the level-0 tiles, and one
    changed byte in any tile makes the root differ."""
    records = [make_record(f"tt-{i}") for i in range(520)]
    for start in range(0, 520, 130):
        batch = {"entries": [entry(x) for x in records[start : start + 130]]}
        assert client.post("/v1/records:batch", json=batch).status_code == 201
    with transaction(session_factory(client.app.state.engine)) as s:
        checkpoints.create(s, now=1)
    log = client.get("/v1/log").json()
    note = open_checkpoint(
        client.get("/checkpoint").text, VerifierKey.parse(log["checkpointKey"]), log["origin"]
    )
    assert note.size == 520

    def served(tile: TileRef) -> bytes:
        r = client.get("/" + tile.path())
        assert r.status_code == 200, (tile.path(), r.text)
        return r.content

    tree = TileTree(note.size, served)
    assert tree.root() == note.root
    rehashed = [H.hash_leaf(e) for i in range(3) for e in tree.entries(i)]
    assert rehashed == [h for i in range(3) for h in tree.tile(0, i)]
    assert rehashed == [leaf_hash(PROVIDER, x.digest()) for x in records]
    verify_inclusion(H, 517, note.size, rehashed[517], tree.inclusion_proof(517), note.root)

    def changed(forged: TileRef) -> TileTree:
        def fetch(tile: TileRef) -> bytes:
            data = served(tile)
            return data if tile != forged else bytes([data[0] ^ 1]) + data[1:]

        return TileTree(note.size, fetch)

    for forged in (TileRef(0, 2, 8), TileRef(1, 0, 2)):  # the tiles the root is made of
        assert changed(forged).root() != note.root, forged
    with pytest.raises(ProofError):  # a tile only a proof uses: the proof fails against the root
        verify_inclusion(H, 3, note.size, rehashed[3], changed(TileRef(0, 0)).inclusion_proof(3), note.root)
