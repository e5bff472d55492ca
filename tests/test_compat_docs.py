"""Every ```python snippet of README.md's section on coming from fastapi-anchor runs, on SQLite and PostgreSQL."""

import os
import re
import secrets
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from anchor_orm.backends.implementations import PostgresBackend
from anchor_orm.testing import test_database as fresh_database
from tests.test_readme import readme_section

ROOT = Path(__file__).resolve().parent.parent
DOC_TEXT = readme_section("Coming from fastapi-anchor or fastapi-sessions")


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC_TEXT, re.DOTALL)


def test_the_doc_has_the_two_snippets_these_tests_run():
    found = snippets()
    assert len(found) == 2
    assert "session_model=MySession" in found[0]
    assert "AnchorSessionBase" in found[1]


async def test_extra_field_snippet_round_trips_in_the_callers_transaction(backend):
    namespace: dict[str, Any] = {}
    exec(compile(snippets()[0], "README.md:compat-snippet-1", "exec"), namespace)
    async with fresh_database(backend) as database:
        await database.create_tables(namespace["metadata"])
        now = datetime.now(UTC).replace(microsecond=0)
        data = namespace["MySession"](
            user_id="1", created_at=now, expires_at=now + timedelta(hours=1), role="admin"
        )
        rolled_back, committed = uuid4(), uuid4()
        async with database.session() as db:
            await namespace["start_session"](db, rolled_back, data)
            await db.rollback()
            await namespace["start_session"](db, committed, data)
            await db.commit()
        reader = PostgresBackend(
            async_sessionmaker(database.engine, class_=AsyncSession),
            table=namespace["sessions_table"],
            session_model=namespace["MySession"],
        )
        assert await reader.read(rolled_back) is None
        assert await reader.read(committed) == data


DRIVE_CORE_SNIPPET = textwrap.dedent(
    """
    import asyncio, runpy, sys
    import httpx

    app_module = runpy.run_path(sys.argv[1])
    SAME_ORIGIN = {"origin": "https://testserver", "sec-fetch-site": "same-origin"}

    async def main():
        engine = app_module["engine"]
        async with engine.begin() as connection:
            await connection.run_sync(app_module["SQLModel"].metadata.create_all)
        async with app_module["AsyncSession"](engine) as db:
            db.add(app_module["User"](id=1, name="ada"))
            await db.commit()
        transport = httpx.ASGITransport(app=app_module["app"])
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            assert (await client.get("/me")).status_code == 401
            login = await client.post("/login", params={"user_id": 1}, headers=SAME_ORIGIN)
            assert login.status_code == 200, login.text
            me = await client.get("/me")
            assert me.json() == {"user_id": 1, "name": "ada"}, me.text
            captured = client.cookies["anchor_session"]
            assert (await client.post("/logout", headers=SAME_ORIGIN)).status_code == 200
            assert (await client.get("/me")).status_code == 401
            client.cookies.set("anchor_session", captured)
            assert (await client.get("/me")).status_code == 401
            cross_site = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
            assert (await client.post("/login", params={"user_id": 1}, headers=cross_site)).status_code == 403
        await engine.dispose()
        print("core snippet ran")

    asyncio.run(main())
    """
)


async def test_core_snippet_logs_in_and_out(backend, tmp_path):
    app_file = tmp_path / "compat_core_app.py"
    app_file.write_text(snippets()[1])
    async with fresh_database(backend) as database:
        environment = {
            **os.environ,
            "DATABASE_URL": database.url.render_as_string(hide_password=False),
            "SESSION_SECRET": secrets.token_urlsafe(32),
        }
        completed = subprocess.run(
            [sys.executable, "-W", "error", "-c", DRIVE_CORE_SNIPPET, str(app_file)],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert completed.returncode == 0, completed.stderr
    assert "core snippet ran" in completed.stdout
