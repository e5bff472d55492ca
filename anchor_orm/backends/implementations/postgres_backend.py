"""Sessions as rows of the ``anchor_sessions`` table: logging out deletes the row.

Despite its name (kept from fastapi-anchor 0.1.1) it is plain SQLAlchemy and works on
PostgreSQL and SQLite, against a table that 0.1.1 created: same columns, same types.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from anchor_orm._errors import ConfigurationError
from anchor_orm.backends.session_backend import BackendError, SessionBackend

FOURTEEN_DAYS_SECONDS = 14 * 24 * 60 * 60
TABLE_NAME = "anchor_sessions"
# The columns fastapi-anchor 0.1.1 created; the backend needs every one of them.
REQUIRED_COLUMNS = ("id", "user_id", "expires_at", "created_at")

Model = TypeVar("Model", bound=BaseModel)
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PostgresSessionData(BaseModel):
    """The default session payload: who, and until when."""

    user_id: str
    expires_at: datetime
    created_at: datetime


# fastapi-anchor 0.1.1's name for it in this module.
SessionData = PostgresSessionData


def anchor_sessions_table(metadata: sa.MetaData, *extra_columns: sa.Column[Any]) -> sa.Table:
    """The ``anchor_sessions`` table, the same as fastapi-anchor 0.1.1 made it.

    ``extra_columns`` store the extra fields of your own session model, one column per
    field, named like the field: ``anchor_sessions_table(metadata, Column("role", String(20)))``.
    """
    return sa.Table(
        TABLE_NAME,
        metadata,
        # Uuid is UUID on PostgreSQL (as 0.1.1's postgresql.UUID) and 32 hex characters
        # elsewhere, which is also how 0.1.1's type stored it on SQLite.
        sa.Column("id", sa.Uuid(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False, index=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *extra_columns,
    )


class PostgresBackend(SessionBackend[UUID, Model]):
    """Stores sessions in a SQL table; ``delete`` is a real logout.

    ``async_session_factory`` is either an ``async_sessionmaker`` (each call runs in a
    transaction of its own, committed at once, as in 0.1.1) or the application's own
    ``AsyncSession``: then the writes join the application's transaction, and
    committing it stays the application's job.

    ``expire_seconds`` is the longest a session lives: a write never sets ``expires_at``
    further than that ahead, and a model without ``expires_at`` gets exactly that.
    ``session_model`` is the model ``read`` returns; its fields other than the four
    base columns need columns of their own (see ``anchor_sessions_table``).
    """

    @overload
    def __init__(
        self: "PostgresBackend[PostgresSessionData]",
        async_session_factory: async_sessionmaker[Any] | AsyncSession,
        *,
        table: sa.Table,
        expire_seconds: int = FOURTEEN_DAYS_SECONDS,
        clock: Clock = _utc_now,
    ) -> None: ...

    @overload
    def __init__(
        self,
        async_session_factory: async_sessionmaker[Any] | AsyncSession,
        *,
        table: sa.Table,
        expire_seconds: int = FOURTEEN_DAYS_SECONDS,
        session_model: type[Model],
        clock: Clock = _utc_now,
    ) -> None: ...

    def __init__(
        self,
        async_session_factory: async_sessionmaker[Any] | AsyncSession,
        *,
        table: sa.Table,
        expire_seconds: int = FOURTEEN_DAYS_SECONDS,
        session_model: type[Any] = PostgresSessionData,
        clock: Clock = _utc_now,
    ) -> None:
        if expire_seconds <= 0:
            raise ConfigurationError(f"expire_seconds={expire_seconds}: give a positive number of seconds.")
        missing = [name for name in REQUIRED_COLUMNS if name not in table.c]
        if missing:
            raise ConfigurationError(
                f"table {table.name!r} lacks the column(s) {', '.join(missing)}: build it with "
                "anchor_sessions_table(metadata)."
            )
        self._source = async_session_factory
        self._table = table
        self._lifetime = timedelta(seconds=expire_seconds)
        self._model: type[Model] = session_model
        self._clock = clock
        self._check_model_fits(session_model)

    async def create(self, session_id: UUID, data: Model) -> None:
        now = self._now()
        values = self._row_values(data, now)
        if values.get("created_at") is None:
            values["created_at"] = now
        async with self._connection() as connection:
            inserted = await _insert_unless_taken(connection, self._table, {"id": session_id, **values})
        if not inserted:
            raise BackendError("create can't overwrite an existing session")

    async def read(self, session_id: UUID) -> Model | None:
        table = self._table
        async with self._connection() as connection:
            row = (await connection.execute(sa.select(table).where(table.c.id == session_id))).first()
        if row is None:
            return None
        values = {
            key: _as_utc(value) if isinstance(value, datetime) else value
            for key, value in row._mapping.items()
        }
        if values["expires_at"] <= self._now():
            return None
        fields = self._model.model_fields
        return self._model.model_validate({key: value for key, value in values.items() if key in fields})

    async def update(self, session_id: UUID, data: Model) -> None:
        table = self._table
        now = self._now()
        # An expired session stays expired: an update must not revive it.
        statement = (
            table.update()
            .where(table.c.id == session_id, table.c.expires_at > now)
            .values(self._row_values(data, now))
        )
        async with self._connection() as connection:
            updated = await connection.execute(statement)
        if updated.rowcount == 0:
            raise BackendError("session does not exist, cannot update")

    async def delete(self, session_id: UUID) -> None:
        table = self._table
        async with self._connection() as connection:
            await connection.execute(table.delete().where(table.c.id == session_id))

    async def purge_expired(self) -> int:
        """Deletes the expired rows; the count deleted."""
        table = self._table
        async with self._connection() as connection:
            purged = await connection.execute(table.delete().where(table.c.expires_at <= self._now()))
        return purged.rowcount

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        if isinstance(self._source, AsyncSession):
            # The caller's session: run inside its transaction and leave the commit to it.
            # The connection, not session.execute: SQLModel's AsyncSession warns on execute.
            yield await self._source.connection()
            return
        async with self._source() as session, session.begin():
            yield await session.connection()

    def _now(self) -> datetime:
        return _as_utc(self._clock())

    def _row_values(self, data: BaseModel, now: datetime) -> dict[str, Any]:
        self._check_model_fits(type(data))
        values = data.model_dump()
        for key, value in values.items():
            if isinstance(value, datetime):
                values[key] = _as_utc(value)
        # The column is a string; asyncpg refuses an int user id for it.
        if values["user_id"] is not None:
            values["user_id"] = str(values["user_id"])
        if values.get("created_at") is None:
            # Missing from the model, or None: create fills it, update leaves it alone.
            values.pop("created_at", None)
        longest = now + self._lifetime
        requested = values.get("expires_at")
        values["expires_at"] = longest if requested is None else min(requested, longest)
        return values

    def _check_model_fits(self, model: type[BaseModel]) -> None:
        # A field without a column would be dropped on write and missing on read.
        homeless = [name for name in model.model_fields if name not in self._table.c or name == "id"]
        if homeless:
            raise ConfigurationError(
                f"{model.__name__} has field(s) {', '.join(homeless)} with no column in table "
                f"{self._table.name!r}: add one per field, e.g. anchor_sessions_table(metadata, "
                f"Column({homeless[0]!r}, String(255))), and to the database; 'id' is the session id "
                "and cannot be a field."
            )
        if "user_id" not in model.model_fields:
            raise ConfigurationError(f"{model.__name__} needs a user_id field: the table requires it.")


def _as_utc(moment: datetime) -> datetime:
    # Naive values are taken as UTC, as fastapi-anchor 0.1.1 read them; SQLite returns
    # every stored datetime naive.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


async def _insert_unless_taken(connection: AsyncConnection, table: sa.Table, row: dict[str, Any]) -> bool:
    """Inserts ``row`` unless its id exists; whether it did.

    A taken id must not raise: on PostgreSQL an error aborts the caller's whole
    transaction. ON CONFLICT DO NOTHING reports it as "0 rows" instead.
    """
    dialect_name = connection.dialect.name
    if dialect_name in ("postgresql", "sqlite"):
        dialect_insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
        statement = dialect_insert(table).values(row).on_conflict_do_nothing(index_elements=[table.c.id])
        return (await connection.execute(statement)).rowcount == 1
    # Other databases: check first (racing creates of one random UUID are not a concern).
    if (await connection.execute(sa.select(table.c.id).where(table.c.id == row["id"]))).first():
        return False
    await connection.execute(table.insert().values(row))
    return True
