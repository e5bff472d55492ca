"""An async engine with the per-connection settings sessions rely on."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# How long a SQLite writer waits for the lock before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 15_000


def create_engine(url: str | sa.URL, **kwargs: Any) -> AsyncEngine:
    """``create_async_engine`` plus, on SQLite, foreign keys and a busy timeout.

    SQLite ignores ON DELETE CASCADE unless every connection turns foreign keys on,
    so deleting a user would leave its sessions behind; and concurrent writers fail
    at once with "database is locked" unless they are told to wait.
    """
    engine = create_async_engine(async_url(url), **kwargs)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    return engine


# The async driver for each plain URL scheme: people copy DATABASE_URL from elsewhere.
_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def async_url(url: str | sa.URL) -> sa.URL:
    """``url`` with the async driver when it names none (postgresql://, sqlite://)."""
    parsed = sa.make_url(url)
    if parsed.drivername in _ASYNC_DRIVERS:
        return parsed.set(drivername=_ASYNC_DRIVERS[parsed.drivername])
    return parsed


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()
