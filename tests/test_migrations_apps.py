"""An application's own migrations, as README.md's Migrations section tells it to write them.

Each test builds an app in a temporary folder: `alembic init -t async`, the README's
env.py and models, then autogenerate, upgrade and check through the alembic command
line, on SQLite and on PostgreSQL.
"""

import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from anchor_orm.backends.implementations import anchor_sessions_table
from anchor_orm.testing import Backend, TestDatabase
from anchor_orm.testing import test_database as empty_database
from tests.test_migrations import REPO_ROOT, alembic, inspect_db, succeeded, table_names, url_of
from tests.test_readme import readme_section, runnable_snippets

pytestmark = pytest.mark.anyio

README_SECTION = readme_section("Migrations")
# The snippets, by their first line. env.py is fenced ```py: it runs only under Alembic,
# and tests/test_readme.py runs every ```python block of README.md on its own.
ENV_PY = "# migrations/env.py"
USERS = "# myapp/models.py"
SESSIONS = "# continues: add the session model to myapp/models.py"


def readme_snippets() -> dict[str, str]:
    """The ```python and ```py blocks of the README section, by their first line."""
    blocks = re.findall(r"^```(?:python|py)\n(.*?)^```", README_SECTION, flags=re.DOTALL | re.MULTILINE)
    return {block.splitlines()[0]: block for block in blocks}


SNIPPETS = readme_snippets()


def test_every_python_snippet_of_the_readme_section_runs_here() -> None:
    assert set(SNIPPETS) == {ENV_PY, USERS, SESSIONS}


