"""The example app's migrations (migrations/ at the repository root), on both databases.

Alembic runs as a separate process, as a user runs it: this process's SQLModel.metadata
also holds the test suite's tables, which `alembic check` would report as missing.
"""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import Depends
from sqlmodel import col, delete, func, select

from anchor_orm import Anchor
from anchor_orm.testing import Backend, TestDatabase
from anchor_orm.testing import test_database as empty_database
from examples.app.migrate import upgrade_to_head
from examples.app.models import User, UserSession

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_INI = str(REPO_ROOT / "migrations" / "alembic.ini")
SECRET_KEY = "migration-test-secret-key-0123456789abcdef"

# Marked here, at collection: conftest marks async tests only after parametrizing, and
# anyio then re-parametrizes a test that does not already use anyio_backend, dropping
# its `backend` parameter.
pytestmark = pytest.mark.anyio


# Everything upgrade head creates: the users, their sessions and the audit log.
APP_TABLES = {"alembic_version", "user", "user_session", "audit_log"}


def url_of(database: TestDatabase) -> str:
    return database.url.render_as_string(hide_password=False)


# Runs alembic's command line once per argv, in one process: each command is exactly
# what `alembic ...` runs, and the imports are paid once. Stops at the first failure.
_RUN_ALEMBIC_COMMANDS = """
import json, sys
from alembic.config import main
for argv in json.loads(sys.argv[1]):
    print("$ alembic " + " ".join(argv), flush=True)
    main(argv=argv, prog="alembic")
"""


