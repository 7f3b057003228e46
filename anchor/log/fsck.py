"""fsck: recompute everything the log stores from the records and compare.

Steps, streaming in index order so memory stays O(chunk + log n):
1. each record's canonical bytes hash to its recordDigest;
2. each leaf equals leaf(provider, recordDigest) of the record at that index (and every index has one);
3. each row of log_entries equals the nodes a fresh incremental tree completes at that leaf;
4. each checkpoint's root equals the root recomputed from the leaves at its size;
5. log_state.size equals the number of leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from anchor.db.models import Checkpoint, LogEntry, LogState, Provider, Record
from anchor.leaf import leaf_hash
from anchor.log.compact import Frontier
from anchor.merkle.hasher import sha256_hasher

CHUNK = 10_000
MAX_PROBLEMS = 100


@dataclass
class FsckReport:
    leaves: int = 0
    records: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


def fsck(sessions: sessionmaker[Session], progress: Callable[[int, int], None] | None = None) -> FsckReport:
    """Check the whole log; `progress(done, total)` is called after each chunk."""
    report = FsckReport()
    with sessions() as s:
        size = int(s.execute(select(LogState.size)).scalar_one())
        rows = int(s.execute(select(func.count()).select_from(LogEntry)).scalar_one())
        checkpoints = list(
            s.execute(select(Checkpoint.size, Checkpoint.root, Checkpoint.id).order_by(Checkpoint.size))
        )
    if rows != size:
        report.problem(f"log_state.size is {size} but log_entries has {rows} rows")
    total = max(size, rows)
    frontier = Frontier(sha256_hasher, 0, [])
    cp_iter = iter(checkpoints)
    next_cp = next(cp_iter, None)
    index = 0
    while index < total:
        with sessions() as s:
            entries = s.execute(
                select(LogEntry.idx, LogEntry.nodes)
                .where(LogEntry.idx >= index, LogEntry.idx < index + CHUNK)
                .order_by(LogEntry.idx)
            ).all()
            records = {
                r.log_index: r
                for r in s.execute(
                    select(Record.log_index, Record.canonical, Record.record_digest, Provider.address)
                    .join(Provider, Provider.id == Record.provider_id)
                    .where(Record.log_index >= index, Record.log_index < index + CHUNK)
                )
            }
        report.records += len(records)
        for idx, nodes in entries:
            if idx != frontier.size:
                report.problem(f"leaf {frontier.size} is missing (next stored row is {idx})")
                return report  # every later node depends on it
            rec = records.get(idx)
            if rec is None:
                report.problem(f"leaf {idx} has no record")
            else:
                if hashlib.sha256(rec.canonical).digest() != rec.record_digest:
                    report.problem(f"record {idx}: canonical bytes do not hash to its recordDigest")
                if leaf_hash(rec.address, rec.record_digest) != nodes[:32]:
                    report.problem(f"leaf {idx} is not leaf(provider, recordDigest) of its record")
            want = b"".join(frontier.append(nodes[:32]))
            if nodes != want:
                report.problem(f"row {idx}: stored nodes differ from the recomputed ones")
            report.leaves += 1
            while next_cp is not None and next_cp.size == frontier.size:
                if frontier.root() != next_cp.root:
                    report.problem(
                        f"checkpoint {next_cp.id} (size {next_cp.size}): root {next_cp.root.hex()} "
                        f"!= recomputed {frontier.root().hex()}"
                    )
                report.checkpoints += 1
                next_cp = next(cp_iter, None)
        if not entries:
            break
        index += CHUNK
        if progress:
            progress(min(index, total), total)
    if next_cp is not None:
        report.problem(
            f"checkpoint {next_cp.id} has size {next_cp.size}, beyond the log's {frontier.size} leaves"
        )
    return report
