"""Bringing the database schema up to date before the app starts.

TEMPORARY SHIM: ``examples.app.migrate.upgrade_to_head`` (Alembic, branch
``migrations``) is the real way. Until that branch is merged this falls back to
``SQLModel.metadata.create_all``, which creates missing tables but never alters one.
Delete the fallback once migrate.py is in main.
"""

import asyncio
import inspect
import logging

from sqlmodel import SQLModel

import examples.app.models  # noqa: F401 - registers the tables on SQLModel.metadata
from anchor_orm import create_engine

logger = logging.getLogger("examples.app")


def bring_schema_up_to_date(database_url: str) -> str:
    """Migrates ``database_url`` to the newest schema; says how it did it."""
    try:
        from examples.app.migrate import upgrade_to_head  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ModuleNotFoundError as missing:
        if missing.name != "examples.app.migrate":
            raise
        asyncio.run(_create_all(database_url))
        return "created missing tables (temporary create_all shim; Alembic migrations not merged yet)"
    outcome = upgrade_to_head(database_url)
    if inspect.isawaitable(outcome):
        asyncio.run(outcome)  # type: ignore[arg-type]
    return "migrated to head (alembic)"


async def _create_all(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
    finally:
        await engine.dispose()
