"""Many rows in one go: COPY on PostgreSQL, executemany elsewhere; and IN-lists that stay one statement.

The recorder writes a batch of records and their log rows under the append lock, so these helpers are
on its critical path. SQLAlchemy's executemany sends one INSERT per row (pipelined) and costs several
times the CPU of one COPY stream, on the client and on the server. Binary COPY also spares both sides
the hex text form of bytea: for 1000 records of ~5 KB, the server's CPU went from ~120 to ~45 us a
record (text COPY to binary COPY, with migration 0003's uncompressed storage of `records.canonical`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from psycopg import sql
from sqlalchemy import ColumnElement, FromClause, Table, any_, bindparam, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session

from anchor.db.engine import is_postgresql


def insert_rows(
    session: Session, table: FromClause, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert `rows` (tuples in `columns` order) inside the session's current transaction.

    Requires plain column types (int, str, bytes, bool, None): values are sent as they are, without the
    model's type decorators. A constraint violation raises and aborts the transaction, as an INSERT would.
    `table` is a model's `__table__`.
    """
    assert isinstance(table, Table)
    if not rows:
        return
    if not is_postgresql(session):
        session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    # The driver connection of the session's own transaction, so the COPY commits or rolls back with it.
    conn = session.connection().connection.driver_connection
    assert conn is not None
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types([_postgresql_type(table, c) for c in columns])
        for row in rows:
            copy.write_row(row)


def _postgresql_type(table: Table, column: str) -> str:
    """The column's type name as psycopg knows it ("bigint", "bytea", "varchar"...), from the model.

    Binary COPY needs the exact server types; the models and the migrations agree (the PostgreSQL tests
    write through here), so a mismatch fails loudly rather than converting silently.
    """
    return str(table.c[column].type.compile(dialect=postgresql.dialect())).split("(")[0].lower()


def one_of(
    session: Session, column: InstrumentedAttribute[Any], values: Collection[Any]
) -> ColumnElement[bool]:
    """`column IN values` as one bound array on PostgreSQL (`= ANY(:values)`), a plain IN elsewhere.

    An IN-list of 1000 values is 1000 bind parameters to render and a new statement each time; one array
    parameter keeps the statement fixed (so psycopg prepares it once and the server reuses its plan) and
    uses the index the same way.
    """
    if is_postgresql(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def values_by_key(
    session: Session, table: FromClause, key: str, value: str, keys: Collection[Any]
) -> dict[Any, Any]:
    """{key: value} for the rows of `table` whose `key` column is in `keys`, in one statement.

    On PostgreSQL this goes straight to the driver with one array parameter: for an inclusion proof
    (about 20 keys), building and running the statement through SQLAlchemy took twice the client CPU of
    the driver's whole round trip (bench/bench_ingest.py), and a fixed statement text lets psycopg
    prepare it once per connection. Elsewhere it is an IN-list through SQLAlchemy. `table` is a model's
    `__table__`.
    """
    assert isinstance(table, Table)
    if not keys:
        return {}
    if not is_postgresql(session):
        stmt = select(table.c[key], table.c[value]).where(table.c[key].in_(list(keys)))
        return {k: v for k, v in session.execute(stmt)}
    conn = session.connection().connection.driver_connection
    assert conn is not None
    statement = sql.SQL("SELECT {k}, {v} FROM {t} WHERE {k} = ANY(%s)").format(
        k=sql.Identifier(key), v=sql.Identifier(value), t=sql.Identifier(table.name)
    )
    return dict(conn.execute(statement, (list(keys),)).fetchall())