def test_the_readme_section_passes_the_readme_test_once_spliced(tmp_path: Path) -> None:
    # What tests/test_readme.py does with README.md: each ```python block (with its
    # "# continues" blocks) runs alone, in an empty folder, warnings as errors.
    for snippet in runnable_snippets(README_SECTION):
        completed = subprocess.run(
            [sys.executable, "-W", "error", "-c", snippet],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert completed.returncode == 0, f"{snippet}\n{completed.stderr}"


@dataclass
class SampleApp:
    """An app in a folder of its own: package myapp, and migrations/ from alembic init."""

    folder: Path
    url: str

    @classmethod
    def create(cls, folder: Path, url: str) -> "SampleApp":
        # What `alembic init -t async migrations` writes (in this process: it only copies files).
        command.init(Config(str(folder / "alembic.ini")), str(folder / "migrations"), template="async")
        (folder / "myapp").mkdir()
        (folder / "myapp" / "__init__.py").write_text("")
        app = cls(folder, url)
        app.write_env(SNIPPETS[ENV_PY])
        return app

    def write_env(self, source: str) -> None:
        (self.folder / "migrations" / "env.py").write_text(source)

    def write_models(self, *snippets: str) -> None:
        (self.folder / "myapp" / "models.py").write_text("\n\n".join(snippets))

    async def alembic(self, *commands: list[str]) -> str:
        return succeeded(await alembic(*commands, url=self.url, cwd=self.folder))

    def upgrade_source(self, revision_id: str) -> str:
        """The upgrade() of a revision autogenerate wrote."""
        (path,) = (self.folder / "migrations" / "versions").glob(f"{revision_id}_*.py")
        code = path.read_text().split('"""', 2)[2]  # after the docstring
        # The revision stands on its own: no library module it would have to import.
        assert "anchor_orm" not in code
        assert "sqlmodel" not in code
        return code.split("def upgrade()")[1].split("def downgrade()")[0]


def autogenerate(revision_id: str, message: str) -> list[str]:
    return ["revision", "--autogenerate", "--rev-id", revision_id, "-m", message]


UPGRADE = ["upgrade", "head"]
CHECK = ["check"]
NO_DIFFERENCE = "No new upgrade operations detected"


def tables_created(upgrade: str) -> set[str]:
    return set(re.findall(r"op\.create_table\('(\w+)'", upgrade))


def tables_dropped(upgrade: str) -> set[str]:
    return set(re.findall(r"op\.drop_table\('(\w+)'", upgrade))


async def fetch_all(database: TestDatabase, sql: str) -> list[Any]:
    async with database.engine.connect() as connection:
        return list((await connection.execute(sa.text(sql))).all())


async def execute(database: TestDatabase, *statements: str) -> None:
    async with database.engine.begin() as connection:
        for statement in statements:
            await connection.execute(sa.text(statement))


ADD_USER = (
    """INSERT INTO "user" (email, name, joined_at) VALUES ('ada@example.com', 'Ada', '2026-01-01 00:00:00')"""
)
ADD_SESSION = """
    INSERT INTO user_session (id, secret_hash, created_at, last_seen_at, expires_at,
        absolute_expires_at, authenticated_at, remember, user_id)
    SELECT 'sid', 'hash', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-15 00:00:00',
        '2026-04-01 00:00:00', '2026-01-01 00:00:00', TRUE, id FROM "user"
"""


async def test_an_app_with_users_adds_sessions_in_a_new_revision(backend: Backend, tmp_path: Path) -> None:
    async with empty_database(backend) as database:
        app = SampleApp.create(tmp_path, url_of(database))
        app.write_models(SNIPPETS[USERS])
        await app.alembic(autogenerate("0001", "users"), UPGRADE)
        assert tables_created(app.upgrade_source("0001")) == {"user"}
        await execute(database, ADD_USER)

        app.write_models(SNIPPETS[USERS], SNIPPETS[SESSIONS])
        output = await app.alembic(autogenerate("0002", "user sessions"), UPGRADE, CHECK)
        assert NO_DIFFERENCE in output
        sessions_upgrade = app.upgrade_source("0002")
        assert tables_created(sessions_upgrade) == {"user_session"}
        assert "drop" not in sessions_upgrade
        assert "alter_column" not in sessions_upgrade

        assert await fetch_all(database, 'SELECT email FROM "user"') == [("ada@example.com",)]
        indexes = await inspect_db(database, lambda i: i.get_indexes("user_session"))
        assert {index["name"]: index["column_names"] for index in indexes} == {
            "ix_user_session_user_id": ["user_id"],
            "ix_user_session_expires_at": ["expires_at"],
        }

        await app.alembic(["downgrade", "-1"])
        assert await table_names(database) == {"alembic_version", "user"}
        assert await fetch_all(database, 'SELECT email FROM "user"') == [("ada@example.com",)]
        await app.alembic(["downgrade", "base"])
        assert await table_names(database) == {"alembic_version"}


async def test_changing_a_user_column_later_keeps_every_session(backend: Backend, tmp_path: Path) -> None:
    # On SQLite, batch mode copies `user` and drops the old table: with foreign keys on
    # (anchor_orm.create_engine), that would cascade-delete every session.
    async with empty_database(backend) as database:
        app = SampleApp.create(tmp_path, url_of(database))
        app.write_models(SNIPPETS[USERS], SNIPPETS[SESSIONS])
        await app.alembic(autogenerate("0001", "users and sessions"), UPGRADE)
        await execute(database, ADD_USER, ADD_SESSION)

        longer_names = SNIPPETS[USERS].replace("max_length=100", "max_length=150")
        assert longer_names != SNIPPETS[USERS]
        app.write_models(longer_names, SNIPPETS[SESSIONS])
        output = await app.alembic(autogenerate("0002", "longer names"), UPGRADE, CHECK)
        assert NO_DIFFERENCE in output
        assert "alter_column('name'" in app.upgrade_source("0002")

        assert await fetch_all(database, "SELECT id FROM user_session") == [("sid",)]
        foreign_keys = await inspect_db(database, lambda i: i.get_foreign_keys("user_session"))
        assert [fk["options"].get("ondelete") for fk in foreign_keys] == ["CASCADE"]


# How such an app made its tables before it had migrations.
CREATE_ALL = """
import asyncio, os
from sqlmodel import SQLModel
import myapp.models
from anchor_orm import create_engine
from tests.test_readme import readme_section

async def create_all():
    engine = create_engine(os.environ["DATABASE_URL"])
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
    await engine.dispose()

asyncio.run(create_all())
"""


async def run_python(code: str, *, url: str, cwd: Path) -> None:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONDONTWRITEBYTECODE": "1"}
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


async def test_an_app_without_migrations_stamps_a_baseline_then_adds_sessions(
    backend: Backend, tmp_path: Path
) -> None:
    async with empty_database(backend) as database, empty_database(backend) as scratch:
        app = SampleApp.create(tmp_path, url_of(database))
        app.write_models(SNIPPETS[USERS])
        await run_python(CREATE_ALL, url=app.url, cwd=tmp_path)
        await execute(database, ADD_USER)

        # The baseline: autogenerated against an empty database, so that it creates users.
        succeeded(await alembic(autogenerate("0001", "baseline"), url=url_of(scratch), cwd=tmp_path))
        assert tables_created(app.upgrade_source("0001")) == {"user"}

        app.write_models(SNIPPETS[USERS], SNIPPETS[SESSIONS])
        output = await app.alembic(["stamp", "head"], autogenerate("0002", "user sessions"), UPGRADE, CHECK)
        assert NO_DIFFERENCE in output
        assert tables_created(app.upgrade_source("0002")) == {"user_session"}
        assert await table_names(database) == {"alembic_version", "user", "user_session"}
        assert await fetch_all(database, 'SELECT email FROM "user"') == [("ada@example.com",)]


def with_legacy_table_ignored(env_source: str) -> str:
    """The README's env.py plus the include_name hook it shows for fastapi-anchor apps."""
    import_line = "from anchor_orm.alembic import render_item, sqlite_foreign_keys_off  # anchor_orm"
    hook_line = "        render_item=render_item,  # anchor_orm\n"
    assert import_line in env_source
    assert env_source.count(hook_line) == 2
    return env_source.replace(
        import_line, import_line + "\nfrom anchor_orm.alembic import ignore_legacy_sessions_table"
    ).replace(hook_line, hook_line + "        include_name=ignore_legacy_sessions_table,\n")


async def create_legacy_sessions_table(database: TestDatabase) -> None:
    """fastapi-anchor's table, made by its own metadata.create_all (not by Alembic)."""
    metadata = sa.MetaData()
    anchor_sessions_table(metadata)
    await database.create_tables(metadata)
    await execute(
        database,
        "INSERT INTO anchor_sessions (id, user_id, expires_at, created_at) VALUES "
        "('0123456789abcdef0123456789abcdef', '1', '2030-01-01 00:00:00', '2026-01-01 00:00:00')",
    )


async def test_an_app_moves_from_fastapi_anchor_sessions(backend: Backend, tmp_path: Path) -> None:
    async with empty_database(backend) as database:
        await create_legacy_sessions_table(database)
        app = SampleApp.create(tmp_path, url_of(database))
        # Still on fastapi-anchor's PostgresBackend: autogenerate leaves its table alone.
        app.write_env(with_legacy_table_ignored(SNIPPETS[ENV_PY]))
        app.write_models(SNIPPETS[USERS])
        output = await app.alembic(autogenerate("0001", "users"), UPGRADE, CHECK)
        assert NO_DIFFERENCE in output
        assert "anchor_sessions" not in app.upgrade_source("0001")
        assert len(await fetch_all(database, "SELECT id FROM anchor_sessions")) == 1

        # The move: the README's env.py again, and the session model.
        app.write_env(SNIPPETS[ENV_PY])
        app.write_models(SNIPPETS[USERS], SNIPPETS[SESSIONS])
        output = await app.alembic(autogenerate("0002", "move sessions"), UPGRADE, CHECK)
        assert NO_DIFFERENCE in output
        move_upgrade = app.upgrade_source("0002")
        assert tables_created(move_upgrade) == {"user_session"}
        assert tables_dropped(move_upgrade) == {"anchor_sessions"}
        assert await table_names(database) == {"alembic_version", "user", "user_session"}

        # Back: the old table returns, empty (its sessions were dropped, see the README).
        await app.alembic(["downgrade", "-1"])
        assert await table_names(database) == {"alembic_version", "user", "anchor_sessions"}
        assert await fetch_all(database, "SELECT id FROM anchor_sessions") == []
        columns = await inspect_db(database, lambda i: i.get_columns("anchor_sessions"))
        assert {column["name"] for column in columns} == {"id", "user_id", "expires_at", "created_at"}
