"""The anchor-orm command, run in-process (main) and as `python -m anchor_orm`, on both databases."""

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends
from sqlmodel import select

from anchor_orm import Anchor, RevokeReason, SessionRevoked, utc_now
from anchor_orm.cli import main
from anchor_orm.testing import MovableClock, TestDatabase, test_database
from tests.models import Account, AccountSession

MODEL = "tests.models:AccountSession"
ROOT = Path(__file__).resolve().parent.parent
# An app's Anchor, importable by the command as tests.test_cli:CLI_ANCHOR.
CLI_ANCHOR = Anchor(AccountSession, db=Depends(lambda: None), secret_keys=["k" * 40])


def url_of(database: TestDatabase) -> str:
    return database.url.render_as_string(hide_password=False)


async def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Runs main() on a thread of its own: it starts its own event loop, as from a shell."""
    capsys.readouterr()
    status = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return status, out, err


async def add_account(database: TestDatabase, email: str) -> Account:
    async with database.session() as db:
        account = Account(email=email)
        db.add(account)
        await db.commit()
        return account


async def add_sessions(
    database: TestDatabase, account: Account, count: int, *, age: timedelta = timedelta(0), **kwargs: Any
) -> list[str]:
    """``count`` sessions created ``age`` ago (more than 14 days: expired by now)."""
    clock = MovableClock(utc_now() - age)
    anchor = Anchor(AccountSession, db=Depends(lambda: None), secret_keys=["k" * 40], clock=clock)
    ids = []
    async with database.session() as db:
        owner = await db.get(Account, account.id)
        for _ in range(count):
            ids.append((await anchor.repository(db).create(owner, **kwargs)).session.id)
            clock.advance(seconds=1)
        await db.commit()
    return ids


async def stored_ids(database: TestDatabase) -> set[str]:
    async with database.session() as db:
        return set((await db.exec(select(AccountSession.id))).all())


async def test_purge_prints_a_line_per_batch_and_the_count(database, capsys):
    account = await add_account(database, "a@example.com")
    await add_sessions(database, account, 25, age=timedelta(days=20))
    live = await add_sessions(database, account, 3)

    status, out, err = await run_cli(
        capsys, "purge", "--model", MODEL, "--database-url", url_of(database), "--batch-size", "10"
    )

    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "purging expired sessions from account_session in batches of 10"
    assert lines[1:4] == [
        "batch 1: 10 purged (10 so far)",
        "batch 2: 10 purged (20 so far)",
        "batch 3: 5 purged (25 so far)",
    ]
    assert lines[4].startswith("done: 25 expired sessions purged in 3 batches (")
    assert await stored_ids(database) == set(live)


async def test_purge_reads_the_url_from_database_url(database, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", url_of(database))
    status, out, _ = await run_cli(capsys, "purge", "--model", MODEL)
    assert status == 0
    assert out.splitlines()[-1].startswith("done: 0 expired sessions purged in 1 batch (")


async def test_list_shows_a_users_live_sessions_newest_first(database, capsys):
    account = await add_account(database, "a@example.com")
    other = await add_account(database, "b@example.com")
    await add_sessions(database, account, 1, age=timedelta(days=20))
    older, newer = await add_sessions(database, account, 2, ip_address="203.0.113.9", user_agent="Firefox")
    await add_sessions(database, other, 1)

    status, out, err = await run_cli(
        capsys, "list", str(account.id), "--model", MODEL, "--database-url", url_of(database)
    )

    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"2 live sessions of Account {account.id}, newest first:"
    assert lines[1].split()[:2] == ["ID", "CREATED"]
    assert [line.split()[0] for line in lines[2:]] == [newer, older]
    assert "203.0.113.9" in lines[2] and "Firefox" in lines[2]

    status, out, _ = await run_cli(
        capsys, "list", str(account.id), "--json", "--model", MODEL, "--database-url", url_of(database)
    )
    assert status == 0
    listed = json.loads(out)
    assert [row["id"] for row in listed] == [newer, older]
    assert set(listed[0]) == {"id", "created_at", "last_seen_at", "expires_at", "ip_address", "user_agent"}


async def test_list_and_revoke_say_when_the_user_or_session_does_not_exist(database, capsys):
    url = url_of(database)
    status, _, err = await run_cli(capsys, "list", "999", "--model", MODEL, "--database-url", url)
    assert (status, err) == (1, "anchor-orm: error: no Account with id 999\n")
    status, _, err = await run_cli(capsys, "list", "abc", "--model", MODEL, "--database-url", url)
    assert (status, err) == (2, "anchor-orm: error: 'abc' is not a valid int for Account.id\n")
    status, _, err = await run_cli(capsys, "revoke", "no-such-id", "--model", MODEL, "--database-url", url)
    assert (status, err) == (1, "anchor-orm: error: no session with id 'no-such-id'\n")
    status, _, err = await run_cli(capsys, "revoke", "--user", "999", "--model", MODEL, "--database-url", url)
    assert (status, err) == (1, "anchor-orm: error: no Account with id 999\n")


async def test_revoke_one_session_or_all_of_a_user(database, capsys):
    account = await add_account(database, "a@example.com")
    other = await add_account(database, "b@example.com")
    first, second, third = await add_sessions(database, account, 3)
    (others,) = await add_sessions(database, other, 1)
    url = url_of(database)

    status, out, _ = await run_cli(capsys, "revoke", first, "--model", MODEL, "--database-url", url)
    assert (status, out) == (0, f"revoked session {first}\n")
    assert await stored_ids(database) == {second, third, others}

    status, out, _ = await run_cli(
        capsys, "revoke", "--user", str(account.id), "--model", MODEL, "--database-url", url
    )
    assert (status, out) == (0, f"revoked 2 sessions of Account {account.id}\n")
    assert await stored_ids(database) == {others}

    for both_or_neither in (["revoke", others, "--user", str(other.id)], ["revoke"]):
        status, _, err = await run_cli(capsys, *both_or_neither, "--model", MODEL, "--database-url", url)
        assert status == 2
        assert "give either a SESSION_ID or --user USER_ID" in err
    assert await stored_ids(database) == {others}


async def test_model_may_name_the_apps_anchor_so_its_handlers_hear_revocations(database, capsys):
    account = await add_account(database, "a@example.com")
    (session_id,) = await add_sessions(database, account, 1)
    heard: list[SessionRevoked] = []
    CLI_ANCHOR.events.subscribe(SessionRevoked, heard.append)
    try:
        status, _, _ = await run_cli(
            capsys,
            "revoke",
            session_id,
            "--model",
            "tests.test_cli:CLI_ANCHOR",
            "--database-url",
            url_of(database),
        )
    finally:
        assert CLI_ANCHOR.events.unsubscribe(heard.append)
    assert status == 0
    assert [(e.session_id, e.user_id, e.reason) for e in heard] == [
        (session_id, account.id, RevokeReason.REVOKE)
    ]


# Wrong model, URL or database: one line naming the fix, exit status 2, no traceback.


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("tests.models", "--model takes module:Class, e.g. app.models:UserSession; got 'tests.models'"),
        (
            "no_such_package.models:UserSession",
            "cannot import 'no_such_package.models' (no module named 'no_such_package')",
        ),
        ("tests.models:Nope", "module 'tests.models' has no 'Nope'"),
        (
            "tests.models:Account",
            "tests.models:Account is not a usable session model: Account must be a subclass of AnchorSessionBase.",
        ),
    ],
)
async def test_a_wrong_model_fails_with_a_clear_message(database, capsys, model, message):
    status, out, err = await run_cli(capsys, "purge", "--model", model, "--database-url", url_of(database))
    assert (status, out) == (2, "")
    assert err.startswith(f"anchor-orm: error: {message}")
    assert len(err.splitlines()) == 1


async def test_a_missing_model_or_url_is_named(capsys, monkeypatch, anyio_backend):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ANCHOR_ORM_MODEL", raising=False)
    status, _, err = await run_cli(capsys, "purge", "--database-url", "sqlite+aiosqlite:///x.db")
    assert (status, err) == (
        2,
        "anchor-orm: error: no session model: pass --model module:Class (e.g. app.models:UserSession)\n",
    )
    status, _, err = await run_cli(capsys, "purge", "--model", MODEL)
    assert (status, err) == (
        2,
        "anchor-orm: error: no database URL: pass --database-url or set DATABASE_URL\n",
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "the database URL does not parse (e.g. postgresql+asyncpg://user@host/db)"),
        ("sqlite:////no/such/folder/app.db", "no SQLite database file at '/no/such/folder/app.db'"),
        ("mysql+nosuchdriver://u:pw@host/db", "cannot use mysql+nosuchdriver://u:***@host/db: "),
        (
            "postgresql://postgres:s3cret-pw@127.0.0.1:1/app",
            "cannot connect to postgresql+asyncpg://postgres:***@127.0.0.1:1/app: ",
        ),
    ],
)
async def test_a_wrong_url_fails_with_a_clear_message_that_hides_the_password(
    capsys, anyio_backend, url, message
):
    status, out, err = await run_cli(capsys, "purge", "--model", MODEL, "--database-url", url)
    assert (status, out) == (2, "")
    assert err.startswith(f"anchor-orm: error: {message}")
    assert len(err.splitlines()) == 1
    assert "s3cret" not in err and ":pw@" not in err


async def test_a_database_without_the_table_is_named(backend, anyio_backend, capsys):
    async with test_database(backend) as empty:
        async with empty.engine.connect():
            pass  # a SQLite file exists from the first connection on
        status, _, err = await run_cli(capsys, "purge", "--model", MODEL, "--database-url", url_of(empty))
    assert status == 2
    assert "has no table 'account_session': wrong database, or run `alembic upgrade head` first" in err


# As a shell runs it.


def run_module(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anchor_orm", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


async def test_python_m_anchor_orm_purges(database):
    account = await add_account(database, "a@example.com")
    await add_sessions(database, account, 3, age=timedelta(days=20))
    (live,) = await add_sessions(database, account, 1)

    completed = await asyncio.to_thread(
        run_module, "purge", "--model", MODEL, "--batch-size", "2", env={"DATABASE_URL": url_of(database)}
    )

    assert (completed.returncode, completed.stderr) == (0, "")
    assert completed.stdout.splitlines()[1:3] == [
        "batch 1: 2 purged (2 so far)",
        "batch 2: 1 purged (3 so far)",
    ]
    assert await stored_ids(database) == {live}


async def test_python_m_anchor_orm_fails_without_a_traceback(database):
    completed = await asyncio.to_thread(
        run_module, "purge", "--model", "tests.models:Missing", "--database-url", url_of(database)
    )
    assert completed.returncode == 2
    assert completed.stderr == "anchor-orm: error: module 'tests.models' has no 'Missing'\n"
