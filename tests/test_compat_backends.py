"""InMemoryBackend and PostgresBackend of the fastapi-anchor API; the SQL one on both databases."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.schema import CreateIndex, CreateTable

from anchor_orm import BackendError, ConfigurationError
from anchor_orm.backends.implementations import (
    InMemoryBackend,
    PostgresBackend,
    PostgresSessionData,
    anchor_sessions_table,
)
from anchor_orm.testing import MovableClock, TestDatabase
from anchor_orm.testing import test_database as fresh_database

DAY = timedelta(days=1)


class SessionData(BaseModel):
    user_id: str


class RoleSession(BaseModel):
    """A custom session model: the base fields and one of its own."""

    user_id: str
    expires_at: datetime
    created_at: datetime
    role: str


class SecondsClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def legacy_table(metadata: sa.MetaData) -> sa.Table:
    """The table exactly as fastapi-anchor 0.1.1's anchor_sessions_table defined it."""
    return sa.Table(
        "anchor_sessions",
        metadata,
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False, index=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


# --- in memory -------------------------------------------------------------------------


async def test_in_memory_sessions_expire():
    clock = SecondsClock()
    backend: InMemoryBackend[UUID, SessionData] = InMemoryBackend(expire_seconds=60, clock=clock)
    session_id = uuid4()
    await backend.create(session_id, SessionData(user_id="u"))
    clock.now += 59
    assert await backend.read(session_id) == SessionData(user_id="u")
    await backend.update(session_id, SessionData(user_id="v"))
    clock.now += 1
    assert await backend.read(session_id) is None
    with pytest.raises(BackendError):
        await backend.update(session_id, SessionData(user_id="w"))


async def test_in_memory_holds_only_live_sessions():
    clock = SecondsClock()
    backend: InMemoryBackend[UUID, SessionData] = InMemoryBackend(expire_seconds=60, clock=clock)
    for _ in range(100):
        await backend.create(uuid4(), SessionData(user_id="u"))
    clock.now += 60
    await backend.create(uuid4(), SessionData(user_id="new"))
    assert [data.user_id for data in backend.data.values()] == ["new"]


async def test_in_memory_default_lifetime_is_fourteen_days():
    clock = SecondsClock()
    backend: InMemoryBackend[UUID, SessionData] = InMemoryBackend(clock=clock)
    session_id = uuid4()
    await backend.create(session_id, SessionData(user_id="u"))
    clock.now += 14 * 24 * 3600 - 1
    assert await backend.read(session_id) is not None
    clock.now += 1
    assert await backend.read(session_id) is None


async def test_in_memory_delete_twice_or_unknown_is_fine():
    backend: InMemoryBackend[UUID, SessionData] = InMemoryBackend()
    session_id = uuid4()
    await backend.create(session_id, SessionData(user_id="u"))
    await backend.delete(session_id)
    await backend.delete(session_id)
    await backend.delete(uuid4())
    assert await backend.read(session_id) is None


async def test_in_memory_create_cannot_overwrite_and_keeps_copies():
    backend: InMemoryBackend[UUID, SessionData] = InMemoryBackend()
    session_id = uuid4()
    data = SessionData(user_id="u")
    await backend.create(session_id, data)
    with pytest.raises(BackendError):
        await backend.create(session_id, SessionData(user_id="intruder"))
    data.user_id = "changed by the caller"
    updated = SessionData(user_id="v")
    await backend.update(session_id, updated)
    updated.user_id = "changed again"
    assert await backend.read(session_id) == SessionData(user_id="v")


async def test_custom_model_with_extra_fields_round_trips_in_memory():
    backend: InMemoryBackend[UUID, RoleSession] = InMemoryBackend()
    session_id = uuid4()
    now = datetime.now(UTC)
    data = RoleSession(user_id="u", created_at=now, expires_at=now + DAY, role="admin")
    await backend.create(session_id, data)
    assert await backend.read(session_id) == data


# --- SQL, on SQLite and PostgreSQL ---------------------------------------------------------


@pytest.fixture(scope="module")
async def sql_database(backend) -> AsyncIterator[tuple[TestDatabase, sa.Table]]:
    """One database per backend for this module, with the anchor_sessions table and
    one extra column for RoleSession."""
    metadata = sa.MetaData()
    table = anchor_sessions_table(metadata, sa.Column("role", sa.String(20)))
    async with fresh_database(backend) as database:
        await database.create_tables(metadata)
        yield database, table


@pytest.fixture
async def sql(sql_database) -> tuple[TestDatabase, sa.Table]:
    database, table = sql_database
    async with database.engine.begin() as connection:
        await connection.execute(table.delete())
    return database, table


def factory(database: TestDatabase) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(database.engine, class_=AsyncSession, expire_on_commit=False)


async def count_rows(database: TestDatabase, table: sa.Table) -> int:
    async with database.engine.connect() as connection:
        return (await connection.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


async def test_sql_create_read_update_delete(sql):
    database, table = sql
    clock = MovableClock()
    backend = PostgresBackend(factory(database), table=table, clock=clock)
    session_id = uuid4()
    data = PostgresSessionData(user_id="42", created_at=clock(), expires_at=clock() + DAY)
    await backend.create(session_id, data)
    assert await backend.read(session_id) == data
    changed = data.model_copy(update={"user_id": "43"})
    await backend.update(session_id, changed)
    assert await backend.read(session_id) == changed
    await backend.delete(session_id)
    assert await backend.read(session_id) is None
    assert await count_rows(database, table) == 0
    await backend.delete(session_id)  # logging out twice is not an error
    await backend.delete(uuid4())
    with pytest.raises(BackendError):
        await backend.update(session_id, changed)


async def test_sql_expire_seconds_is_honoured(sql):
    database, table = sql
    clock = MovableClock()
    backend = PostgresBackend(factory(database), table=table, expire_seconds=60, clock=clock)
    asks_for_a_year = uuid4()
    await backend.create(
        asks_for_a_year,
        PostgresSessionData(user_id="u", created_at=clock(), expires_at=clock() + timedelta(days=365)),
    )
    gives_no_expiry = uuid4()
    await backend.create(gives_no_expiry, SessionData(user_id="u"))  # a model without the timestamps
    for session_id in (asks_for_a_year, gives_no_expiry):
        stored = await backend.read(session_id)
        assert stored is not None
        assert stored.expires_at == clock() + timedelta(seconds=60)
        assert stored.created_at == clock()
    clock.advance(seconds=60)
    assert await backend.read(asks_for_a_year) is None
    assert await backend.read(gives_no_expiry) is None


async def test_sql_shorter_expiry_than_expire_seconds_is_kept(sql):
    database, table = sql
    clock = MovableClock()
    backend = PostgresBackend(factory(database), table=table, clock=clock)
    session_id = uuid4()
    await backend.create(
        session_id,
        PostgresSessionData(user_id="u", created_at=clock(), expires_at=clock() + timedelta(hours=1)),
    )
    clock.advance(minutes=59)
    assert await backend.read(session_id) is not None
    clock.advance(minutes=1)
    assert await backend.read(session_id) is None


async def test_sql_update_never_revives_an_expired_session(sql):
    database, table = sql
    clock = MovableClock()
    backend = PostgresBackend(factory(database), table=table, expire_seconds=60, clock=clock)
    session_id = uuid4()
    await backend.create(session_id, SessionData(user_id="u"))
    clock.advance(seconds=61)
    with pytest.raises(BackendError):
        await backend.update(
            session_id, PostgresSessionData(user_id="u", created_at=clock(), expires_at=clock() + DAY)
        )
    assert await backend.read(session_id) is None
    assert await backend.purge_expired() == 1
    assert await count_rows(database, table) == 0


async def test_sql_create_cannot_overwrite(sql):
    database, table = sql
    backend = PostgresBackend(factory(database), table=table)
    session_id = uuid4()
    await backend.create(session_id, SessionData(user_id="first"))
    with pytest.raises(BackendError, match="overwrite"):
        await backend.create(session_id, SessionData(user_id="second"))
    stored = await backend.read(session_id)
    assert stored is not None and stored.user_id == "first"


async def test_sql_joins_the_callers_transaction_and_never_commits_it(sql):
    database, table = sql
    # TestDatabase.session() is SQLModel's AsyncSession: no deprecation warning either.
    async with database.session() as db:
        backend = PostgresBackend(db, table=table)
        kept, dropped = uuid4(), uuid4()
        await backend.create(dropped, SessionData(user_id="u"))
        assert await backend.read(dropped) is not None  # visible inside the transaction
        await db.rollback()
        assert await backend.read(dropped) is None

        await backend.create(kept, SessionData(user_id="u"))
        # A duplicate is refused without breaking the caller's transaction.
        with pytest.raises(BackendError):
            await backend.create(kept, SessionData(user_id="u"))
        assert db.in_transaction()
        assert await count_rows(database, table) == 0  # not committed by the backend
        await db.commit()
    assert await count_rows(database, table) == 1


async def test_custom_model_with_extra_fields_round_trips_in_sql(sql):
    database, table = sql
    backend = PostgresBackend(factory(database), table=table, session_model=RoleSession)
    session_id = uuid4()
    now = datetime.now(UTC).replace(microsecond=0)
    data = RoleSession(user_id="u", created_at=now, expires_at=now + DAY, role="admin")
    await backend.create(session_id, data)
    stored = await backend.read(session_id)
    assert type(stored) is RoleSession
    assert stored == data


async def test_model_field_without_a_column_is_refused_with_the_fix(sql):
    database, _ = sql

    class Plain(BaseModel):
        user_id: str
        theme: str

    table = anchor_sessions_table(sa.MetaData())
    with pytest.raises(ConfigurationError, match=r"theme.*anchor_sessions_table\(metadata, Column"):
        PostgresBackend(factory(database), table=table, session_model=Plain)
    backend = PostgresBackend(factory(database), table=table)
    with pytest.raises(ConfigurationError, match="theme"):
        await backend.create(uuid4(), Plain(user_id="u", theme="dark"))


async def test_sessions_in_a_table_made_by_fastapi_anchor_0_1_1_survive(backend):
    async with fresh_database(backend) as database:
        old_metadata = sa.MetaData()
        old_table = legacy_table(old_metadata)
        await database.create_tables(old_metadata)
        existing_id = uuid4()
        created_at = datetime.now(UTC).replace(microsecond=0)
        async with database.engine.begin() as connection:  # a row written by 0.1.1
            await connection.execute(
                old_table.insert().values(
                    id=existing_id, user_id="7", expires_at=created_at + DAY, created_at=created_at
                )
            )

        sessions = PostgresBackend(factory(database), table=anchor_sessions_table(sa.MetaData()))
        assert await sessions.read(existing_id) == PostgresSessionData(
            user_id="7", expires_at=created_at + DAY, created_at=created_at
        )
        new_id = uuid4()
        await sessions.create(new_id, SessionData(user_id="8"))
        async with database.engine.connect() as connection:  # and 0.1.1 can read ours back
            rows = (await connection.execute(sa.select(old_table.c.id, old_table.c.user_id))).all()
        assert sorted(rows, key=lambda row: row.user_id) == [(existing_id, "7"), (new_id, "8")]
        await sessions.delete(existing_id)
        assert await sessions.read(existing_id) is None


def test_table_ddl_on_postgresql_is_the_one_0_1_1_made():
    dialect = postgresql.dialect()

    def ddl(table: sa.Table) -> list[str]:
        statements = [CreateTable(table), *(CreateIndex(index) for index in table.indexes)]
        return [str(statement.compile(dialect=dialect)) for statement in statements]

    assert ddl(anchor_sessions_table(sa.MetaData())) == ddl(legacy_table(sa.MetaData()))


def test_table_without_the_base_columns_is_refused():
    table = sa.Table("anchor_sessions", sa.MetaData(), sa.Column("id", sa.Uuid, primary_key=True))
    with pytest.raises(ConfigurationError, match="user_id, expires_at, created_at"):
        PostgresBackend(async_sessionmaker(), table=table)
