"""Helpers for testing an application that uses anchor_orm.

- ``MovableClock``: pass it as ``Anchor(clock=...)`` and move time instead of sleeping.
- ``TestDatabase`` / ``test_database``: a throwaway database on SQLite or PostgreSQL
  with your tables, so one test suite runs on both.
- ``log_in``: log an httpx test client in as a user in one line.
- pytest fixtures built on these: ``pytest_plugins = ["anchor_orm.pytest_plugin"]``.
"""

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from anchor_orm._anchor import Anchor
from anchor_orm._engine import create_engine

Backend = Literal["sqlite", "postgresql"]
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


class MovableClock:
    """A UTC clock that stands still until a test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Moves time forward: ``clock.advance(minutes=5)``."""
        self.current += delta if delta is not None else timedelta(**kwargs)
        return self.current

    def set(self, moment: datetime) -> datetime:
        """Puts the clock at ``moment`` (timezone-aware), forward or back."""
        if moment.tzinfo is None:
            raise ValueError("MovableClock keeps timezone-aware UTC time: pass an aware datetime")
        self.current = moment.astimezone(UTC)
        return self.current


def postgres_url() -> str:
    """The server the PostgreSQL half of tests uses (ANCHOR_TEST_POSTGRES_URL)."""
    return os.environ.get("ANCHOR_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


async def postgres_unavailable_reason(url: str | None = None) -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    engine = create_engine(url or postgres_url(), poolclass=sa.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure means "not usable here"
        return f"PostgreSQL is not reachable at {url or postgres_url()}: {type(error).__name__}: {error}"
    finally:
        await engine.dispose()
    return None


@dataclass
class TestDatabase:
    """A throwaway database and an engine on it."""

    __test__ = False  # not a pytest test class

    backend: Backend
    url: sa.URL
    engine: AsyncEngine

    def session(self) -> AsyncSession:
        return AsyncSession(self.engine, expire_on_commit=False)

    async def create_tables(self, metadata: sa.MetaData) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    async def empty_tables(self, metadata: sa.MetaData) -> None:
        async with self.engine.begin() as connection:
            if self.backend == "postgresql":
                names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
                if names:
                    await connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(metadata.sorted_tables):
                    await connection.execute(table.delete())


@asynccontextmanager
async def test_database(backend: Backend, **engine_kwargs: Any) -> AsyncIterator[TestDatabase]:
    """A new empty database (a temporary SQLite file, or a new PostgreSQL database
    on the ANCHOR_TEST_POSTGRES_URL server), dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix="anchor-test-") as folder:
        database = await create_test_database(backend, Path(folder), **engine_kwargs)
        try:
            yield database
        finally:
            await drop_test_database(database)


async def create_test_database(backend: Backend, folder: Path, **engine_kwargs: Any) -> TestDatabase:
    """A new empty database: a SQLite file in ``folder``, or a new PostgreSQL database.

    ``test_database`` is the context-manager form; pair this with ``drop_test_database``.
    """
    if backend == "sqlite":
        url = sa.make_url(f"sqlite+aiosqlite:///{folder / f'test-{secrets.token_hex(4)}.db'}")
        return TestDatabase(backend, url, create_engine(url, **engine_kwargs))
    server_url = sa.make_url(postgres_url())
    name = f"anchor_test_{secrets.token_hex(6)}"
    await _postgres_admin(server_url, f'CREATE DATABASE "{name}"')
    url = server_url.set(database=name)
    return TestDatabase(backend, url, create_engine(url, **engine_kwargs))


async def drop_test_database(database: TestDatabase) -> None:
    """Closes the engine and drops a PostgreSQL database (a SQLite file goes with its folder)."""
    await database.engine.dispose()
    if database.backend == "postgresql":
        server_url = sa.make_url(postgres_url())
        await _postgres_admin(server_url, f'DROP DATABASE IF EXISTS "{database.url.database}" WITH (FORCE)')


# Its name starts with "test": imported into a test module, pytest would collect it.
test_database.__test__ = False  # type: ignore[attr-defined]


async def _postgres_admin(server_url: sa.URL, statement: str) -> None:
    engine = create_engine(server_url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def log_in(
    client: Any,
    anchor: Anchor[Any],
    db: "AsyncSession | AsyncEngine | TestDatabase",
    user: Any,
    *,
    bearer: bool = False,
    **create_kwargs: Any,
) -> str:
    """Logs ``client`` in as ``user`` in one line: a committed session and its cookie.

        token = await log_in(client, anchor, database, alice)

    ``db`` is an AsyncSession (committed here), an engine or a TestDatabase (a session
    of its own is opened). ``bearer=True`` sends ``Authorization: Bearer`` instead of
    the cookie. ``create_kwargs`` go to ``repository.create`` (remember, user_agent...).
    The signed token is returned.
    """
    if isinstance(db, AsyncSession):
        issued = await anchor.repository(db).create(user, **create_kwargs)
        await db.commit()
    else:
        engine = db.engine if isinstance(db, TestDatabase) else db
        async with AsyncSession(engine, expire_on_commit=False) as own_db:
            user_state = sa.inspect(user)
            if user_state.session is not None and user_state.identity is not None:
                # The user belongs to a session the test still has open: adding the new
                # session here would try to move the user across; use this session's copy.
                user = await own_db.get(type(user), user_state.identity)
            issued = await anchor.repository(own_db).create(user, **create_kwargs)
            await own_db.commit()
    if bearer:
        client.headers["Authorization"] = f"Bearer {issued.token}"
    else:
        client.cookies.set(anchor.cookie.name, issued.token)
    return issued.token


def run(coroutine: Any) -> Any:
    """Runs a coroutine from synchronous code (pytest session fixtures)."""
    return asyncio.run(coroutine)
