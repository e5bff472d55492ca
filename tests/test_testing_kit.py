"""anchor_orm.testing and its pytest plugin, used the way an application's tests use them."""

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from anchor_orm.testing import MovableClock, log_in
from tests.app import build_app
from tests.models import Account


async def test_log_in_gives_the_client_a_working_cookie_in_one_line(database):
    test_app = build_app(database)
    alice = await test_app.add_account("alice@example.com")
    async with test_app.client() as client:
        await log_in(client, test_app.anchor, database, alice)
        me = await client.get("/me")
    assert me.status_code == 200
    assert me.json()["email"] == "alice@example.com"


async def test_log_in_with_the_apps_own_session_or_as_a_bearer_client(database):
    test_app = build_app(database)
    alice = await test_app.add_account("alice@example.com")
    async with test_app.client() as cookie_client, test_app.client() as bearer_client:
        async with database.session() as db:
            await log_in(cookie_client, test_app.anchor, db, alice)
        token = await log_in(bearer_client, test_app.anchor, database.engine, alice, bearer=True)
        assert bearer_client.headers["authorization"] == f"Bearer {token}"
        assert not bearer_client.cookies
        assert (await cookie_client.get("/me")).status_code == 200
        assert (await bearer_client.get("/me")).json()["email"] == "alice@example.com"


async def test_log_in_accepts_a_user_the_test_still_holds_in_an_open_session(database):
    test_app = build_app(database)
    await test_app.add_account("alice@example.com")
    async with database.session() as db:
        alice = (await db.exec(select(Account))).one()
        async with test_app.client() as client:
            await log_in(client, test_app.anchor, database, alice)
            assert (await client.get("/me")).json()["email"] == "alice@example.com"
        assert alice in db  # still the test's own object


async def test_a_moved_clock_expires_a_logged_in_session(database):
    clock = MovableClock()
    test_app = build_app(database, clock=clock)
    alice = await test_app.add_account("alice@example.com")
    async with test_app.client() as client:
        await log_in(client, test_app.anchor, database, alice)
        clock.advance(days=13)
        assert (await client.get("/me")).status_code == 200  # touched: idle clock restarts
        clock.advance(days=14, seconds=1)
        assert (await client.get("/me")).status_code == 401


def test_movable_clock_moves_both_ways_and_stays_in_utc():
    clock = MovableClock(datetime(2030, 1, 1, tzinfo=UTC))
    assert clock.advance(minutes=5) == datetime(2030, 1, 1, 0, 5, tzinfo=UTC)
    assert clock.advance(timedelta(hours=1)) == datetime(2030, 1, 1, 1, 5, tzinfo=UTC)
    earlier = datetime(2029, 12, 31, 23, 0, tzinfo=UTC)
    assert clock.set(earlier) == earlier == clock()
    with pytest.raises(ValueError, match="aware"):
        clock.set(datetime(2030, 1, 1))


APP_CONFTEST = """
import pytest

pytest_plugins = ["anchor_orm.pytest_plugin"]


@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"
"""

APP_TESTS = """
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlmodel import Field, Relationship, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from anchor_orm import Anchor, AnchorSessionBase
from anchor_orm.testing import log_in


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str


class UserSession(AnchorSessionBase, table=True):
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    user: User = Relationship()


def make_app(database, clock):
    async def get_db():
        async with database.session() as db, db.begin():
            yield db

    anchor = Anchor(
        UserSession,
        db=Annotated[AsyncSession, Depends(get_db, scope="function")],
        secret_keys=["app-test-secret-0123456789abcdefghijkl"],
        clock=clock,
    )
    app = FastAPI()
    anchor.install(app)

    @app.get("/me")
    async def me(user: Annotated[User, Depends(anchor.current_user)]):
        return {"name": user.name}

    return app, anchor


@pytest.mark.anyio
async def test_me(anchor_database, anchor_clock, anchor_backend):
    app, anchor = make_app(anchor_database, anchor_clock)
    async with anchor_database.session() as db:
        ada = User(name="ada")
        db.add(ada)
        await db.commit()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        await log_in(client, anchor, anchor_database, ada)
        assert (await client.get("/me")).json() == {"name": "ada"}
        anchor_clock.advance(days=15)
        assert (await client.get("/me")).status_code == 401
    print("ran on", anchor_backend)


@pytest.mark.anyio
async def test_each_test_starts_empty(anchor_database):
    async with anchor_database.session() as db:
        assert (await db.exec(SQLModel.metadata.tables["user"].select())).all() == []
"""


def test_an_apps_test_suite_uses_the_plugin_on_both_databases(tmp_path):
    (tmp_path / "conftest.py").write_text(APP_CONFTEST)
    (tmp_path / "test_app.py").write_text(textwrap.dedent(APP_TESTS))
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-W", "error", "-p", "no:cacheprovider", "-rs"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ran on sqlite" in completed.stdout
    if "SKIPPED" not in completed.stdout:
        assert "ran on postgresql" in completed.stdout
        assert "4 passed" in completed.stdout
