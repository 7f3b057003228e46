"""Ingest throughput through the HTTP API and proof latency at 10^6 entries, on PostgreSQL.

Workload: realistic records: 64 prompt tokens, 256 output tokens, topk 128, decode_batching_size 32,
so 1 + 256/32 = 9 TOPLOC proofs of 258 bytes; about 5.3 KB of JSON per entry (record + signature).
Request bodies are built and signed before any timing starts.

Measured in one run, each HTTP case --repeat times on a fresh database and a fresh server
(`toploc-audit serve --workers W`):
- naive baseline: one INSERT and one full-tree rebuild per record, no HTTP (generous to the baseline);
- HTTP single: one record per POST /v1/records, --lone of them one at a time from one connection (the
  latency of a lone POST), then the rest from --single-connections concurrent connections (the server
  groups concurrent ones into shared transactions): records/s and latency p50/p99;
- HTTP batched: --batch records per POST /v1/records:batch, from --connections concurrent connections;
  with the CPU each record cost the server processes, the PostgreSQL backends and this client;
- where a record's CPU goes, stage by stage, in-process (best of 5 passes over --sample records);
- inclusion and consistency proof latency from the stored log at --entries entries (built by a bulk
  path: nodes computed with the same Frontier code, then COPY), against the reference O(n) tree.
Records/s and MB/s are printed with their ratio to the baseline. Targets (issue 10): 10,000 records/s
batched, every record fully checked, signed and durable (synchronous commit) before its receipt; proofs
under 5 ms at 10^6 entries (issue 4).

    .venv/bin/python bench/bench_ingest.py [--records 10000] [--batch 1000] [--single 1000] [--lone 100]
        [--connections 4] [--single-connections 16] [--workers 2] [--repeat 3] [--naive 1000]
        [--entries 1000000] [--samples 2000] [--sample 300]

Uses fresh databases on TOPLOC_AUDIT_TEST_POSTGRES_URL's server, all dropped at the end. CPU figures
read /proc (Linux). The machine may be shared: the spread over --repeat runs is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import itertools
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from anchor.api.jsonio import loads  # noqa: E402
from anchor.db import make_engine, session_factory, transaction, upgrade  # noqa: E402
from anchor.log import Frontier, LogStore  # noqa: E402
from anchor.merkle import reference as ref  # noqa: E402
from anchor.merkle import sha256_hasher as H  # noqa: E402
from anchor.merkle import verify_consistency, verify_inclusion  # noqa: E402
from anchor.receipts import Receipt  # noqa: E402
from anchor.records import Record  # noqa: E402
from anchor.records.eip712 import recover_address  # noqa: E402
from anchor.records.ingest import Recorder, Submission  # noqa: E402
from anchor.records.registry import declare_model, register_provider  # noqa: E402
from anchor.settings import Settings  # noqa: E402
from tests.anchor.factory import (  # noqa: E402
    CHAIN_ID,
    CONTRACT,
    DOMAIN,
    LIMITS,
    MODEL,
    PROVIDER,
    RECEIPT_KEY,
    entry,
    make_record,
)

N_PROMPT, N_OUTPUT, TOPK, DBS = 64, 256, 128, 32
TARGET_BATCHED = 10_000
TARGET_PROOF_MS = 5.0
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


class Databases:
    """Fresh databases on the test server, dropped at the end."""

    def __init__(self) -> None:
        self.admin = make_url(Settings.from_env().test_postgres_url).set(drivername="postgresql")
        self.conn = psycopg.connect(self.admin.render_as_string(hide_password=False), autocommit=True)
        self.names: list[str] = []

    def fresh(self) -> tuple[str, str]:
        """(name, SQLAlchemy URL) of a new database migrated to head."""
        name = f"toploc_bench_{uuid.uuid4().hex[:10]}"
        self.conn.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        url = self.admin.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
        upgrade(url)
        return name, url

    def close(self) -> None:
        for name in self.names:
            self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(url: str) -> None:
    engine = make_engine(url)
    with transaction(session_factory(engine)) as s:
        register_provider(s, PROVIDER, "bench")
        declare_model(s, MODEL.name, MODEL.fingerprint, LIMITS)
    engine.dispose()


# --- CPU accounting from /proc -------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_tree(root: int) -> list[int]:
    """`root` and its descendants (uvicorn's worker processes are children of the supervisor)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := _stat(int(name))) is not None:
            parents[int(name)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += frontier
    return tree


def backends_of(database: str, autovacuum: bool | None = None) -> list[int]:
    """PostgreSQL backend processes serving `database` (their command line names it): all of them, or
    only its autovacuum workers (True) or only the others (False)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if database.encode() in cmdline and autovacuum in (None, b"autovacuum" in cmdline):
            pids.append(int(name))
    return pids


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICK


# --- the HTTP cases -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`toploc-audit serve` on a fresh database, as a subprocess."""

    def __init__(self, url: str, home: Path, workers: int) -> None:
        (home / "deployment.json").write_text(
            json.dumps({"chainId": CHAIN_ID, "addresses": {"ToplocAudit": CONTRACT}})
        )
        self.port = free_port()
        env = {
            **os.environ,
            "TOPLOC_AUDIT_HOME": str(home),
            "TOPLOC_AUDIT_DATABASE_URL": url,
            "TOPLOC_AUDIT_RECEIPT_KEY": RECEIPT_KEY.to_hex(),
            "TOPLOC_AUDIT_DEPLOYMENT": str(home / "deployment.json"),
            # The bench's provider has no API key, its records are from 2023, and its clients send
            # thousands of requests a second from one address: keys, record age and rate limits off.
            "TOPLOC_AUDIT_REQUIRE_API_KEY": "false",
            "TOPLOC_AUDIT_RECORD_MAX_AGE": "0",
            "TOPLOC_AUDIT_RATE_PER_KEY": "0",
            "TOPLOC_AUDIT_RATE_PER_ADDRESS": "0",
            # No chain here: stakes are not checked (they are read outside the log's lock, cached).
            "TOPLOC_AUDIT_STAKE_CHECK": "0",
        }
        cmd = [sys.executable, "-m", "toploc_audit", "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen([*cmd, "--workers", str(workers)], cwd=REPO, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with status {self.proc.returncode}")
            try:
                status, _ = self.request("GET", "/v1/log")
                if status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("the server did not start within 120 s")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            conn.request(method, path, body, {"content-type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def send_all(
    port: int,
    method: str,
    requests: Sequence[tuple[str, bytes | None]],
    connections: int,
    status: int,
    latencies: list[float] | None = None,
) -> float:
    """Send every (path, body) request once from `connections` threads with keep-alive; returns the
    seconds. Each request's seconds are appended to `latencies` if given; any answer other than
    `status` stops the run."""
    counter = itertools.count()
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        headers = {"content-type": "application/json"}
        while not errors and (i := next(counter)) < len(requests):
            path, body = requests[i]
            start = time.perf_counter()
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            text = response.read()
            if latencies is not None:
                latencies.append(time.perf_counter() - start)
            if response.status != status:
                errors.append(f"{method} {path}: HTTP {response.status}: {text[:300]!r}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        raise SystemExit(errors[0])
    return seconds


def post_all(
    port: int, path: str, bodies: Sequence[bytes], connections: int, latencies: list[float] | None = None
) -> float:
    """POST every body (each once) to `path`; see send_all."""
    return send_all(port, "POST", [(path, b) for b in bodies], connections, 201, latencies)


@dataclass
class HttpRun:
    lone_ms: tuple[float, float]
    """Latency of a lone single POST (one connection, one request at a time): p50, p99 in ms."""
    single_rate: float
    single_mb: float
    single_ms: tuple[float, float]
    """Latency of single POSTs from --single-connections connections: p50, p99 in ms."""
    batch_rate: float
    batch_mb: float
    server_us: float
    postgres_us: float
    """All backends of the database, autovacuum workers included."""
    autovacuum_us: float
    client_us: float


def http_run(
    dbs: Databases,
    singles: Sequence[bytes],
    batches: Sequence[bytes],
    n_batched: int,
    args: argparse.Namespace,
) -> HttpRun:
    name, url = dbs.fresh()
    seed(url)
    with tempfile.TemporaryDirectory() as home:
        server = Server(url, Path(home), args.workers)
        try:
            lone: list[float] = []
            post_all(server.port, "/v1/records", singles[: args.lone], 1, lone)
            concurrent: list[float] = []
            rest = singles[args.lone :]
            seconds = post_all(server.port, "/v1/records", rest, args.single_connections, concurrent)
            single_rate = len(rest) / seconds
            single_mb = sum(map(len, rest)) / seconds / 1e6
            pids = process_tree(server.proc.pid)
            server0, pg0, client0 = cpu_seconds(pids), cpu_seconds(backends_of(name)), time.process_time()
            vacuum0 = cpu_seconds(backends_of(name, autovacuum=True))
            seconds = post_all(server.port, "/v1/records:batch", batches, args.connections)
            server_cpu = cpu_seconds(pids) - server0
            pg_cpu = cpu_seconds(backends_of(name)) - pg0
            # Autovacuum workers come and go (insert-driven vacuums of the new rows): those seen at the end.
            vacuum_cpu = cpu_seconds(backends_of(name, autovacuum=True)) - vacuum0
            client_cpu = time.process_time() - client0
            status, body = server.request("GET", "/v1/log")
            size = json.loads(body)["size"]
            if status != 200 or size != len(singles) + n_batched:
                raise SystemExit(f"the log has {size} entries, want {len(singles) + n_batched}")
        finally:
            server.stop()
    return HttpRun(
        lone_ms=(quantile_ms(lone, 0.5), quantile_ms(lone, 0.99)),
        single_rate=single_rate,
        single_mb=single_mb,
        single_ms=(quantile_ms(concurrent, 0.5), quantile_ms(concurrent, 0.99)),
        batch_rate=n_batched / seconds,
        batch_mb=sum(map(len, batches)) / seconds / 1e6,
        server_us=server_cpu / n_batched * 1e6,
        postgres_us=pg_cpu / n_batched * 1e6,
        autovacuum_us=vacuum_cpu / n_batched * 1e6,
        client_us=client_cpu / n_batched * 1e6,
    )


# --- baseline, breakdown, proofs ------------------------------------------------------------------------


def realistic_entries(n: int, tag: str) -> list[dict]:
    rng = random.Random(tag)
    return [
        entry(make_record(f"{tag}-{i}", rng=rng, n_prompt=N_PROMPT, n_output=N_OUTPUT, topk=TOPK, dbs=DBS))
        for i in range(n)
    ]


def bench_naive(url: str, entries: Sequence[dict]) -> float:
    """One INSERT (the record's canonical bytes and its leaf) and one full rebuild per record."""
    conn = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    conn.execute(
        "CREATE TABLE naive_log (idx bigint primary key, leaf bytea not null, record bytea not null)"
    )
    conn.commit()
    records = [Record.from_json(e["record"]).canonical_bytes() for e in entries]
    start = time.perf_counter()
    for i, canonical in enumerate(records):
        with conn.transaction():
            leaf = H.hash_leaf(hashlib.sha256(canonical).digest())
            conn.execute("INSERT INTO naive_log VALUES (%s, %s, %s)", (i, leaf, canonical))
            stored = [bytes(r[0]) for r in conn.execute("SELECT leaf FROM naive_log ORDER BY idx")]
            ref.root(H, stored)
    rate = len(records) / (time.perf_counter() - start)
    conn.close()
    return rate


def best_us(fn: Callable[[], object], n: int, passes: int = 5) -> float:
    """CPU microseconds per item: the best of `passes` passes (CPU time of this process, so time spent
    waiting for a core that other processes hold does not count)."""
    best = float("inf")
    for _ in range(passes):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best / n * 1e6


def breakdown(dbs: Databases, entries: Sequence[dict]) -> list[tuple[str, float]]:
    """Per-record cost of each stage of ingestion, in-process (no HTTP), in microseconds."""
    n = len(entries)
    bodies = [json.dumps(e).encode() for e in entries]
    objs = [loads(b) for b in bodies]
    records = [Record.from_json(o["record"]) for o in objs]
    digests = [r.digest() for r in records]
    signatures = [bytes.fromhex(o["signature"][2:]) for o in objs]

    def canonical() -> None:
        for o in objs:  # fresh records: canonical bytes are cached on a record
            hashlib.sha256(Record.from_json(o["record"]).canonical_bytes()).digest()

    stages = [
        ("JSON parse", best_us(lambda: [loads(b) for b in bodies], n)),
        (
            "field validation (Record.from_json)",
            best_us(lambda: [Record.from_json(o["record"]) for o in objs], n),
        ),
    ]
    stages.append(("canonical bytes + SHA-256", best_us(canonical, n) - stages[1][1]))
    stages += [
        (
            "EIP-712 digest + signature recovery",
            best_us(
                lambda: [
                    recover_address(DOMAIN.record_digest(d), s)
                    for d, s in zip(digests, signatures, strict=True)
                ],
                n,
            ),
        ),
        (
            "receipt digest + signing (in the lock)",
            best_us(
                lambda: [Receipt(i, d, 1, 3600).sign(RECEIPT_KEY, DOMAIN) for i, d in enumerate(digests)], n
            ),
        ),
    ]
    subs = [Submission.from_json(o, DOMAIN) for o in objs]
    client, server = float("inf"), float("inf")
    for _ in range(3):  # CPU time, not wall time: the transaction also waits for the server
        name, url = dbs.fresh()
        seed(url)
        engine = make_engine(url)
        recorder = Recorder(session_factory(engine), DOMAIN, RECEIPT_KEY, 3600)
        with engine.connect():
            pass  # the pool's connection (and its backend process) exists before the clocks start
        backends = backends_of(name)
        cpu0, pg0 = time.process_time(), cpu_seconds(backends)
        recorder.submit(subs)
        client = min(client, (time.process_time() - cpu0) / n * 1e6)
        server = min(server, (cpu_seconds(backends) - pg0) / n * 1e6)
        engine.dispose()
    stages.append(("lock, lookups, frontier, COPY, commit (client CPU)", client - stages[-1][1]))
    stages.append(("the same transaction, PostgreSQL backend CPU", server))
    return stages


def build_big_log(url: str, n: int) -> list[bytes]:
    """Bulk path: compute each row with Frontier (the append code's own), COPY them in."""
    leaves = [H.hash_leaf(i.to_bytes(8, "big")) for i in range(n)]
    f = Frontier(H, 0, [])
    conn = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    with conn.cursor() as cur, cur.copy("COPY log_entries (idx, nodes) FROM STDIN") as copy:
        for i, leaf in enumerate(leaves):
            copy.write_row((i, b"".join(f.append(leaf))))
    conn.execute("UPDATE log_state SET size = %s WHERE id = 1", (n,))
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE log_entries")
    conn.close()
    return leaves


def quantile_ms(xs: Sequence[float], q: float) -> float:
    return sorted(xs)[round(q * (len(xs) - 1))] * 1000


def bench_proofs(dbs: Databases, n: int, samples: int) -> None:
    name, url = dbs.fresh()
    start = time.perf_counter()
    leaves = build_big_log(url, n)
    print(f"built a {n:,}-entry log by the bulk path in {time.perf_counter() - start:.1f} s", flush=True)
    engine = make_engine(url)
    rng = random.Random(7)
    with session_factory(engine)() as s:
        log = LogStore(s)
        root = log.root(n)
        for _ in range(20):  # warm the connection, the statement cache and the server's prepared plans
            log.inclusion_proof(rng.randrange(n), n)
            log.consistency_proof(rng.randrange(1, n), n)
        incl, cons = [], []
        backends = backends_of(name)
        cpu0, pg0 = time.process_time(), cpu_seconds(backends)
        for k in range(samples):
            i = rng.randrange(n)
            t = time.perf_counter()
            proof = log.inclusion_proof(i, n)
            incl.append(time.perf_counter() - t)
            verify_inclusion(H, i, n, leaves[i], proof, root)
            m = rng.randrange(1, n)
            t = time.perf_counter()
            cproof = log.consistency_proof(m, n)
            cons.append(time.perf_counter() - t)
            if k < 20:
                verify_consistency(H, m, n, cproof, log.root(m), root)
        # Per proof (inclusion and consistency alike), verification included: the work, as opposed to
        # the wall time, which on a busy machine also holds the waits for a free core.
        client_us = (time.process_time() - cpu0) / (2 * samples) * 1e6
        server_us = (cpu_seconds(backends) - pg0) / (2 * samples) * 1e6
    engine.dispose()
    start = time.perf_counter()
    ref.inclusion_proof(H, n // 3, leaves)
    naive_ms = (time.perf_counter() - start) * 1000
    p50, p99 = quantile_ms(incl, 0.5), quantile_ms(incl, 0.99)
    met = "met" if p99 < TARGET_PROOF_MS else "MISSED at p99" if p50 < TARGET_PROOF_MS else "MISSED"
    print(
        f"inclusion proof at {n:,} entries ({samples} random leaves): p50 {p50:.2f} ms, p99 {p99:.2f} ms,"
        f" max {max(incl) * 1000:.2f} ms (target < {TARGET_PROOF_MS:g} ms: {met})"
    )
    print(
        f"consistency proof at {n:,} entries: p50 {quantile_ms(cons, 0.5):.2f} ms,"
        f" p99 {quantile_ms(cons, 0.99):.2f} ms"
    )
    print(
        f"CPU per proof: {client_us:.0f} us here (query, folding, and the test's own verification),"
        f" {server_us:.0f} us in the PostgreSQL backend (one query)"
    )
    print(
        f"naive O(n) reference inclusion proof at {n:,} entries: {naive_ms:.0f} ms -> the stored log is"
        f" {naive_ms / p50:,.0f}x faster at p50"
    )


def spread(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    return f"median {statistics.median(values):,.0f} (min {min(values):,.0f}, max {max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000, help="records sent in batches (per run)")
    parser.add_argument("--batch", type=int, default=1000, help="records per batch request")
    parser.add_argument("--single", type=int, default=1000, help="records sent one per request (per run)")
    parser.add_argument("--lone", type=int, default=100, help="of those, sent one at a time (latency)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent connections sending batches")
    parser.add_argument(
        "--single-connections", type=int, default=16, help="concurrent connections sending single records"
    )
    parser.add_argument("--workers", type=int, default=2, help="server processes (`serve --workers`)")
    parser.add_argument("--repeat", type=int, default=3, help="HTTP runs, each on a fresh database")
    parser.add_argument("--naive", type=int, default=1000, help="records through the naive baseline")
    parser.add_argument("--sample", type=int, default=300, help="records in the in-process breakdown")
    parser.add_argument("--entries", type=int, default=1_000_000, help="log size for the proof latency")
    parser.add_argument("--samples", type=int, default=2000, help="proofs timed")
    args = parser.parse_args()

    print(f"building and signing {args.single + args.records:,} records ...", flush=True)
    singles = [json.dumps(e).encode() for e in realistic_entries(args.single, "single")]
    batched = realistic_entries(args.records, "batch")
    batches = [
        json.dumps({"entries": batched[i : i + args.batch]}).encode()
        for i in range(0, len(batched), args.batch)
    ]
    size = statistics.mean(map(len, singles))
    print(
        f"record: {N_PROMPT} prompt + {N_OUTPUT} output tokens, topk {TOPK}, decode_batching_size {DBS} ->"
        f" {1 + N_OUTPUT // DBS} proofs of {2 + 2 * TOPK} bytes; {size / 1000:.1f} KB of JSON per entry"
    )
    print(
        f"server: {args.workers} worker process(es); client: {args.single_connections} connections for"
        f" single records, {args.connections} for batches; "
        f"{os.cpu_count()} CPU cores on this machine, load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    dbs = Databases()
    try:
        runs = []
        for r in range(args.repeat):
            run = http_run(dbs, singles, batches, len(batched), args)
            runs.append(run)
            print(
                f"run {r + 1}: lone POST p50 {run.lone_ms[0]:.1f} ms, p99 {run.lone_ms[1]:.1f} ms;"
                f" single {run.single_rate:,.0f} rec/s ({run.single_mb:.1f} MB/s, p50 {run.single_ms[0]:.0f}"
                f" ms, p99 {run.single_ms[1]:.0f} ms); batched"
                f" {run.batch_rate:,.0f} rec/s ({run.batch_mb:.1f} MB/s); CPU per batched record: server"
                f" {run.server_us:.0f} us, PostgreSQL {run.postgres_us:.0f} us (autovacuum"
                f" {run.autovacuum_us:.0f} us),"
                f" client {run.client_us:.0f} us",
                flush=True,
            )
        _, naive_url = dbs.fresh()
        naive = bench_naive(naive_url, batched[: args.naive])
        single = [r.single_rate for r in runs]
        batch = [r.batch_rate for r in runs]
        best = max(batch)
        print(
            f"naive baseline (1 INSERT + full rebuild per record, {args.naive} records):"
            f" {naive:,.0f} records/s"
        )
        print(
            f"HTTP single POST, {args.single_connections} connections: {spread(single)} records/s ="
            f" {statistics.median(single) / naive:.1f}x the baseline;"
            f" {statistics.median(r.single_mb for r in runs):.1f} MB/s; latency p50"
            f" {statistics.median(r.single_ms[0] for r in runs):.0f} ms, p99"
            f" {statistics.median(r.single_ms[1] for r in runs):.0f} ms"
        )
        print(
            f"HTTP single POST, alone (1 connection, {args.lone} requests): latency p50"
            f" {statistics.median(r.lone_ms[0] for r in runs):.1f} ms, p99"
            f" {statistics.median(r.lone_ms[1] for r in runs):.1f} ms"
        )
        print(
            f"HTTP batched ({args.batch}/request): {spread(batch)} records/s ="
            f" {statistics.median(batch) / naive:.1f}x the baseline;"
            f" {statistics.median(r.batch_mb for r in runs):.1f} MB/s"
            f" (target {TARGET_BATCHED:,}/s: {'met' if best >= TARGET_BATCHED else 'MISSED'})"
        )
        cpu = statistics.median(r.server_us + r.postgres_us + r.client_us for r in runs)
        print(
            f"CPU per batched record, all processes: {cpu:.0f} us -> at most {2e6 / cpu:,.0f} records/s"
            " on 2 cores with nothing else running"
        )
        print(
            f"where a record's CPU goes (in-process, over {args.sample} records; best of 5 passes, of 3 for"
            " the database):"
        )
        stages = breakdown(dbs, batched[: args.sample])
        for name, us in stages:
            print(f"  {name:52s} {us:6.0f} us")
        print(f"  {'total':52s} {sum(us for _, us in stages):6.0f} us")
        bench_proofs(dbs, args.entries, args.samples)
    finally:
        dbs.close()


if __name__ == "__main__":
    main()
