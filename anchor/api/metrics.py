"""GET /metrics in the Prometheus text format (prometheus_client), and the access log.

Counted in the process: records ingested (created or replayed), records refused by status and field,
request latency by method, route template and status. Read from the database at each scrape (so every
server process answers the same): the log's size, the entries waiting for an anchor (beyond the latest
anchored checkpoint) and the anchor lag (seconds since the oldest of them was logged; 0 when none waits).

With `serve --workers N`, the per-process counters go through prometheus_client's multiprocess mode:
`serve` sets PROMETHEUS_MULTIPROC_DIR (a fresh folder) before the workers start, and a scrape of any
worker sums the files of all of them. Without it (one process, tests) each app has its own registry.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import fields

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from anchor.db.models import Record as RecordRow
from anchor.log import checkpoints
from anchor.log.store import LogStore

ACCESS_LOG = logging.getLogger("anchor.api.access")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_INDEX = re.compile(r"\[\d+\]")


def _known_names() -> frozenset[str]:
    from anchor.records.record import RECORD_FIELDS, RECORD_FIELDS_V1
    from gpu_core.runner.decoding import DecodeSpec

    names = {*RECORD_FIELDS, *RECORD_FIELDS_V1, *(f.name for f in fields(DecodeSpec))}
    names |= {"record", "signature", "body", "entries", "authorization", "content-length", "report"}
    names |= {"name", "fingerprint", "tokenizer", "topk", "decode_batching_size"}
    names |= {"temperature", "top_p", "top_k", "seed", "max_new_tokens"}  # version 1 sampling
    return frozenset(names)


_KNOWN = _known_names()


def field_label(field: str | None) -> str:
    """A bounded label for a refused record's field: indexes dropped (`entries[7].record.proofs[2]` ->
    `record.proofs[]`), and `other` for names the record format does not have (an unknown field is
    named by the client, and labels must not grow with what clients send)."""
    if not field:
        return "none"
    label = _INDEX.sub("[]", field).removeprefix("entries[].")
    parts = label.replace("[]", "").split(".")
    return label if len(label) <= 80 and all(p in _KNOWN for p in parts) else "other"


class _LogCollector(Collector):
    """Gauges read from the database at scrape time."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], float]) -> None:
        self.sessions = sessions
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.sessions() as s:
            size = LogStore(s).size()
            anchored = checkpoints.latest_anchored(s)
            covered = 0 if anchored is None else anchored.size
            oldest = s.scalar(select(RecordRow.logged_at).where(RecordRow.log_index == covered))
        waiting = size - covered
        lag = 0.0 if waiting <= 0 or oldest is None else max(0.0, self.clock() - oldest)
        yield GaugeMetricFamily("toploc_audit_log_size", "Entries in the log", value=size)
        yield GaugeMetricFamily(
            "toploc_audit_entries_unanchored",
            "Entries beyond the latest anchored checkpoint (waiting for an anchor)",
            value=max(0, waiting),
        )
        yield GaugeMetricFamily(
            "toploc_audit_anchor_lag_seconds",
            "Seconds since the oldest entry waiting for an anchor was logged (0 when none waits)",
            value=lag,
        )


class Metrics:
    """The recorder's metrics; one per app."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], float] = time.time) -> None:
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        # In multiprocess mode the values live in files shared by the workers, not in a registry.
        self.registry = CollectorRegistry(auto_describe=True)
        own = None if self.multiprocess_dir else self.registry
        self.ingested = Counter(
            "toploc_audit_records_ingested",
            "Records accepted: created (appended) or replayed (already logged: its receipt again)",
            ["outcome"],
            registry=own,
        )
        self.refused = Counter(
            "toploc_audit_records_refused",
            "Record writes refused, by HTTP status and the field at fault",
            ["status", "field"],
            registry=own,
        )
        self.latency = Histogram(
            "toploc_audit_request_seconds",
            "Request latency, by method, route template and status",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=own,
        )
        self._log = _LogCollector(sessions, clock)
        if own is not None:
            self.registry.register(self._log)

    def refuse(self, status: int, field: str | None, count: int = 1) -> None:
        self.refused.labels(str(status), field_label(field)).inc(count)

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        registry.register(self._log)
        return generate_latest(registry)
