"""The benchmark database and its rows, loaded fast: COPY on PostgreSQL, executemany on SQLite.

Only the database named in the URL (``anchor_bench`` by default) is created or changed;
it is created when missing and its tables are dropped and made anew on every run.
"""

import base64
import hashlib
import os
import secrets
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlmodel import SQLModel

from anchor_orm import create_engine
from benchmarks._models import (
    ANCHOR_ORM_COLUMNS,
    ANCHOR_ORM_TABLES,
    USER_TABLE,
    FastapiUsersBase,
    fastapi_anchor_metadata,
)

IDLE_TIMEOUT = timedelta(days=14)
ABSOLUTE_LIFETIME = timedelta(days=90)
SQLITE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def asyncpg_dsn(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(url: sa.URL) -> None:
    """Creates the benchmark database if it is missing; touches no other database."""
    admin = await asyncpg.connect(asyncpg_dsn(url.set(database="postgres")))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        await admin.close()


async def create_postgres_schema(url: sa.URL) -> None:
    engine = create_engine(url, poolclass=sa.NullPool)
    try:
        async with engine.begin() as connection:
            for table in ("accesstoken", "anchor_sessions", *ANCHOR_ORM_TABLES):
                await connection.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
            await connection.execute(sa.text(f'DROP TABLE IF EXISTS "{USER_TABLE}" CASCADE'))
            await connection.run_sync(FastapiUsersBase.metadata.create_all)
            await connection.run_sync(SQLModel.metadata.create_all)
            await connection.run_sync(fastapi_anchor_metadata.create_all)
    finally:
        await engine.dispose()


async def create_sqlite_schema(url: sa.URL) -> None:
    engine = create_engine(url, poolclass=sa.NullPool)
    try:
        async with engine.begin() as connection:
            # WAL: readers go on while the purge writes, as a production SQLite app would run.
            await connection.execute(sa.text("PRAGMA journal_mode=WAL"))
            await connection.run_sync(FastapiUsersBase.metadata.create_all)
            await connection.run_sync(SQLModel.metadata.create_all)
    finally:
        await engine.dispose()


def user_email(user_id: int) -> str:
    return f"user{user_id}@bench.example"


def user_rows(user_count: int) -> list[tuple[Any, ...]]:
    # The password hash is never checked here: login is measured without hashing.
    return [(i, user_email(i), "not-a-hash", True, False, True) for i in range(1, user_count + 1)]


USER_COLUMNS = ["id", "email", "hashed_password", "is_active", "is_superuser", "is_verified"]


def random_ids(count: int, byte_count: int) -> list[str]:
    """``count`` URL-safe random strings, made in one call (token_urlsafe per row is slow)."""
    raw = os.urandom(count * byte_count)
    return [
        base64.urlsafe_b64encode(raw[i * byte_count : (i + 1) * byte_count]).rstrip(b"=").decode("ascii")
        for i in range(count)
    ]


@dataclass
class AnchorOrmSessions:
    """anchor_orm-shaped session rows and the unsigned tokens that open them."""

    ids: list[str]
    secrets: list[str]
    user_ids: list[int]

    def token(self, index: int) -> str:
        return f"{self.ids[index]}.{self.secrets[index]}"

    def rows(
        self, now: datetime, *, expired: bool = False, last_seen_at: datetime | None = None
    ) -> Iterable[tuple[Any, ...]]:
        # Rows that share a secret share its hash: hashing each once keeps loading fast.
        hashes: dict[str, str] = {}
        seen = last_seen_at or now
        expires_at = now - timedelta(hours=1) if expired else now + IDLE_TIMEOUT
        absolute = now + ABSOLUTE_LIFETIME
        for session_id, secret, user_id in zip(self.ids, self.secrets, self.user_ids, strict=True):
            secret_hash = hashes.get(secret)
            if secret_hash is None:
                secret_hash = hashes[secret] = hashlib.sha256(secret.encode("ascii")).hexdigest()
            yield (session_id, secret_hash, seen, seen, expires_at, absolute, seen, True, user_id)


def make_anchor_orm_sessions(user_ids: Sequence[int], *, shared_secret: bool = False) -> AnchorOrmSessions:
    """One session per entry of ``user_ids``; ``shared_secret`` for filler rows (fast)."""
    count = len(user_ids)
    ids = random_ids(count, 16)
    secret_list = [secrets.token_urlsafe(32)] * count if shared_secret else random_ids(count, 32)
    return AnchorOrmSessions(ids, secret_list, list(user_ids))


async def copy_rows(url: sa.URL, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.copy_records_to_table(table, records=rows, columns=columns)
        await connection.execute(f'ANALYZE "{table}"')
    finally:
        await connection.close()


async def load_postgres_users(url: sa.URL, user_count: int) -> None:
    await copy_rows(url, USER_TABLE, USER_COLUMNS, user_rows(user_count))


async def load_postgres_anchor_orm(
    url: sa.URL, table: str, sessions: AnchorOrmSessions, now: datetime, *, expired: bool = False
) -> None:
    await copy_rows(url, table, ANCHOR_ORM_COLUMNS, sessions.rows(now, expired=expired))


def make_fastapi_anchor_rows(user_ids: Sequence[int], now: datetime) -> tuple[list[uuid.UUID], list[Any]]:
    session_ids = [uuid.UUID(bytes=raw, version=4) for raw in _chunks(os.urandom(16 * len(user_ids)), 16)]
    rows = [
        (session_id, str(user_id), now + IDLE_TIMEOUT, now)
        for session_id, user_id in zip(session_ids, user_ids, strict=True)
    ]
    return session_ids, rows


def make_fastapi_users_rows(user_ids: Sequence[int], now: datetime) -> tuple[list[str], list[Any]]:
    # fastapi-users' own token format: secrets.token_urlsafe(), 43 characters.
    tokens = random_ids(len(user_ids), 32)
    rows = [(token, now, user_id) for token, user_id in zip(tokens, user_ids, strict=True)]
    return tokens, rows


def _chunks(raw: bytes, size: int) -> Iterable[bytes]:
    return (raw[i : i + size] for i in range(0, len(raw), size))


# --- SQLite: plain sqlite3 executemany, in the format SQLAlchemy's UTCDateTime stores.


def sqlite_datetime(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).strftime(SQLITE_DATETIME_FORMAT)


def sqlite_insert(path: str, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> None:
    connection = sqlite3.connect(path)
    try:
        placeholders = ", ".join("?" for _ in columns)
        column_list = ", ".join(columns)
        with connection:
            connection.executemany(f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})", rows)
        connection.execute("ANALYZE")
    finally:
        connection.close()


def sqlite_anchor_orm_rows(rows: Iterable[tuple[Any, ...]]) -> Iterable[tuple[Any, ...]]:
    formatted: dict[datetime, str] = {}

    def text(value: datetime) -> str:
        # The rows share a handful of instants: format each once.
        found = formatted.get(value)
        if found is None:
            found = formatted[value] = sqlite_datetime(value)
        return found

    for row in rows:
        session_id, secret_hash, created, seen, expires, absolute, authenticated, remember, user_id = row
        yield (
            session_id,
            secret_hash,
            text(created),
            text(seen),
            text(expires),
            text(absolute),
            text(authenticated),
            1 if remember else 0,
            user_id,
        )
