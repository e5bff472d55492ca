"""anchor_orm.alembic: the autogenerate hook, and SQLite foreign keys during migrations."""

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.sql.sqltypes import AutoString
from sqlmodel.sql.sqltypes import UTCDateTime as SQLModelUTCDateTime

from anchor_orm import AnchorError, UTCDateTime
from anchor_orm.alembic import (
    LEGACY_SESSIONS_TABLE,
    ignore_legacy_sessions_table,
    render_item,
    sqlite_foreign_keys_off,
)
from anchor_orm.backends.implementations import anchor_sessions_table
from anchor_orm.testing import Backend, TestDatabase
from anchor_orm.testing import test_database as empty_database
from examples.app.models import User, UserSession

pytestmark = pytest.mark.anyio

AUTOGEN_CONTEXT: Any = SimpleNamespace(opts={"sqlalchemy_module_prefix": "sa."})


@pytest.mark.parametrize(
    ("column_type", "rendered"),
    [
        (UTCDateTime(), "sa.DateTime(timezone=True)"),
        (SQLModelUTCDateTime(), "sa.DateTime(timezone=True)"),
        (AutoString(length=22), "sa.String(length=22)"),
        (AutoString(), "sa.String()"),
    ],
)
def test_library_types_render_as_plain_sqlalchemy_types(column_type: Any, rendered: str) -> None:
    assert render_item("type", column_type, AUTOGEN_CONTEXT) == rendered


def test_the_rendered_types_make_the_same_ddl_as_the_models() -> None:
    for table in (User.__table__, UserSession.__table__):
        for column in table.columns:
            rendered = render_item("type", column.type, AUTOGEN_CONTEXT)
            if rendered is False:
                continue
            plain_type = eval(rendered, {"sa": sa})
            for dialect in (postgresql.dialect(), sqlite.dialect()):
                assert plain_type.compile(dialect=dialect) == column.type.compile(dialect=dialect), column


class AppOwnType(sa.types.TypeDecorator[str]):
    impl = sa.String
    cache_ok = True


def test_other_items_are_left_to_alembic() -> None:
    assert render_item("type", sa.Integer(), AUTOGEN_CONTEXT) is False
    assert render_item("type", AppOwnType(), AUTOGEN_CONTEXT) is False
    assert render_item("column", sa.Column("x", UTCDateTime()), AUTOGEN_CONTEXT) is False


def test_a_custom_module_prefix_is_kept() -> None:
    context: Any = SimpleNamespace(opts={"sqlalchemy_module_prefix": "sqlalchemy."})
    assert render_item("type", UTCDateTime(), context) == "sqlalchemy.DateTime(timezone=True)"


def test_the_legacy_sessions_table_is_left_out_and_nothing_else() -> None:
    assert anchor_sessions_table(sa.MetaData()).name == LEGACY_SESSIONS_TABLE
    assert ignore_legacy_sessions_table("anchor_sessions", "table", {}) is False
    assert ignore_legacy_sessions_table("user_session", "table", {}) is True
    assert ignore_legacy_sessions_table("anchor_sessions", "column", {"table_name": "x"}) is True


METADATA = sa.MetaData()
PARENT = sa.Table(
    "fk_parent",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)
CHILD = sa.Table(
    "fk_child",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("parent_id", sa.ForeignKey("fk_parent.id", ondelete="CASCADE"), nullable=False),
)


async def database_with_rows(database: TestDatabase) -> None:
    await database.create_tables(METADATA)
    async with database.engine.begin() as connection:
        await connection.execute(PARENT.insert().values(id=1, name="parent"))
        await connection.execute(CHILD.insert().values(id=1, parent_id=1))


def widen_parent_name(connection: sa.Connection) -> None:
    # On SQLite batch mode copies fk_parent and drops the old table; PostgreSQL ALTERs.
    with Operations(MigrationContext.configure(connection)).batch_alter_table("fk_parent") as batch:
        batch.alter_column("name", type_=sa.String(200), existing_nullable=False)


async def run_migration(database: TestDatabase, migration: Callable[[sa.Connection], None]) -> None:
    async with database.engine.connect() as connection:
        await connection.run_sync(migration)
        if not connection.invalidated:
            await connection.commit()


async def foreign_keys_of_a_pooled_connection(database: TestDatabase) -> int:
    async with database.engine.connect() as connection:
        return int((await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar_one())


async def child_ids(database: TestDatabase) -> list[int]:
    async with database.engine.connect() as connection:
        return list((await connection.execute(sa.select(CHILD.c.id))).scalars())


async def test_a_table_copy_with_foreign_keys_off_keeps_the_child_rows(backend: Backend) -> None:
    async with empty_database(backend) as database:
        await database_with_rows(database)

        def migration(connection: sa.Connection) -> None:
            with sqlite_foreign_keys_off(connection):
                widen_parent_name(connection)
                connection.commit()

        await run_migration(database, migration)
        assert await child_ids(database) == [1]

        async with database.engine.connect() as connection:
            await connection.execute(PARENT.delete())
            # Foreign keys are on again after the migration: the cascade works.
            assert list((await connection.execute(sa.select(CHILD.c.id))).scalars()) == []


async def test_without_it_sqlite_cascades_a_table_copy_into_the_children() -> None:
    # Why sqlite_foreign_keys_off exists: anchor_orm's engine turns foreign keys on.
    async with empty_database("sqlite") as database:
        await database_with_rows(database)
        await run_migration(database, widen_parent_name)
        assert await child_ids(database) == []


async def test_rows_a_migration_leaves_without_parent_are_refused(backend: Backend) -> None:
    async with empty_database(backend) as database:
        await database_with_rows(database)

        def migration(connection: sa.Connection) -> None:
            with sqlite_foreign_keys_off(connection):
                connection.execute(CHILD.insert().values(id=2, parent_id=999))
                connection.commit()

        expected = AnchorError if backend == "sqlite" else sa.exc.IntegrityError
        with pytest.raises(expected, match="fk_child"):
            await run_migration(database, migration)


async def test_a_connection_already_in_a_transaction_is_refused_on_sqlite(backend: Backend) -> None:
    async with empty_database(backend) as database:
        await database_with_rows(database)

        def migration(connection: sa.Connection) -> None:
            connection.execute(PARENT.update().values(name="renamed"))
            with sqlite_foreign_keys_off(connection):
                widen_parent_name(connection)

        if backend == "sqlite":
            with pytest.raises(AnchorError, match="inside a transaction"):
                await run_migration(database, migration)
        else:
            await run_migration(database, migration)
        assert await child_ids(database) == [1]


async def test_migrations_that_do_not_commit_inside_are_refused_and_leave_no_connection_without_foreign_keys(
    backend: Backend,
) -> None:
    async with empty_database(backend, pool_size=1, max_overflow=0) as database:
        await database_with_rows(database)

        def migration(connection: sa.Connection) -> None:
            with sqlite_foreign_keys_off(connection):
                widen_parent_name(connection)
            # committed only here, after the block: too late to turn foreign keys on

        if backend == "sqlite":
            with pytest.raises(AnchorError, match="did not commit inside"):
                await run_migration(database, migration)
            # The one pooled connection was discarded: the next one has foreign keys on.
            assert await foreign_keys_of_a_pooled_connection(database) == 1
        else:
            await run_migration(database, migration)
        assert await child_ids(database) == [1]