async def alembic(*commands: list[str], url: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """Runs alembic commands (argv lists) against ``url``, given as DATABASE_URL."""
    # No bytecode: a test rewrites models.py within the same second, and a stale .pyc
    # with the same size and mtime would be loaded instead.
    env = {**os.environ, "DATABASE_URL": url, "PYTHONDONTWRITEBYTECODE": "1"}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _RUN_ALEMBIC_COMMANDS, json.dumps(commands)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"alembic failed:\n{output}"
    return output


def example(*args: str) -> list[str]:
    """An alembic command on the example app's environment."""
    return ["-c", EXAMPLE_INI, *args]


async def inspect_db(database: TestDatabase, read: Callable[[sa.Inspector], Any]) -> Any:
    async with database.engine.connect() as connection:
        return await connection.run_sync(lambda sync_connection: read(sa.inspect(sync_connection)))


async def table_names(database: TestDatabase) -> set[str]:
    return set(await inspect_db(database, lambda inspector: inspector.get_table_names()))


async def test_alembic_upgrade_check_and_downgrade_on_an_empty_database(backend: Backend) -> None:
    async with empty_database(backend) as database:
        url = url_of(database)
        output = succeeded(await alembic(example("upgrade", "head"), example("check"), url=url))
        assert "No new upgrade operations detected" in output
        assert await table_names(database) == APP_TABLES

        succeeded(await alembic(example("downgrade", "base"), url=url))
        assert await table_names(database) == {"alembic_version"}
        async with database.engine.connect() as connection:
            versions = (await connection.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
        assert versions == []


async def test_alembic_check_notices_a_database_that_differs_from_the_models(backend: Backend) -> None:
    async with empty_database(backend) as database:
        url = url_of(database)
        succeeded(await alembic(example("upgrade", "head"), url=url))
        async with database.engine.begin() as connection:
            await connection.execute(sa.text("DROP INDEX ix_user_session_expires_at"))

        check = await alembic(example("check"), url=url)
        assert check.returncode != 0
        assert "ix_user_session_expires_at" in check.stdout + check.stderr


async def test_upgrade_to_head_migrates_and_can_run_again(backend: Backend) -> None:
    async with empty_database(backend) as database:
        url = url_of(database)
        await asyncio.to_thread(upgrade_to_head, url, configure_logging=False)
        # The app calls it at every start: a database already at head stays as it is.
        await asyncio.to_thread(upgrade_to_head, url, configure_logging=False)

        async with database.engine.connect() as connection:
            versions = (await connection.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
        assert versions == [("0003",)]
        assert await table_names(database) == APP_TABLES


async def test_offline_mode_prints_the_sql(backend: Backend) -> None:
    async with empty_database(backend) as database:
        result = await alembic(example("upgrade", "head", "--sql"), url=url_of(database))
        sql = succeeded(result)
        assert "CREATE TABLE user_session" in sql
        assert "CREATE TABLE audit_log" in sql
        assert "ON DELETE CASCADE" in sql
        # --sql only prints: nothing was created.
        assert await table_names(database) == set()


async def test_migrated_session_table_has_the_hot_path_indexes(backend: Backend) -> None:
    async with empty_database(backend) as database:
        await asyncio.to_thread(upgrade_to_head, url_of(database), configure_logging=False)

        primary_key = await inspect_db(database, lambda i: i.get_pk_constraint("user_session"))
        indexes = await inspect_db(database, lambda i: i.get_indexes("user_session"))
        foreign_keys = await inspect_db(database, lambda i: i.get_foreign_keys("user_session"))

    # validate: one SELECT by primary key.
    assert primary_key["constrained_columns"] == ["id"]
    # list and revoke_all: by user_id; purge_expired: by expires_at.
    assert {index["name"]: index["column_names"] for index in indexes} == {
        "ix_user_session_user_id": ["user_id"],
        "ix_user_session_expires_at": ["expires_at"],
    }
    assert not any(index["unique"] for index in indexes)
    (foreign_key,) = foreign_keys
    assert foreign_key["constrained_columns"] == ["user_id"]
    assert (foreign_key["referred_table"], foreign_key["referred_columns"]) == ("user", ["id"])
    assert foreign_key["options"].get("ondelete") == "CASCADE"


async def test_migrated_audit_log_is_read_by_user_and_goes_with_the_user(backend: Backend) -> None:
    async with empty_database(backend) as database:
        await asyncio.to_thread(upgrade_to_head, url_of(database), configure_logging=False)

        indexes = await inspect_db(database, lambda i: i.get_indexes("audit_log"))
        foreign_keys = await inspect_db(database, lambda i: i.get_foreign_keys("audit_log"))

    # audit_entries: one user's entries, newest first.
    assert {index["name"]: index["column_names"] for index in indexes} == {
        "ix_audit_log_user_id": ["user_id"],
        "ix_audit_log_at": ["at"],
    }
    (foreign_key,) = foreign_keys
    assert (foreign_key["referred_table"], foreign_key["referred_columns"]) == ("user", ["id"])
    assert foreign_key["options"].get("ondelete") == "CASCADE"


async def test_deleting_a_user_deletes_its_sessions(backend: Backend) -> None:
    async with empty_database(backend) as database:
        await asyncio.to_thread(upgrade_to_head, url_of(database), configure_logging=False)
        anchor = Anchor(UserSession, db=Depends(lambda: None), secret_keys=[SECRET_KEY])

        async with database.session() as db:
            leaving = User(email="leaving@example.com", password_hash="x")
            staying = User(email="staying@example.com", password_hash="x")
            db.add_all([leaving, staying])
            await db.flush()
            sessions = anchor.repository(db)
            await sessions.create(leaving)
            await sessions.create(leaving)
            kept = await sessions.create(staying)
            await db.commit()
            leaving_id = leaving.id

        async with database.session() as db:
            # A plain DELETE, not the ORM: the database itself must cascade.
            await db.exec(delete(User).where(col(User.id) == leaving_id))
            await db.commit()

        async with database.session() as db:
            remaining = (await db.exec(select(UserSession.id, UserSession.user_id))).all()
            orphans = (
                await db.exec(
                    select(func.count())
                    .select_from(UserSession)
                    .where(col(UserSession.user_id) == leaving_id)
                )
            ).one()

    assert orphans == 0
    assert remaining == [(kept.session.id, staying.id)]
