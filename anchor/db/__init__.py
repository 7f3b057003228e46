"""The database: models, engines and sessions, and the schema check (migrations live in migrations/)."""

from anchor.db.engine import is_postgresql, make_engine, session_factory, transaction
from anchor.db.migrate import (
    SchemaBehindError,
    check_schema,
    current_revision,
    head_revision,
    open_database,
    upgrade,
)

__all__ = [
    "SchemaBehindError",
    "check_schema",
    "current_revision",
    "head_revision",
    "is_postgresql",
    "make_engine",
    "open_database",
    "session_factory",
    "transaction",
    "upgrade",
]
