"""fastapi-anchor 0.1.1's README examples, renamed to anchor_orm, run as its users run them."""

import hashlib
import importlib.util
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from uuid import uuid4

import httpx
import pytest

from anchor_orm.testing import test_database as fresh_database

ROOT = Path(__file__).resolve().parent.parent
MEMORY_EXAMPLE = ROOT / "examples" / "fastapi_anchor_memory.py"
POSTGRES_EXAMPLE = ROOT / "examples" / "fastapi_anchor_postgres.py"
# sha256 of the two ```python blocks of fastapi-anchor 0.1.1's README (its METADATA).
README_QUICK_START_SHA256 = "e718ede9562b1139b16239fa4691d11b105478e0ec97855c97ab8f870982dd6a"
README_POSTGRES_SHA256 = "736d1fee6b58e0f890a26fb75c32f9e1f538e5db9e94bc9aaed03a94af57d50b"
POSTGRES_URL_LINE_0_1_1 = 'engine = create_async_engine("postgresql+asyncpg://user:pass@localhost/db")\n'
POSTGRES_URL_LINE_HERE = (
    'engine = create_async_engine(os.environ.get("DATABASE_URL", '
    '"postgresql+asyncpg://user:pass@localhost/db"))\n'
)


def load_module(path: Path) -> ModuleType:
    """A fresh copy of the example module (its globals are its state)."""
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}_{uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def client_for(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_examples_are_the_readme_code_but_for_the_package_name():
    quick_start = MEMORY_EXAMPLE.read_text().replace("anchor_orm", "fastapi_anchor")
    assert sha256(quick_start) == README_QUICK_START_SHA256
    postgres = POSTGRES_EXAMPLE.read_text()
    assert postgres.startswith("import os\n") and POSTGRES_URL_LINE_HERE in postgres
    postgres = postgres.removeprefix("import os\n").replace(POSTGRES_URL_LINE_HERE, POSTGRES_URL_LINE_0_1_1)
    assert sha256(postgres.replace("anchor_orm", "fastapi_anchor")) == README_POSTGRES_SHA256


async def test_quick_start_login_me_logout():
    example = load_module(MEMORY_EXAMPLE)
    async with client_for(example.app) as client:
        assert (await client.get("/me")).status_code == 401
        login = await client.post("/login", params={"user_id": "alice"})
        assert login.status_code == 200
        assert login.json() == {"ok": True}
        assert "SameSite=Lax" in login.headers["set-cookie"]
        me = await client.get("/me")
        assert me.status_code == 200
        assert me.json() == {"user_id": "alice"}
        captured_cookie = client.cookies["session"]

        logout = await client.post("/logout")
        assert logout.status_code == 200
        assert "Max-Age=0" in logout.headers["set-cookie"]
        assert (await client.get("/me")).status_code == 401

        # The stolen copy of the cookie no longer works: the session is gone server-side.
        client.cookies.set("session", captured_cookie)
        assert (await client.get("/me")).status_code == 401
        # And logging out with it again is not an error.
        assert (await client.post("/logout")).status_code == 200


async def test_quick_start_without_cookie_is_401_not_403():
    example = load_module(MEMORY_EXAMPLE)
    async with client_for(example.app) as client:
        assert (await client.get("/me")).status_code == 401
        assert (await client.post("/logout")).status_code == 401


BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys

    class Blocked(importlib.abc.MetaPathFinder):
        def __init__(self, names):
            self.names = names

        def find_spec(self, fullname, path=None, target=None):
            if fullname.split(".")[0] in self.names:
                raise ModuleNotFoundError(f"blocked for this test: {fullname}", name=fullname)
            return None
    """
)

DRIVE_QUICK_START = textwrap.dedent(
    """
    import asyncio, httpx
    from examples import fastapi_anchor_memory as example

    async def main():
        transport = httpx.ASGITransport(app=example.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.post("/login", params={"user_id": "u1"})).status_code == 200
            assert (await client.get("/me")).json() == {"user_id": "u1"}
            assert (await client.post("/logout")).status_code == 200
            assert (await client.get("/me")).status_code == 401

    asyncio.run(main())
    print("quick start ran; loaded:", sorted(n for n in sys.modules if n.split(".")[0] in WATCHED))
    """
)


def run_python(code: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_quick_start_runs_with_no_database_driver_installed():
    drivers = ("asyncpg", "aiosqlite", "psycopg", "psycopg2", "pymysql", "aiomysql")
    output = run_python(
        BLOCKER
        + f"WATCHED = {drivers!r}\nsys.meta_path.insert(0, Blocked(set(WATCHED)))\n"
        + DRIVE_QUICK_START
    )
    assert "quick start ran; loaded: []" in output


def test_legacy_api_modules_import_no_database_code():
    # The package root imports the ORM core (sqlmodel, SQLAlchemy) for its own names;
    # the fastapi-anchor modules themselves must not, so they are loaded here under a
    # bare package object, with SQLAlchemy, SQLModel and the drivers all blocked.
    blocked = ("sqlalchemy", "sqlmodel", "asyncpg", "aiosqlite", "greenlet")
    output = run_python(
        BLOCKER
        + textwrap.dedent(
            f"""
            import importlib.util, types
            WATCHED = {blocked!r}
            spec = importlib.util.find_spec("anchor_orm")
            root = types.ModuleType("anchor_orm")
            root.__path__ = list(spec.submodule_search_locations)
            sys.modules["anchor_orm"] = root
            sys.meta_path.insert(0, Blocked(set(WATCHED)))
            """
        )
        + DRIVE_QUICK_START
        + textwrap.dedent(
            """
            try:
                from anchor_orm.backends.implementations import PostgresBackend
            except ModuleNotFoundError as error:
                print("PostgresBackend needs:", error.name)
            """
        )
    )
    assert "quick start ran; loaded: []" in output
    assert "PostgresBackend needs: sqlalchemy" in output


async def test_postgres_example_stores_and_logs_out(backend):
    async with fresh_database(backend) as database:
        example = load_postgres_example(database.url)
        try:
            async with example.engine.begin() as connection:
                await connection.run_sync(example.metadata.create_all)
            now = datetime.now(UTC)
            session_id = uuid4()
            data = example.PostgresSessionData(
                user_id="42", created_at=now, expires_at=now + timedelta(days=1)
            )
            await example.backend.create(session_id, data)
            assert await example.backend.read(session_id) == data
            # "On logout, call await backend.delete(session_id)": the row is gone.
            await example.backend.delete(session_id)
            assert await example.backend.read(session_id) is None
            await example.backend.delete(session_id)  # twice is fine
        finally:
            await example.engine.dispose()


async def test_quick_start_on_the_postgres_example_backend(backend):
    """The two README examples together: the quick start's routes storing sessions
    in the SQL table, which is how an app moves from development to production."""
    async with fresh_database(backend) as database:
        sql = load_postgres_example(database.url)
        quick_start = load_module(MEMORY_EXAMPLE)
        quick_start.backend = sql.backend  # the routes read the module global at call time
        quick_start.verifier._backend = sql.backend
        try:
            async with sql.engine.begin() as connection:
                await connection.run_sync(sql.metadata.create_all)
            async with client_for(quick_start.app) as client:
                assert (await client.post("/login", params={"user_id": "bob"})).status_code == 200
                me = await client.get("/me")
                assert me.status_code == 200
                assert me.json()["user_id"] == "bob"
                async with sql.async_session_factory() as db:
                    assert len((await db.execute(sql.sessions_table.select())).all()) == 1
                assert (await client.post("/logout")).status_code == 200
                async with sql.async_session_factory() as db:
                    assert (await db.execute(sql.sessions_table.select())).all() == []
                assert (await client.get("/me")).status_code == 401
        finally:
            await sql.engine.dispose()


def load_postgres_example(url: object) -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))  # type: ignore[attr-defined]
        return load_module(POSTGRES_EXAMPLE)
