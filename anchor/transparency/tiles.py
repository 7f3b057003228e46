"""C2SP tlog-tiles (c2sp.org/tlog-tiles): tile paths, tile extents and entry bundles.

A hash tile at level L holds up to 256 consecutive hashes of tree level 8*L (roots of complete
subtrees of 2^(8L) leaves); tile N of a level starts at hash N*256. A partial tile of width W
(1..255) is the rightmost tile of a tree whose level has N*256+W such hashes. An entry bundle holds
the data of up to 256 entries, each as a 2-byte big-endian length and the bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from anchor.errors import InputError
from anchor.merkle.hasher import Hasher

TILE_WIDTH = 256
TILE_HEIGHT = 8
MAX_LEVEL = 63
MAX_ENTRY = 0xFFFF
MAX_GROUPS = 8  # index elements at most (indexes below 10^24, past 2^64): longer paths refused unparsed

_ELEMENT = re.compile(r"[0-9]{3}")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")


def encode_index(index: int) -> str:
    """N as path elements: zero-padded 3-digit groups, all but the last prefixed with 'x'."""
    if index < 0:
        raise InputError("index", f"not negative, got {index}")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


@dataclass(frozen=True)
class TileRef:
    """One tile: a hash tile at `level`, or an entry bundle (`level` None); `width` 256 when full."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def partial(self) -> bool:
        return self.width < TILE_WIDTH

    def path(self) -> str:
        where = "entries" if self.level is None else str(self.level)
        suffix = f".p/{self.width}" if self.partial else ""
        return f"tile/{where}/{encode_index(self.index)}{suffix}"


def parse_tile_path(path: str) -> TileRef:
    """The tile a path names, refusing every non-canonical spelling (so each tile has one URL)."""
    parts = path.split("/")
    if not 3 <= len(parts) <= 4 + MAX_GROUPS or parts[0] != "tile":
        raise InputError("path", "expected tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]")
    where, rest = parts[1], parts[2:]
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        if not _WIDTH.fullmatch(rest[-1]) or not 1 <= int(rest[-1]) < TILE_WIDTH:
            raise InputError("width", f"a partial tile's width is 1..255 without leading zeros: {rest[-1]!r}")
        width = int(rest[-1])
        rest = [*rest[:-2], rest[-2][:-2]]
    *prefixed, last = rest
    prefixed_ok = all(p[:1] == "x" and _ELEMENT.fullmatch(p[1:]) for p in prefixed)
    if not _ELEMENT.fullmatch(last) or not prefixed_ok:
        raise InputError("index", "3-digit elements, all but the last prefixed with 'x'")
    if prefixed and prefixed[0] == "x000":
        raise InputError("index", "no leading x000 element")
    index = int("".join([p[1:] for p in prefixed] + [last]))
    if where == "entries":
        return TileRef(None, index, width)
    canonical = where.isascii() and where.isdigit() and len(where) <= 2 and str(int(where)) == where
    if not canonical or int(where) > MAX_LEVEL:
        raise InputError("level", f"a decimal 0..{MAX_LEVEL} without leading zeros: {where!r}")
    return TileRef(int(where), index, width)


def level_hashes(tree_size: int, level: int) -> int:
    """How many hashes of tree level 8*`level` a tree of `tree_size` leaves has (complete subtrees)."""
    return tree_size >> (TILE_HEIGHT * level)


def tile_extent(tree_size: int, tile: TileRef) -> int:
    """How many hashes (or entries) the tree has for `tile`'s slot: 0 when it does not exist yet."""
    count = tree_size if tile.level is None else level_hashes(tree_size, tile.level)
    return max(0, min(TILE_WIDTH, count - tile.index * TILE_WIDTH))


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a 2-byte big-endian length and its bytes."""
    if len(entries) > TILE_WIDTH:
        raise InputError("entries", f"a bundle holds at most {TILE_WIDTH} entries, got {len(entries)}")
    out = bytearray()
    for i, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY:
            raise InputError(f"entries[{i}]", f"at most {MAX_ENTRY} bytes in a bundle, got {len(entry)}")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_bundle(data: bytes) -> list[bytes]:
    """The entries of a bundle; InputError on a truncated one."""
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise InputError("bundle", f"truncated length at byte {at}")
        size = int.from_bytes(data[at : at + 2], "big")
        if at + 2 + size > len(data):
            raise InputError("bundle", f"entry {len(entries)} runs past the end ({size} bytes at {at + 2})")
        entries.append(data[at + 2 : at + 2 + size])
        at += 2 + size
    if len(entries) > TILE_WIDTH:
        raise InputError("bundle", f"more than {TILE_WIDTH} entries")
    return entries


def next_level(hasher: Hasher, hashes: Sequence[bytes]) -> list[bytes]:
    """The hashes of tree level 8*(L+1) from those of level 8*L: the root of each full run of 256
    (what a client does to check a tile against the tile above it)."""
    out = []
    for start in range(0, len(hashes) - TILE_WIDTH + 1, TILE_WIDTH):
        layer = list(hashes[start : start + TILE_WIDTH])
        while len(layer) > 1:
            layer = [hasher.hash_children(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
        out.append(layer[0])
    return out
