"""C2SP tlog-tiles read from the stored tree: hash tiles are stored nodes (level 8L, one query), entry
bundles are the records' leaf inputs (provider || recordDigest), so nothing is recomputed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from anchor.db.models import Provider, Record
from anchor.errors import InputError, VerificationError
from anchor.leaf import leaf_input
from anchor.log.plan import NodeId
from anchor.log.store import LogStore
from anchor.transparency.tiles import TILE_HEIGHT, TILE_WIDTH, TileRef, encode_bundle, tile_extent


class TileNotFound(InputError):
    """The tree does not have this tile (or this width of it) yet (HTTP 404)."""


def read_tile(session: Session, tile: TileRef) -> bytes:
    """The bytes of `tile`: 32-byte hashes, or an entry bundle; TileNotFound beyond the tree.

    One query: whether the tree has the tile is whether its last hash (or entry) is stored, since a
    node is stored once its subtree is complete and entries commit with the log's size."""
    first = tile.index * TILE_WIDTH
    if tile.level is not None:
        ids = [NodeId(TILE_HEIGHT * tile.level, first + i) for i in range(tile.width)]
        nodes = LogStore(session).present(ids)
        if len(nodes) < len(ids):
            raise _not_found(session, tile)
        return b"".join(nodes[i] for i in ids)
    stmt = (
        select(Record.log_index, Provider.address, Record.record_digest)
        .join(Provider, Record.provider_id == Provider.id)
        .where(Record.log_index >= first, Record.log_index < first + tile.width)
        .order_by(Record.log_index)
    )
    rows = session.execute(stmt).all()
    if [r.log_index for r in rows] != list(range(first, first + tile.width)):
        raise _not_found(session, tile)
    return encode_bundle([leaf_input(r.address, r.record_digest) for r in rows])


def _not_found(session: Session, tile: TileRef) -> Exception:
    size = LogStore(session).size()
    if tile_extent(size, tile) < tile.width:
        return TileNotFound("tile", f"{tile.path()} is not in the tree of size {size}")
    return VerificationError(f"the log is missing data of {tile.path()} (size {size})")
