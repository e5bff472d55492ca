"""Alembic environment of the example app: async, URL from DATABASE_URL.

Run from the repository root: ``alembic -c migrations/alembic.ini upgrade head``, or
``examples.app.migrate.upgrade_to_head(url)`` from Python.
"""

import asyncio
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import examples.app.audit  # registers AuditLog on SQLModel.metadata (ruff sees one "examples" import)
import examples.app.models  # noqa: F401 - registers User and UserSession on SQLModel.metadata
from anchor_orm import create_engine
from anchor_orm.alembic import render_item, sqlite_foreign_keys_off
from examples.app.migrate import database_url

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    # Keep the loggers the app (uvicorn...) set up before migrating.
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata
URL: str = config.attributes.get("database_url") or database_url()

CONFIGURE_OPTIONS = {
    "target_metadata": target_metadata,
    # Writes anchor_orm's and SQLModel's column types as plain sa. types.
    "render_item": render_item,
    # SQLite cannot ALTER most things: batch mode copies the table instead (and runs
    # plain ALTERs on PostgreSQL), so one revision works on both.
    "render_as_batch": True,
}


def run_migrations_offline() -> None:
    """``alembic upgrade head --sql``: prints the SQL instead of running it."""
    context.configure(url=URL, literal_binds=True, dialect_opts={"paramstyle": "named"}, **CONFIGURE_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, **CONFIGURE_OPTIONS)
    # anchor_orm's engine turns SQLite foreign keys on; a batch table copy with them on
    # would cascade-delete child rows (see sqlite_foreign_keys_off).
    with sqlite_foreign_keys_off(connection), context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    # anchor_orm's engine: on SQLite, a busy timeout (and foreign keys, off while migrating).
    engine = create_engine(URL, poolclass=sa.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
