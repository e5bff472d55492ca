"""Brings the database schema up to date before the app starts.

The real way is Alembic: ``examples.app.migrate.upgrade_to_head`` (written on the
``migrations`` branch), the same as ``alembic -c migrations/alembic.ini upgrade head``.

TEMPORARY SHIM: until that branch is merged, migrate.py does not exist and this falls
back to ``SQLModel.metadata.create_all``, which creates missing tables but never alters
one. Delete the fallback (``_create_all`` and the except branch) once migrate.py is in main.
"""

import asyncio

from sqlmodel import SQLModel

import examples.app.models  # noqa: F401 - registers the tables on SQLModel.metadata
from anchor_orm import create_engine


def bring_schema_up_to_date(database_url: str) -> str:
    """Migrates ``database_url`` to the newest schema; says how. Call it from sync code
    (before the server starts): Alembic's env.py runs its own event loop."""
    try:
        from examples.app.migrate import upgrade_to_head  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ModuleNotFoundError as missing:
        if missing.name != "examples.app.migrate":
            raise
        asyncio.run(_create_all(database_url))
        return "created missing tables (temporary create_all shim: Alembic migrations not merged yet)"
    upgrade_to_head(database_url)
    return "migrated to head (alembic)"


async def _create_all(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
    finally:
        await engine.dispose()
