"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, shared by several processes.

kombu creates the broker's tables and each missing queue row by checking then creating, under a lock
of its own process only. Workers starting together on a fresh file raced: one died with "table
kombu_queue already exists" or a UNIQUE failure on kombu_queue.name (seen once in `make demo`). Both
first-time steps now run under an exclusive lock on `<broker file>.lock`, so kombu's own check sees
what another process created. A queue that already exists is found without taking the lock.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import sqlalchemy as sqla_transport

SQLITE_PREFIX = "sqlite:///"


@contextmanager
def _file_lock(path: str) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SharedSQLiteChannel(sqla_transport.Channel):  # type: ignore[misc]
    """kombu's SQLAlchemy channel with its first-time steps serialised across processes."""

    def _lock(self) -> Any:
        return _file_lock(self.connection.client.hostname.removeprefix(SQLITE_PREFIX) + ".lock")

    def _open(self) -> Any:
        with self._lock():
            return super()._open()

    def _get_or_create(self, queue: str) -> Any:
        found = self.session.query(self.queue_cls).filter(self.queue_cls.name == queue).first()
        if found is not None:
            return found
        with self._lock():
            return super()._get_or_create(queue)


def use_shared_sqlite_channel() -> None:
    """Make kombu's SQLAlchemy transport use SharedSQLiteChannel (for sqla+sqlite:/// brokers)."""
    sqla_transport.Transport.Channel = SharedSQLiteChannel
