"""C2SP tiles served per second, and an inclusion proof built and verified from tiles alone, at 10^6
entries on PostgreSQL.

Measured in one run against `toploc-audit serve --workers W` on a log of --entries leaves (built by the
bulk path of bench_ingest: Frontier rows, COPY):
- tiles/s: GET of random hash tiles (level 0 full tiles, the level-1 and level-2 tiles of the tree)
  from --connections keep-alive connections; baseline: GET /v1/log/inclusion of random leaves, the
  bespoke proof route, from the same connections (each answer is a proof the server computes);
- a reader with an empty cache proving one leaf from tiles: fetch the tiles it needs (TileTree), build
  the RFC 9162 proof, verify it against the root (as a client holding only a checkpoint does); p50/p99
  over --samples random leaves, with the tiles fetched per proof; baseline: one GET /v1/log/inclusion
  and the same verification; and the naive O(n) reference proof.

    .venv/bin/python bench/bench_tiles.py [--entries 1000000] [--requests 4000] [--connections 4]
        [--workers 1] [--samples 200]

Uses a fresh database on TOPLOC_AUDIT_TEST_POSTGRES_URL's server, dropped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_ingest import Databases, Server, build_big_log, quantile_ms, send_all  # noqa: E402

from anchor.merkle import reference as ref  # noqa: E402
from anchor.merkle import sha256_hasher as H  # noqa: E402
from anchor.merkle import verify_inclusion  # noqa: E402
from anchor.transparency.tile_proofs import TileTree  # noqa: E402
from anchor.transparency.tiles import TILE_WIDTH, TileRef, level_hashes, tile_extent  # noqa: E402


def get_all(port: int, paths: Sequence[str], connections: int) -> float:
    """GET every path once from `connections` keep-alive connections; returns the seconds."""
    return send_all(port, "GET", [(p, None) for p in paths], connections, 200)


def tile_paths(n: int, count: int, rng: random.Random) -> list[str]:
    """Random hash tiles of the tree of n leaves: 90% full level-0 tiles, the rest above."""
    full0 = level_hashes(n, 0) // TILE_WIDTH
    upper = [
        TileRef(level, index, tile_extent(n, TileRef(level, index)))
        for level in (1, 2)
        for index in range(level_hashes(n, level) // TILE_WIDTH + 1)
        if tile_extent(n, TileRef(level, index)) > 0
    ]
    out = []
    for _ in range(count):
        tile = TileRef(0, rng.randrange(full0)) if rng.random() < 0.9 or not upper else rng.choice(upper)
        out.append("/" + tile.path())
    return out


def fetcher(conn: http.client.HTTPConnection) -> Callable[[TileRef], bytes]:
    def fetch(tile: TileRef) -> bytes:
        conn.request("GET", "/" + tile.path())
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"{tile.path()}: HTTP {response.status}: {body[:200]!r}")
        return body

    return fetch


def route_proof(conn: http.client.HTTPConnection, index: int, n: int) -> list[bytes]:
    conn.request("GET", f"/v1/log/inclusion?index={index}&size={n}")
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"inclusion: HTTP {response.status}: {body[:200]!r}")
    return [bytes.fromhex(p[2:]) for p in json.loads(body)["proof"]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--samples", type=int, default=200)
    args = p.parse_args()
    n, rng = args.entries, random.Random(11)
    dbs = Databases()
    try:
        _, url = dbs.fresh()
        start = time.perf_counter()
        leaves = build_big_log(url, n)
        print(f"built a {n:,}-entry log by the bulk path in {time.perf_counter() - start:.1f} s", flush=True)
        root = ref.root(H, leaves)
        with tempfile.TemporaryDirectory() as home:
            server = Server(url, Path(home), args.workers)
            try:
                tiles = tile_paths(n, args.requests, rng)
                proofs = [
                    f"/v1/log/inclusion?index={rng.randrange(n)}&size={n}" for _ in range(args.requests)
                ]
                get_all(server.port, tiles[:200] + proofs[:200], args.connections)  # warm both paths
                tile_s = get_all(server.port, tiles, args.connections)
                proof_s = get_all(server.port, proofs, args.connections)
                tile_rate, proof_rate = len(tiles) / tile_s, len(proofs) / proof_s
                print(
                    f"hash tiles served: {tile_rate:,.0f}/s ({args.connections} connections, {args.workers}"
                    f" worker(s), {len(tiles)} random tiles); baseline GET /v1/log/inclusion"
                    f" {proof_rate:,.0f}/s -> ratio {tile_rate / proof_rate:.2f}"
                )

                from_tiles, via_route, fetched = [], [], []
                for _ in range(args.samples):
                    i = rng.randrange(n)
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
                    t = time.perf_counter()
                    tree = TileTree(n, fetcher(conn))  # an empty cache: a reader proving one leaf
                    verify_inclusion(H, i, n, leaves[i], tree.inclusion_proof(i), root)
                    from_tiles.append(time.perf_counter() - t)
                    fetched.append(tree.tiles_fetched)
                    t = time.perf_counter()
                    verify_inclusion(H, i, n, leaves[i], route_proof(conn, i, n), root)
                    via_route.append(time.perf_counter() - t)
                    conn.close()
            finally:
                server.stop()
        t = time.perf_counter()
        ref.inclusion_proof(H, n // 3, leaves)
        naive_ms = (time.perf_counter() - t) * 1000
        p50, p99 = quantile_ms(from_tiles, 0.5), quantile_ms(from_tiles, 0.99)
        r50 = quantile_ms(via_route, 0.5)
        print(
            f"inclusion proof from tiles alone at {n:,} entries (fetch + build + verify, {args.samples}"
            f" random leaves, empty cache): p50 {p50:.2f} ms, p99 {p99:.2f} ms,"
            f" {min(fetched)}-{max(fetched)} tiles each"
        )
        print(
            f"baseline GET /v1/log/inclusion + verify: p50 {r50:.2f} ms -> tiles/route {p50 / r50:.2f};"
            f" naive O(n) reference proof {naive_ms:.0f} ms -> tiles {naive_ms / p50:,.0f}x faster"
        )
    finally:
        dbs.close()


if __name__ == "__main__":
    main()
